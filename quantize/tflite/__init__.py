"""TensorFlow Lite import: a quantized ``.tflite`` model as an IntModel that reproduces TFLM bit for bit.

``import_tflite(path)`` reads and checks the flatbuffer (:mod:`.reader`), converts every operator with its
builtin's converter (:mod:`.builtins`, TFLite's exact integer definitions) and returns the validated IntModel
with the map from TFLite tensor indices to IR tensor names (for comparing every intermediate tensor against the
TFLM interpreter). docs/import.md lists the builtins and what each reproduces.
"""

from __future__ import annotations

from pathlib import Path

from .convert import TFLiteImport, import_graph
from .reader import read_tflite

__all__ = ["import_tflite", "TFLiteImport"]


def import_tflite(path, name: str | None = None) -> TFLiteImport:
    path = Path(path)
    return import_graph(read_tflite(path), name or path.stem)
