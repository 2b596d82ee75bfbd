"""Reading a ``.tflite`` flatbuffer into plain records, checking everything the importer relies on.

The flatbuffer is parsed with the schema bindings that the ``tflite-micro`` package ships
(``schema_py_generated``, TensorFlow Lite's ``schema.fbs``). Before anything is converted, the file must be a
regular file within the size limit, carry the ``TFL3`` file identifier, parse, hold one subgraph, and every
index (operator code, tensor, buffer) and every buffer's size must agree with what refers to it; quantization
parameters must come in matching numbers on an axis the tensor has. Each violation is one
:class:`~quantize.errors.ModelFileError` naming the file, the operator index or tensor, and the field.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..bounded_read import Limits, read_model_file
from ..errors import ModelFileError

FILE_IDENTIFIER = b"TFL3"
# TensorFlow Lite TensorType -> numpy dtype, for the types whose data intonly reads
NUMPY_TYPES = {"FLOAT32": np.float32, "INT32": np.int32, "UINT8": np.uint8, "INT64": np.int64, "INT16": np.int16,
               "INT8": np.int8, "BOOL": np.bool_, "FLOAT16": np.float16, "FLOAT64": np.float64, "UINT32": np.uint32,
               "UINT16": np.uint16}


def _schema():
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as tfl
    return tfl


def _enum_names(enum) -> dict[int, str]:
    return {v: k for k, v in vars(enum).items() if not k.startswith("_")}


@dataclass
class Tensor:
    """One tensor of the subgraph: ``shape`` as stored (batch first for activations); ``scales``/``zero_points``
    its quantization (None when absent) along ``axis``; ``data`` its constant buffer (None for activations)."""

    index: int
    name: str
    type: str
    shape: tuple[int, ...]
    scales: np.ndarray | None
    zero_points: np.ndarray | None
    axis: int
    data: np.ndarray | None

    @property
    def label(self) -> str:
        return f"tensor {self.index} {self.name!r}"

    @property
    def per_channel(self) -> bool:
        return self.scales is not None and len(self.scales) > 1


@dataclass
class Operator:
    """One operator: its position, builtin name (``CUSTOM:<code>`` for custom ops), tensor indices (-1 for an
    omitted optional input) and its options object (the schema's ``...OptionsT``, or None)."""

    index: int
    name: str
    inputs: list[int]
    outputs: list[int]
    options: object


@dataclass
class TFLiteGraph:
    path: str
    tensors: list[Tensor]
    operators: list[Operator]
    inputs: list[int]
    outputs: list[int]

    def tensor(self, index: int) -> Tensor | None:
        return None if index < 0 else self.tensors[index]


def read_tflite(path: Path, limits: Limits | None = None) -> TFLiteGraph:
    """Parse and check ``path`` (see the module docstring)."""
    where = str(path)
    data = read_model_file(Path(path), ModelFileError, "TensorFlow Lite file", limits or Limits.from_env())
    if len(data) < 8 or data[4:8] != FILE_IDENTIFIER:
        raise ModelFileError(f"{where}: not a TensorFlow Lite flatbuffer (file identifier {data[4:8]!r}, expected "
                             f"{FILE_IDENTIFIER!r})")
    tfl = _schema()
    try:
        model = tfl.ModelT.InitFromObj(tfl.Model.GetRootAsModel(data, 0))
    except Exception as e:  # the generated reader raises whatever a bad offset leads it to
        raise ModelFileError(f"{where}: the flatbuffer is damaged ({type(e).__name__}: {e})") from None
    subgraphs = model.subgraphs or []
    if len(subgraphs) != 1:
        raise ModelFileError(f"{where}: holds {len(subgraphs)} subgraphs; intonly imports models of exactly one "
                             "(no control flow)")
    sg = subgraphs[0]
    buffers = model.buffers or []
    type_names = _enum_names(tfl.TensorType)
    tensors = [_tensor(where, i, t, buffers, data, type_names) for i, t in enumerate(sg.tensors or [])]
    codes = model.operatorCodes or []
    op_names = _enum_names(tfl.BuiltinOperator)
    operators = []
    for k, op in enumerate(sg.operators or []):
        at = f"{where}: operator {k}"
        if not 0 <= op.opcodeIndex < len(codes):
            raise ModelFileError(f"{at}: opcode index {op.opcodeIndex} outside the {len(codes)} operator codes")
        code = codes[op.opcodeIndex]
        builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
        name = op_names.get(builtin, f"BUILTIN_{builtin}")
        if name == "CUSTOM":
            name = f"CUSTOM:{(code.customCode or b'').decode('utf-8', 'replace')}"
        ins = [int(i) for i in (op.inputs if op.inputs is not None else [])]
        outs = [int(i) for i in (op.outputs if op.outputs is not None else [])]
        for role, idx in [("input", i) for i in ins] + [("output", i) for i in outs]:
            if not (-1 <= idx < len(tensors)) or (role == "output" and idx < 0):
                raise ModelFileError(f"{at} ({name}): {role} tensor index {idx} outside the {len(tensors)} tensors")
        operators.append(Operator(k, name, ins, outs, op.builtinOptions))
    graph_io = []
    for role, idxs in (("input", sg.inputs), ("output", sg.outputs)):
        idxs = [int(i) for i in (idxs if idxs is not None else [])]
        bad = [i for i in idxs if not 0 <= i < len(tensors)]
        if bad or not idxs:
            raise ModelFileError(f"{where}: subgraph {role} indices {idxs} must be 1+ of the {len(tensors)} tensors")
        graph_io.append(idxs)
    return TFLiteGraph(where, tensors, operators, *graph_io)


def _tensor(where: str, index: int, t, buffers, file_bytes: bytes, type_names: dict) -> Tensor:
    name = (t.name or b"").decode("utf-8", "replace")
    label = f"{where}: tensor {index} {name!r}"
    type_name = type_names.get(t.type, f"type {t.type}")
    shape = tuple(int(d) for d in (t.shape if t.shape is not None else []))
    if any(d < 0 for d in shape):
        raise ModelFileError(f"{label}: negative dimension in shape {list(shape)}")
    data = None
    if t.buffer != 0:
        if not 0 <= t.buffer < len(buffers):
            raise ModelFileError(f"{label}: buffer index {t.buffer} outside the {len(buffers)} buffers")
        data = _buffer_data(label, buffers[t.buffer], file_bytes, type_name, shape)
    scales = zero_points = None
    axis = 0
    q = t.quantization
    if q is not None and q.scale is not None and len(q.scale):
        scales = np.asarray(q.scale, dtype=np.float32)
        zero_points = np.asarray(q.zeroPoint if q.zeroPoint is not None else [], dtype=np.int64)
        axis = int(q.quantizedDimension)
        if len(zero_points) != len(scales):
            raise ModelFileError(f"{label}: {len(scales)} quantization scales but {len(zero_points)} zero points")
        if len(scales) > 1 and not (0 <= axis < len(shape) and shape[axis] == len(scales)):
            raise ModelFileError(f"{label}: {len(scales)} per-channel scales on axis {axis}, but the shape is "
                                 f"{list(shape)}")
        if not np.all(np.isfinite(scales) & (scales > 0)):
            raise ModelFileError(f"{label}: quantization scales must be finite and > 0, got {scales[:8].tolist()}")
    return Tensor(index, name, type_name, shape, scales, zero_points, axis, data)


def _buffer_data(label: str, buffer, file_bytes: bytes, type_name: str, shape) -> np.ndarray | None:
    """The constant's elements, from the buffer's own vector or from its (offset, size) into the file."""
    if buffer.offset > 1:  # models above 2 GB keep buffers after the flatbuffer (1 marks "empty")
        if buffer.offset + buffer.size > len(file_bytes):
            raise ModelFileError(f"{label}: buffer at offset {buffer.offset} of {buffer.size} bytes ends beyond the "
                                 f"file ({len(file_bytes)} bytes)")
        raw = file_bytes[buffer.offset:buffer.offset + buffer.size]
    elif buffer.data is not None and len(buffer.data):
        raw = np.asarray(buffer.data, dtype=np.uint8).tobytes()
    else:
        return None
    dtype = NUMPY_TYPES.get(type_name)
    if dtype is None:
        raise ModelFileError(f"{label}: constant of type {type_name} (intonly reads {', '.join(NUMPY_TYPES)})")
    want = math.prod(shape) * np.dtype(dtype).itemsize
    if len(raw) != want:
        raise ModelFileError(f"{label}: buffer holds {len(raw)} bytes, the shape {list(shape)} of {type_name} needs "
                             f"{want}")
    return np.frombuffer(raw, dtype=dtype).reshape(shape).copy()
