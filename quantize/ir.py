"""IntModel: the integer-only intermediate representation, and its file format.

An IntModel is a topologically ordered list of :class:`Node` over named :class:`TensorInfo`
values, plus integer constants (weights, biases, per-channel multipliers and shifts).
Between the ``quantize`` node at the input and the ``dequantize`` node at the output
every op is integer; scales are metadata for users and reports, never read by an integer op.

File format (``.intonly``, version :data:`FORMAT_VERSION`): a zip archive holding

* ``graph.json`` — ``{"format": "intonly", "version": 1, "name", "rounding", "inputs", "outputs",
  "tensors": [...], "nodes": [...], "constants": {name: {"file", "dtype", "shape", "sha256"}}}``
* ``constants/<i>.npy`` — one NumPy array per constant, loaded with ``allow_pickle=False``.

Loading checks the format name and version, every constant's checksum, dtype and shape,
every node's attributes against :data:`quantize.ops.OPS`, and re-infers every shape.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .bounds import attr_errors, node_bounds
from .errors import ModelFileError
from .ops import ACT_DTYPES, OPS, ROUNDING_MODES, check_attrs, infer_shape

FORMAT_VERSION = 1
DTYPE_RANGE = {"int8": (-128, 127), "int16": (-32768, 32767), "int32": (-2**31, 2**31 - 1)}
NUMPY_DTYPES = {"int8": np.int8, "int16": np.int16, "int32": np.int32, "float32": np.float32}


def storage_dtype(bits: int) -> str:
    """Smallest signed storage type for a ``bits``-bit integer tensor."""
    return "int8" if bits <= 8 else "int16" if bits <= 16 else "int32"


@dataclass
class TensorInfo:
    """A value in the graph. ``shape`` is per sample (no batch), HWC for images.

    ``scale``/``zero_point`` give ``real = scale * (q - zero_point)`` (metadata only);
    ``bits`` is the quantized width, stored in ``dtype``. ``source`` names the float-graph
    value this tensor approximates (used by ``compare``); ``layout`` is "HWC", "CHW" or "".
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
        """Multiply-accumulates one sample costs in ``node`` (0 for ops without products)."""
        if node.op == "conv2d":
            oh, ow, oc = self.tensors[node.outputs[0]].shape
            _, kh, kw, icg = self.param(node, "weight").shape
            return oh * ow * oc * kh * kw * icg
        if node.op == "dense":
            return int(self.param(node, "weight").size) * math.prod(self.tensors[node.inputs[0]].shape[:-1])
        if node.op in ("matmul", "shift_matmul"):
            out = self.tensors[node.outputs[0]].shape
            return math.prod(out) * self.tensors[node.inputs[0]].shape[-1]
        return 0

    def parameter_count(self, node: Node) -> int:
        return int(sum(self.constants[c].size for c in node.params.values()))

    def integer_nodes(self) -> list[Node]:
        return [n for n in self.nodes if OPS[n.op].integer]

    # ---- validation ----------------------------------------------------------------------
    def validate(self, where: str = "model") -> None:
        """Raise :class:`ModelFileError` naming the node and field of the first inconsistency."""
        if self.rounding not in ROUNDING_MODES:
            raise ModelFileError(f"{where}: rounding {self.rounding!r} is not one of {ROUNDING_MODES}")
        for t in self.tensors.values():
            if t.dtype not in NUMPY_DTYPES:
                raise ModelFileError(f"{where}: tensor {t.name!r} has unknown dtype {t.dtype!r}")
            if t.dtype in ACT_DTYPES and not (2 <= t.bits <= 16 and storage_dtype(t.bits) == t.dtype):
                raise ModelFileError(f"{where}: tensor {t.name!r} has bits={t.bits} stored as {t.dtype}")
        defined = set(self.inputs)
        for t in self.inputs:
            if t not in self.tensors:
                raise ModelFileError(f"{where}: graph input {t!r} has no tensor entry")
        for i, node in enumerate(self.nodes):
            at = f"{where}: node {i} {node.name!r} ({node.op})"
            check_attrs(node.op, node.attrs, at)
            schema = OPS[node.op]
            if schema.n_inputs is not None and len(node.inputs) != schema.n_inputs:
                raise ModelFileError(f"{at}: expects {schema.n_inputs} inputs, has {len(node.inputs)}")
            if len(node.outputs) != 1:
                raise ModelFileError(f"{at}: must have exactly one output")
            for t in node.inputs:
                if t not in defined:
                    raise ModelFileError(f"{at}: input {t!r} is not produced by an earlier node")
            if set(node.params) != set(schema.params):
                raise ModelFileError(f"{at}: params {sorted(node.params)} != {sorted(schema.params)}")
            for role, allowed in schema.params.items():
                arr = self.constants.get(node.params[role])
                if arr is None:
                    raise ModelFileError(f"{at}: constant {node.params[role]!r} ({role}) is missing")
                if str(arr.dtype) not in allowed:
                    raise ModelFileError(f"{at}: {role} has dtype {arr.dtype}, expected one of {allowed}")
            shapes = {r: tuple(self.constants[c].shape) for r, c in node.params.items()}
            try:
                out_shape = infer_shape(node.op, node.attrs, [self.tensors[t].shape for t in node.inputs], shapes)
            except (ValueError, KeyError, TypeError) as exc:
                raise ModelFileError(f"{at}: {exc}") from None
            out = self.tensors.get(node.outputs[0])
            if out is None:
                raise ModelFileError(f"{at}: output {node.outputs[0]!r} has no tensor entry")
            if tuple(out.shape) != out_shape:
                raise ModelFileError(f"{at}: output {out.name!r} shape {out.shape} != inferred {out_shape}")
            if "multiplier" in schema.params:
                channels = shapes["weight"][0]
                for role in ("bias", "multiplier", "shift"):
                    if shapes[role] != (channels,):
                        raise ModelFileError(f"{at}: {role} shape {shapes[role]} != ({channels},)")
                self._check_requant(at, self.param(node, "multiplier"), self.param(node, "shift"))
            if "multiplier" in node.attrs:
                self._check_requant(at, np.array([node.attrs["multiplier"]]), np.array([node.attrs["shift"]]))
            for problem in attr_errors(node):
                raise ModelFileError(f"{at}: {problem}")
            for bound in node_bounds(self, node):
                if not bound.holds:
                    raise ModelFileError(f"{at}: {bound.what} can overflow (|value| <= {bound.value} > "
                                         f"{bound.limit})")
            if "act_min" in node.attrs:
                lo, hi = out.qrange() if out.dtype in ACT_DTYPES else DTYPE_RANGE[out.dtype]
                if not (lo <= node.attrs["act_min"] <= node.attrs["act_max"] <= hi):
                    raise ModelFileError(f"{at}: clamp [{node.attrs['act_min']}, {node.attrs['act_max']}] "
                                         f"outside the {out.bits}-bit range [{lo}, {hi}]")
            defined.add(node.outputs[0])
        for t in self.outputs:
            if t not in defined:
                raise ModelFileError(f"{where}: graph output {t!r} is never produced")

    @staticmethod
    def _check_requant(at: str, mult: np.ndarray, shift: np.ndarray) -> None:
        if shift.size and (shift.min() < 1 or shift.max() > 62):
            raise ModelFileError(f"{at}: shift outside 1..62")
        if mult.size and (mult.min() < 0 or mult.max() > 2**31 - 1):
            raise ModelFileError(f"{at}: multiplier outside 0..2^31-1")

    def producer(self, tensor: str) -> Node | None:
        return next((n for n in self.nodes if tensor in n.outputs), None)

    # ---- file format ---------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the model as one ``.intonly`` zip archive (atomically: temp file, then rename)."""
        self.validate()
        path = Path(path)
        entries = {}
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            for i, (name, arr) in enumerate(sorted(self.constants.items())):
                arr_buf = io.BytesIO()
                np.save(arr_buf, np.ascontiguousarray(arr), allow_pickle=False)
                data = arr_buf.getvalue()
                entries[name] = {"file": f"constants/{i}.npy", "dtype": str(arr.dtype), "shape": list(arr.shape),
                                 "sha256": hashlib.sha256(data).hexdigest()}
                zf.writestr(entries[name]["file"], data)
            graph = {
                "format": "intonly", "version": FORMAT_VERSION, "name": self.name, "rounding": self.rounding,
                "inputs": self.inputs, "outputs": self.outputs,
                "tensors": [{**asdict(t), "shape": list(t.shape)} for t in self.tensors.values()],
                "nodes": [asdict(n) for n in self.nodes], "constants": entries,
            }
            zf.writestr("graph.json", json.dumps(graph, indent=1))
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(buf.getvalue())
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "IntModel":
        """Read and validate an ``.intonly`` file; any defect raises :class:`ModelFileError` naming it."""
        path = Path(path)
        where = str(path)
        try:
            zf = zipfile.ZipFile(path)
        except FileNotFoundError:
            raise ModelFileError(f"{where}: no such file") from None
        except (zipfile.BadZipFile, OSError) as exc:
            raise ModelFileError(f"{where}: not an intonly model archive (truncated or corrupt: {exc})") from None
        with zf:
            try:
                graph = json.loads(zf.read("graph.json"))
            except KeyError:
                raise ModelFileError(f"{where}: graph.json is missing from the archive") from None
            except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
                raise ModelFileError(f"{where}: graph.json is unreadable: {exc}") from None
            if not isinstance(graph, dict) or graph.get("format") != "intonly":
                raise ModelFileError(f"{where}: graph.json is not an intonly graph")
            if graph.get("version") != FORMAT_VERSION:
                raise ModelFileError(f"{where}: format version {graph.get('version')!r} is not supported "
                                     f"(this intonly reads version {FORMAT_VERSION})")
            try:
                constants = {}
                for name, meta in graph["constants"].items():
                    try:
                        data = zf.read(meta["file"])
                    except (KeyError, zipfile.BadZipFile, OSError, EOFError) as exc:
                        raise ModelFileError(f"{where}: constant {name!r} ({meta['file']}) unreadable: {exc}")
                    if hashlib.sha256(data).hexdigest() != meta["sha256"]:
                        raise ModelFileError(f"{where}: constant {name!r} ({meta['file']}) fails its checksum "
                                             "(the file was edited or damaged)")
                    arr = np.load(io.BytesIO(data), allow_pickle=False)
                    if str(arr.dtype) != meta["dtype"] or list(arr.shape) != meta["shape"]:
                        raise ModelFileError(f"{where}: constant {name!r} is {arr.dtype}{list(arr.shape)}, "
                                             f"graph.json says {meta['dtype']}{meta['shape']}")
                    constants[name] = arr
                tensors = {}
                for t in graph["tensors"]:
                    info = TensorInfo(**{**t, "shape": tuple(t["shape"])})
                    tensors[info.name] = info
                nodes = [Node(**n) for n in graph["nodes"]]
                model = cls(name=graph["name"], rounding=graph["rounding"], inputs=list(graph["inputs"]),
                            outputs=list(graph["outputs"]), tensors=tensors, nodes=nodes, constants=constants)
            except (KeyError, TypeError, ValueError) as exc:
                raise ModelFileError(f"{where}: graph.json is malformed ({type(exc).__name__}: {exc})") from None
        model.validate(where)
        return model
