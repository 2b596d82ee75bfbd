"""codegen: programs from an IntModel. ``codegen.c`` emits a C99 project per target family."""

from .c.emit import emit_c

__all__ = ["emit_c"]
