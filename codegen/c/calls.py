"""How an IR node becomes C kernel calls.

``codegen/c/ops/<op>.py`` defines ``calls(model, node) -> list[KernelCall]``. A call names its kernel
template (the op), the C element types that specialise it, and its ordered arguments. The same
argument list renders the kernel's parameter list (in the template), the call in ``model.c`` and
the ctypes call of :mod:`codegen.c.kernel_lib`, so the order is defined once.
"""

from __future__ import annotations

from dataclasses import dataclass

from intonly.quantize.errors import UnsupportedOpError

C_TYPES = {"int8": "int8_t", "int16": "int16_t", "int32": "int32_t", "int64": "int64_t"}
SUFFIX = {"int8": "s8", "int16": "s16", "int32": "s32", "int64": "s64"}


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


def weighted_dtypes(model, node, x, y) -> tuple[str, ...]:
    """conv2d/dense kernel types: input, weight, output, and ``int64`` last for a 16x8 layer (its int64 bias picks
    the int64 accumulator and TFLite's 16x8 requant; quantize/ops/_weighted.py)."""
    bias = str(model.param(node, "bias").dtype)
    return (x.dtype, str(model.param(node, "weight").dtype), y.dtype) + (("int64",) if bias == "int64" else ())


def ints(**values) -> list[Arg]:
    return [Arg(k, "int", int(v)) for k, v in values.items()]


def node_calls(model, node) -> list[KernelCall]:
    """The kernel calls of ``node`` (codegen/c/ops/<op>.py); UnsupportedOpError for an op without a C executor."""
    from .ops import executor
    module = executor(node.op)
    if module is None:
        raise UnsupportedOpError([(node.name, f"op {node.op!r} has no C kernel")])
    return module.calls(model, node)
