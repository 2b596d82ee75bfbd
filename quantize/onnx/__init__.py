"""ONNX import: a statically quantized ``.onnx`` model (QDQ or QOperator form, as ``onnxruntime.quantization``
writes them) as an IntModel; ``import_onnx(path)`` reads and checks it (:mod:`.reader`) and converts every node
(:mod:`.convert`, :mod:`.ops`). docs/import.md#onnx states the numerics and ONNX Runtime's tolerance."""

from __future__ import annotations

from pathlib import Path

from .convert import OnnxImport, import_graph
from .reader import read_onnx

__all__ = ["import_onnx", "OnnxImport"]


def import_onnx(path, name: str | None = None) -> OnnxImport:
    path = Path(path)
    return import_graph(read_onnx(path), name or path.stem)
