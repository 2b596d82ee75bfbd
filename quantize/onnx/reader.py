"""Reading an ``.onnx`` file into plain records, checking everything the importer relies on.

The file is read with the ``onnx`` package after intonly's own checks (a regular file within the size limit), then
checked by ``onnx.checker`` and given shapes by ``onnx.shape_inference``. Every failure is one
:class:`~quantize.errors.ModelFileError` naming the file (and the node or tensor).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..bounded_read import Limits, read_model_file
from ..errors import ModelFileError


@dataclass
class OnnxNode:
    index: int
    op: str          # op_type, prefixed with its domain when not the default one ("com.microsoft.QLinearAdd")
    name: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict

    @property
    def label(self) -> str:
        return f"node {self.index} {self.op} {self.name!r}"


@dataclass
class OnnxGraph:
    path: str
    nodes: list[OnnxNode]
    initializers: dict[str, np.ndarray]
    shapes: dict[str, tuple]      # every tensor whose shape inference found a static shape
    types: dict[str, str]         # numpy dtype names
    inputs: list[str]             # graph inputs that are not initializers
    outputs: list[str]


def read_onnx(path: Path, limits: Limits | None = None) -> OnnxGraph:
    import onnx
    from onnx import helper, numpy_helper, shape_inference

    where = str(path)
    data = read_model_file(Path(path), ModelFileError, "ONNX file", limits or Limits.from_env())
    try:
        model = onnx.load_model_from_string(data)
        onnx.checker.check_model(model)
        model = shape_inference.infer_shapes(model, strict_mode=True)
    except Exception as e:  # protobuf decode errors, checker and shape-inference failures
        raise ModelFileError(f"{where}: not a valid ONNX model ({type(e).__name__}: {str(e).splitlines()[0][:300]})") \
            from None
    g = model.graph
    try:
        inits = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    except Exception as e:
        raise ModelFileError(f"{where}: an initializer cannot be read ({type(e).__name__}: {e})") from None
    shapes, types = {}, {}
    for vi in list(g.input) + list(g.output) + list(g.value_info):
        t = vi.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim]
        if t.elem_type:
            try:
                types[vi.name] = helper.tensor_dtype_to_np_dtype(t.elem_type).name
            except (KeyError, ValueError):
                raise ModelFileError(f"{where}: tensor {vi.name!r} has element type {t.elem_type}, which ONNX does "
                                     "not define") from None
        if None not in dims:
            shapes[vi.name] = tuple(dims)
    for name, arr in inits.items():
        shapes[name], types[name] = tuple(arr.shape), arr.dtype.name
    nodes = []
    for i, n in enumerate(g.node):
        op = n.op_type if n.domain in ("", "ai.onnx") else f"{n.domain}.{n.op_type}"
        attrs = {a.name: helper.get_attribute_value(a) for a in n.attribute}
        nodes.append(OnnxNode(i, op, n.name, list(n.input), list(n.output), attrs))
    inputs = [i.name for i in g.input if i.name not in inits]
    return OnnxGraph(where, nodes, inits, shapes, types, inputs, [o.name for o in g.output])
