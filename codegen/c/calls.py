"""How an IR node becomes C kernel calls.

``codegen/c/ops/<op>.py`` defines ``calls(model, node) -> list[KernelCall]``. A call names its kernel
template (the op), the C element types that specialise it, and its ordered arguments. The same
argument list renders the kernel's parameter list (in the template), the call in ``model.c`` and
the ctypes call of :mod:`codegen.c.kernel_lib`, so the order is defined once.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass

from intonly.quantize.errors import UnsupportedOpError

C_TYPES = {"int8": "int8_t", "int16": "int16_t", "int32": "int32_t"}
SUFFIX = {"int8": "s8", "int16": "s16", "int32": "s32"}


@dataclass(frozen=True)
class Arg:
    """One kernel argument: ``kind`` is "in"/"out" (a tensor), "const" (a weight array) or "int"."""

    name: str
    kind: str
    value: object
    dtype: str = "int32"

    def c_param(self) -> str:
        ctype = C_TYPES[self.dtype]
        if self.kind == "in" or self.kind == "const":
            return f"const {ctype} *restrict {self.name}" if self.kind == "in" else f"const {ctype} *{self.name}"
        if self.kind == "out":
            return f"{ctype} *restrict {self.name}"
        return f"int32_t {self.name}"


@dataclass(frozen=True)
class KernelCall:
    op: str                      # template name: templates/<family>/<op>.c.j2
    dtypes: tuple[str, ...]      # element types that specialise the kernel
    args: tuple[Arg, ...]

    @property
    def function(self) -> str:
        return "intonly_" + self.op + "_" + "_".join(SUFFIX[d] for d in self.dtypes)

    @property
    def signature_key(self) -> tuple:
        return (self.op, self.dtypes, tuple((a.name, a.kind, a.dtype) for a in self.args))


def tensor(name: str, kind: str, model, tname: str) -> Arg:
    return Arg(name, kind, tname, model.tensors[tname].dtype)


def const(name: str, model, cname: str) -> Arg:
    return Arg(name, "const", cname, str(model.constants[cname].dtype))


def ints(**values) -> list[Arg]:
    return [Arg(k, "int", int(v)) for k, v in values.items()]


def node_calls(model, node) -> list[KernelCall]:
    try:
        module = importlib.import_module(f"intonly.codegen.c.ops.{node.op}")
    except ModuleNotFoundError:
        raise UnsupportedOpError([(node.name, f"op {node.op!r} has no C kernel")]) from None
    return module.calls(model, node)


# C99 keywords, plus the C11/C23 and GNU spellings a compiler in another mode would reserve.
C_KEYWORDS = frozenset((
    "auto", "break", "case", "char", "const", "continue", "default", "do", "double", "else", "enum", "extern",
    "float", "for", "goto", "if", "inline", "int", "long", "register", "restrict", "return", "short", "signed",
    "sizeof", "static", "struct", "switch", "typedef", "union", "unsigned", "void", "volatile", "while",
    "_Bool", "_Complex", "_Imaginary", "_Alignas", "_Alignof", "_Atomic", "_Generic", "_Noreturn",
    "_Static_assert", "_Thread_local", "alignas", "alignof", "bool", "constexpr", "false", "nullptr",
    "static_assert", "thread_local", "true", "typeof", "typeof_unqual", "asm",
))
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def c_identifier(name: str, prefix: str) -> str:
    """A safe C identifier for any tensor/layer name: ``prefix`` + the name with every character outside
    ``[A-Za-z0-9_]`` (non-ASCII letters included) replaced by ``_``.

    The result always matches ``[A-Za-z_][A-Za-z0-9_]*`` and is neither a keyword (:data:`C_KEYWORDS`) nor
    reserved to the implementation (a leading ``__`` or ``_`` + capital): such a result, or one that would be
    empty or start with a digit, gets ``n_`` in front. Distinct names can give the same identifier (``a.b`` and
    ``a-b``), so a caller that needs distinct identifiers puts something unique in ``prefix``: emit.py uses
    ``k<index>_``, which also keeps every result clear of keywords and of the names the C library declares."""
    ident = prefix + re.sub(r"[^A-Za-z0-9_]", "_", name)
    if (not ident or ident[0].isdigit() or ident in C_KEYWORDS or ident.startswith("__")
            or re.match(r"_[A-Z]", ident)):
        ident = "n_" + ident
    return ident


def c_comment(text: str) -> str:
    """``text`` made safe to place inside a C block comment (``/* ... */``), glued to either end or not.

    A comment ends at the first ``*/`` *after* trigraph replacement and line splicing (translation phases 1-2;
    gcc splices a backslash even when spaces separate it from the line break), and ``-Wall -Werror`` refuses a
    ``/*`` inside a comment and a ``??/`` that splices lines. So: a space goes between every ``*`` and ``/`` that
    touch, in either order; newline, carriage return and tab become ``\\n``, ``\\r``, ``\\t``, a backslash
    ``\\x5c``, the second ``?`` of a ``??`` pair ``\\x3f``, and every other non-printable character (controls,
    NUL, separators such as U+2028, lone surrogates) ``\\xNN``, ``\\uNNNN`` or ``\\UNNNNNNNN``: the result
    has no line break and no backslash that is not followed by a letter, so nothing can splice. Printable
    non-ASCII (``名前``) is kept. A result that would start or end with ``*`` or ``/`` gets a space there, so that
    it is safe right after ``/*`` and right before ``*/``."""
    out = []
    for ch in text:
        code = ord(ch)
        if ch in "\n\r\t":
            out.append({"\n": "\\n", "\r": "\\r", "\t": "\\t"}[ch])
        elif ch == "?" and out and out[-1] == "?":
            out.append("\\x3f")
        elif ch.isprintable() and ch != "\\":
            out.append(ch)
        elif code < 0x100:
            out.append(f"\\x{code:02x}")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    safe = re.sub(r"(?<=\*)(?=/)|(?<=/)(?=\*)", " ", "".join(out))
    if safe.startswith(("*", "/")):
        safe = " " + safe
    return safe + " " if safe.endswith(("*", "/")) else safe
