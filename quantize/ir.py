"""IntModel: the integer-only intermediate representation.

An IntModel is a topologically ordered list of :class:`Node` over named :class:`TensorInfo`
values, plus integer constants (weights, biases, per-channel multipliers and shifts).
Between the ``quantize`` node at the input and the ``dequantize`` node at the output
every op is integer; scales are metadata for users and reports, never read by an integer op.

:meth:`IntModel.validate` is the one check every model passes before it is saved, loaded, simulated or
emitted (docs/ir.md lists every rule); the ``.intonly`` file format and its bounded reader live in
:mod:`quantize.ir_file`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .bounded_read import Limits
from .bounds import node_bounds, producer_map
from .errors import ModelFileError
from .ir_file import FORMAT_VERSION, read_model, save_model
from .names import ACT_DTYPES, DTYPE_RANGE, INT_DTYPES, ROUNDING_MODES
from .ops import MAX_RANK, OPS, check_attrs, infer_shape

__all__ = ["IntModel", "Node", "TensorInfo", "FORMAT_VERSION", "storage_dtype", "DTYPE_RANGE", "NUMPY_DTYPES"]

NUMPY_DTYPES = {"int8": np.int8, "int16": np.int16, "int32": np.int32, "float32": np.float32}
LAYOUTS = ("HWC", "LC", "CHW", "")
ENCODINGS = ("linear", "log2")


def storage_dtype(bits: int) -> str:
    """Smallest signed storage type for a ``bits``-bit integer tensor."""
    return "int8" if bits <= 8 else "int16" if bits <= 16 else "int32"


@dataclass
class TensorInfo:
    """A value in the graph. ``shape`` is per sample (no batch), HWC for images.

    ``scale``/``zero_point`` give ``real = scale * (q - zero_point)`` (metadata only);
    ``bits`` is the quantized width, stored in ``dtype``. ``source`` names the float-graph
    value this tensor approximates (used by ``compare``); ``layout`` is "HWC" (a PyTorch (C, H, W) value stored
    channels-last), "LC" (a Conv1d's (C, L) stored (L, C)), "CHW" or "" (PyTorch's order).
    ``encoding`` is "linear" (the affine map above) or "log2" (codes ``c`` meaning ``2^-c``, the
    all-ones-past-the-top code meaning exactly 0: log2_softmax's output).
    """

    name: str
    dtype: str
    shape: tuple[int, ...]
    scale: float = 1.0
    zero_point: int = 0
    bits: int = 8
    source: str = ""
    layout: str = ""
    encoding: str = "linear"

    def qrange(self) -> tuple[int, int]:
        return -(1 << (self.bits - 1)), (1 << (self.bits - 1)) - 1


@dataclass
class Node:
    """One op application. ``params`` maps a role (weight, bias, multiplier, shift) to a constant name."""

    name: str
    op: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)


@dataclass
class IntModel:
    name: str
    rounding: str
    inputs: list[str]
    outputs: list[str]
    tensors: dict[str, TensorInfo]
    nodes: list[Node]
    constants: dict[str, np.ndarray]

    # ---- queries -------------------------------------------------------------------------
    def param(self, node: Node, role: str) -> np.ndarray:
        return self.constants[node.params[role]]

    def node_macs(self, node: Node) -> int:
        """Multiply-accumulates one sample costs in ``node`` (0 for ops without products): the op's ``macs``."""
        return OPS[node.op].macs(self, node)

    def parameter_count(self, node: Node) -> int:
        return int(sum(self.constants[c].size for c in node.params.values()))

    def integer_nodes(self) -> list[Node]:
        return [n for n in self.nodes if OPS[n.op].integer]

    # ---- validation ----------------------------------------------------------------------
    def validate(self, where: str = "model") -> None:
        """Raise :class:`ModelFileError` naming the node or tensor and the field of the first inconsistency.

        Checked, in order: the rounding mode; graph inputs and outputs (at least one each, no repeats); every
        tensor's metadata (known dtype, bits that fit it, a finite positive float32 scale, a zero point inside
        its range, known layout and encoding, rank <= 8); then node by node: a unique name, attributes of the
        right kind inside their ranges and their relations (:func:`intonly.quantize.ops.check_attrs`), inputs produced earlier, one output
        produced nowhere else, parameters, the float/integer boundary (only ``quantize`` reads a float graph
        input, only ``dequantize`` writes a float graph output), the inferred output shape, requant parameter
        ranges, zero points and clamps against their tensors, constant values inside their output's range,
        and every overflow bound (each op's ``bounds``, quantize/bounds.py); finally one ``quantize``
        node per graph input, every output produced by a ``dequantize`` node, no unused constant and no tensor
        entry that nothing produces."""
        if self.rounding not in ROUNDING_MODES:
            raise ModelFileError(f"{where}: rounding {self.rounding!r} is not one of {ROUNDING_MODES}")
        for kind, names in (("input", self.inputs), ("output", self.outputs)):
            if not names:
                raise ModelFileError(f"{where}: the graph has no {kind}s")
            if len(set(names)) != len(names):
                raise ModelFileError(f"{where}: graph {kind} {_first_repeat(names)!r} is listed twice")
        for key, t in self.tensors.items():
            self._check_tensor(where, key, t)
        defined = set()
        for t in self.inputs:
            if t not in self.tensors:
                raise ModelFileError(f"{where}: graph input {t!r} has no tensor entry")
            if self.tensors[t].dtype != "float32":
                raise ModelFileError(f"{where}: graph input {t!r} is {self.tensors[t].dtype}; graph inputs are "
                                     "float32 and enter through a quantize node")
            defined.add(t)
        node_names: dict[str, int] = {}
        producers = producer_map(self)
        for i, node in enumerate(self.nodes):
            at = f"{where}: node {i} {node.name!r} ({node.op})"
            if node.name in node_names:
                raise ModelFileError(f"{at}: name is used by node {node_names[node.name]} too")
            node_names[node.name] = i
            self._check_node(at, node, defined, producers)
            defined.add(node.outputs[0])
        for t in self.outputs:
            if t not in defined:
                raise ModelFileError(f"{where}: graph output {t!r} is never produced")
        quantized = [n.inputs[0] for n in self.nodes if n.op == "quantize"]
        for t in self.inputs:
            if quantized.count(t) != 1:
                raise ModelFileError(f"{where}: graph input {t!r} is read by {quantized.count(t)} quantize "
                                     "nodes (exactly one quantizes each input)")
        dequantized = {n.outputs[0] for n in self.nodes if n.op == "dequantize"}
        for t in self.outputs:
            if t not in dequantized:
                raise ModelFileError(f"{where}: graph output {t!r} is not written by a dequantize node")
        used = {c for n in self.nodes for c in n.params.values()}
        for name in self.constants:
            if name not in used:
                raise ModelFileError(f"{where}: constant {name!r} is not used by any node")
        for name in self.tensors:
            if name not in defined:
                raise ModelFileError(f"{where}: tensor {name!r} is neither a graph input nor written by a node")

    @staticmethod
    def _check_tensor(where: str, key: str, t: "TensorInfo") -> None:
        at = f"{where}: tensor {key!r}"
        if t.name != key:
            raise ModelFileError(f"{at}: is filed under another name than its own ({t.name!r})")
        if t.dtype not in NUMPY_DTYPES:
            raise ModelFileError(f"{at}: unknown dtype {t.dtype!r} (one of {', '.join(NUMPY_DTYPES)})")
        if t.dtype in ACT_DTYPES:
            if not (isinstance(t.bits, int) and 2 <= t.bits <= 16 and storage_dtype(t.bits) == t.dtype):
                raise ModelFileError(f"{at}: bits={t.bits} stored as {t.dtype}")
        elif not (isinstance(t.bits, int) and 1 <= t.bits <= 32):
            raise ModelFileError(f"{at}: bits={t.bits} outside [1, 32]")
        if not _finite_positive_f32(t.scale):
            raise ModelFileError(f"{at}: scale {t.scale!r} is not a finite number > 0 (as float32)")
        if t.dtype != "float32":
            lo, hi = _value_range(t)
            if not (isinstance(t.zero_point, int) and lo <= t.zero_point <= hi):
                raise ModelFileError(f"{at}: zero_point {t.zero_point!r} is outside the {t.bits}-bit range "
                                     f"[{lo}, {hi}]")
        if t.layout not in LAYOUTS:
            raise ModelFileError(f"{at}: layout {t.layout!r} is not one of {', '.join(map(repr, LAYOUTS))}")
        if t.encoding not in ENCODINGS:
            raise ModelFileError(f"{at}: encoding {t.encoding!r} is not one of {', '.join(map(repr, ENCODINGS))}")
        if not (isinstance(t.shape, tuple) and len(t.shape) <= MAX_RANK and
                all(isinstance(d, int) and d >= 1 for d in t.shape)):
            raise ModelFileError(f"{at}: shape {t.shape!r} is not at most {MAX_RANK} dimensions >= 1")

    def _check_node(self, at: str, node: "Node", defined: set, producers: dict) -> None:
        check_attrs(node.op, node.attrs, at)
        schema = OPS[node.op]
        if len(node.inputs) != (schema.n_inputs if schema.n_inputs is not None else max(len(node.inputs), 1)):
            raise ModelFileError(f"{at}: expects {schema.n_inputs or 'one or more'} inputs, has {len(node.inputs)}")
        if len(node.outputs) != 1:
            raise ModelFileError(f"{at}: must have exactly one output")
        for t in node.inputs:
            if t not in defined:
                raise ModelFileError(f"{at}: input {t!r} is not produced by an earlier node")
        out = self.tensors.get(node.outputs[0])
        if out is None:
            raise ModelFileError(f"{at}: output {node.outputs[0]!r} has no tensor entry")
        if out.name in defined:
            raise ModelFileError(f"{at}: output {out.name!r} is already written by a graph input or an earlier node")
        if set(node.params) != set(schema.params):
            raise ModelFileError(f"{at}: params {sorted(node.params)} != {sorted(schema.params)}")
        for role, allowed in schema.params.items():
            arr = self.constants.get(node.params[role])
            if arr is None:
                raise ModelFileError(f"{at}: constant {node.params[role]!r} ({role}) is missing")
            if str(arr.dtype) not in allowed:
                raise ModelFileError(f"{at}: {role} has dtype {arr.dtype}, expected one of {allowed}")
        self._check_boundary(at, node, out)
        shapes = {r: tuple(self.constants[c].shape) for r, c in node.params.items()}
        try:
            out_shape = infer_shape(node.op, node.attrs, [self.tensors[t].shape for t in node.inputs], shapes)
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            raise ModelFileError(f"{at}: {exc}") from None
        if tuple(out.shape) != out_shape:
            raise ModelFileError(f"{at}: output {out.name!r} shape {out.shape} != inferred {out_shape}")
        if "multiplier" in schema.params:
            channels = shapes["weight"][0]
            for role in ("bias", "multiplier", "shift"):
                if shapes[role] != (channels,):
                    raise ModelFileError(f"{at}: {role} shape {shapes[role]} != ({channels},)")
            self._check_requant(at, self.param(node, "multiplier"), self.param(node, "shift"))
        self._check_value_ranges(at, node, out)
        for bound in node_bounds(self, node, producers):
            if not bound.holds:
                raise ModelFileError(f"{at}: {bound.what} can overflow (|value| <= {bound.value} > {bound.limit})")

    def _check_boundary(self, at: str, node: "Node", out: "TensorInfo") -> None:
        """Floats only at the graph's edges: quantize reads a graph input, dequantize writes a graph output."""
        ins = [self.tensors[t] for t in node.inputs]
        if node.op == "quantize":
            if node.inputs[0] not in self.inputs or out.dtype not in ACT_DTYPES:
                raise ModelFileError(f"{at}: must read a graph input and write an int8/int16 tensor")
        elif node.op == "dequantize":
            if ins[0].dtype not in INT_DTYPES or out.dtype != "float32" or out.name not in self.outputs:
                raise ModelFileError(f"{at}: must read an integer tensor and write a float32 graph output")
        else:
            for t in [*ins, out]:
                if t.dtype not in INT_DTYPES:
                    raise ModelFileError(f"{at}: tensor {t.name!r} is {t.dtype}; an integer op reads and writes "
                                         f"only {', '.join(INT_DTYPES)}")

    def _check_value_ranges(self, at: str, node: "Node", out: "TensorInfo") -> None:
        """Zero points, pad values and clamps inside the range of the tensor they belong to; constant values
        (``constant``, ``embedding``) inside the range of the output they are copied to."""
        a = node.attrs
        refs = [("output_zp", out)] if "output_zp" in a else []
        if "input_zp" in a:
            refs.append(("input_zp", self.tensors[node.inputs[OPS[node.op].input_zp_of]]))
        if "pad_value" in a:
            refs.append(("pad_value", self.tensors[node.inputs[0]]))
        for key, info in refs:
            lo, hi = _value_range(info)
            if not lo <= a[key] <= hi:
                raise ModelFileError(f"{at}: {key}={a[key]} outside the {info.bits}-bit range [{lo}, {hi}] of "
                                     f"tensor {info.name!r}")
        for i, zp in enumerate(a.get("input_zps", [])):
            lo, hi = _value_range(self.tensors[node.inputs[i]])
            if not lo <= zp <= hi:
                raise ModelFileError(f"{at}: input_zps[{i}]={zp} outside the range [{lo}, {hi}] of tensor "
                                     f"{node.inputs[i]!r}")
        if "act_min" in a:
            lo, hi = _value_range(out)
            if not (lo <= a["act_min"] <= a["act_max"] <= hi):
                raise ModelFileError(f"{at}: clamp [{a['act_min']}, {a['act_max']}] outside the {out.bits}-bit "
                                     f"range [{lo}, {hi}]")
        role = OPS[node.op].copies_param
        if role is not None:
            arr = self.param(node, role)
            lo, hi = _value_range(out)
            if arr.size and (int(arr.min()) < lo or int(arr.max()) > hi):
                raise ModelFileError(f"{at}: {role} values [{int(arr.min())}, {int(arr.max())}] do not fit the "
                                     f"range [{lo}, {hi}] of output {out.name!r}")

    @staticmethod
    def _check_requant(at: str, mult: np.ndarray, shift: np.ndarray) -> None:
        if shift.size and (shift.min() < 1 or shift.max() > 62):
            raise ModelFileError(f"{at}: shift outside 1..62")
        if mult.size and (mult.min() < 0 or mult.max() > 2**31 - 1):
            raise ModelFileError(f"{at}: multiplier outside 0..2^31-1")

    def producer(self, tensor: str) -> Node | None:
        return next((n for n in self.nodes if tensor in n.outputs), None)

    # ---- file format (quantize/ir_file.py) ----------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Validate, then write the model as one ``.intonly`` archive atomically (:func:`quantize.ir_file.save_model`)."""
        return save_model(self, path)

    @classmethod
    def load(cls, path: str | Path, limits: Limits | None = None) -> "IntModel":
        """Read and validate an ``.intonly`` file within ``limits`` (default :meth:`Limits.from_env`); any defect
        raises one :class:`ModelFileError` naming the file and the member, node or field."""
        model = cls(**read_model(path, limits))
        model.validate(str(path))
        return model


def _first_repeat(names: list[str]) -> str:
    seen = set()
    return next(n for n in names if n in seen or seen.add(n))


def _value_range(info: TensorInfo) -> tuple[int, int]:
    """The integer range a tensor's values lie in: its bits for activation types, the dtype otherwise."""
    return info.qrange() if info.dtype in ACT_DTYPES else DTYPE_RANGE.get(info.dtype, (0, 0))


def _finite_positive_f32(value) -> bool:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    try:
        with np.errstate(over="ignore"):   # a float beyond float32 becomes inf, refused below
            f32 = np.float32(value)
    except OverflowError:                  # an int beyond float64
        return False
    return bool(np.isfinite(f32) and f32 > 0)
