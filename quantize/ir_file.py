"""The ``.intonly`` file format: writing an IntModel, and reading one back within bounded time and memory.

A zip archive (version :data:`FORMAT_VERSION`) holding

* ``graph.json`` — ``{"format": "intonly", "version": 1, "name", "rounding", "inputs", "outputs",
  "tensors": [...], "nodes": [...], "constants": {name: {"file", "dtype", "shape", "sha256"}}}``;
* ``constants/<i>.npy`` — one array per constant.

Reading is bounded by :class:`quantize.bounded_read.Limits` and checks, in this order, before anything large is
read: the archive (a regular file, its size and member count), ``graph.json`` (declared size, JSON nesting,
repeated keys), the document's structure (every field's type, counts of nodes/tensors/constants, every shape's
rank and element count, the declared bytes of all constants together), then each constant member (declared size
against its shape, sha256, .npy header against the graph's dtype and shape; never a pickle), and finally
:meth:`quantize.ir.IntModel.validate` (ops, attributes, names, metadata, shapes, overflow proofs). Every refusal
is one :class:`~quantize.errors.ModelFileError` naming the file and the member, node or field.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import tempfile
import zipfile
from dataclasses import asdict
from pathlib import Path

import numpy as np

from .bounded_read import (NPY_MAX_HEADER, Limits, open_archive, over_limit, parse_json, parse_npy, read_member)
from .errors import ModelFileError
from .names import CONSTANT_DTYPES
from .ops import MAX_RANK

FORMAT_VERSION = 1
GRAPH_FIELDS = ("format", "version", "name", "rounding", "inputs", "outputs", "tensors", "nodes", "constants")
TENSOR_FIELDS = {"name": str, "dtype": str, "shape": list, "scale": (int, float), "zero_point": int, "bits": int,
                 "source": str, "layout": str, "encoding": str}
TENSOR_REQUIRED = ("name", "dtype", "shape")
NODE_FIELDS = {"name": str, "op": str, "inputs": list, "outputs": list, "attrs": dict, "params": dict}
NODE_REQUIRED = ("name", "op", "inputs", "outputs")
CONSTANT_FIELDS = {"file": str, "dtype": str, "shape": list, "sha256": str}
MAX_NAME = 4096  # characters of any name in graph.json


def save_model(model, path: str | Path) -> Path:
    """Write ``model`` (validated first) as one archive, atomically: a temporary file in the destination folder,
    then a rename; the temporary file is removed if anything fails."""
    model.validate()
    path = Path(path)
    entries = {}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for i, (name, arr) in enumerate(sorted(model.constants.items())):
            arr_buf = io.BytesIO()
            np.save(arr_buf, np.ascontiguousarray(arr), allow_pickle=False)
            data = arr_buf.getvalue()
            entries[name] = {"file": f"constants/{i}.npy", "dtype": str(arr.dtype), "shape": list(arr.shape),
                             "sha256": hashlib.sha256(data).hexdigest()}
            zf.writestr(entries[name]["file"], data)
        graph = {
            "format": "intonly", "version": FORMAT_VERSION, "name": model.name, "rounding": model.rounding,
            "inputs": model.inputs, "outputs": model.outputs,
            "tensors": [{**asdict(t), "shape": list(t.shape)} for t in model.tensors.values()],
            "nodes": [asdict(n) for n in model.nodes], "constants": entries,
        }
        zf.writestr("graph.json", json.dumps(graph, indent=1))
    return write_atomically(path, buf.getvalue())


def write_atomically(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file beside it and a rename, so ``path`` is either the old
    file or the whole new one; the temporary file is removed if anything fails (an interruption included)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_model(path: str | Path, limits: Limits | None = None) -> dict:
    """The fields of an :class:`~quantize.ir.IntModel` read from ``path`` (not yet validated as a graph): see
    the module docstring for every check and its order."""
    from .ir import Node, TensorInfo

    limits = limits or Limits.from_env()
    path = Path(path)
    where = str(path)
    with open_archive(path, ModelFileError, where, limits, "intonly model archive") as zf:
        data = read_member(zf, "graph.json", limits.graph_json_bytes, ModelFileError, where, "graph_json_bytes")
        graph = parse_json(data, ModelFileError, f"{where}: graph.json", limits)
        if not isinstance(graph, dict) or graph.get("format") != "intonly":
            raise ModelFileError(f"{where}: graph.json is not an intonly graph")
        if graph.get("version") != FORMAT_VERSION:
            raise ModelFileError(f"{where}: format version {graph.get('version')!r} is not supported "
                                 f"(this intonly reads version {FORMAT_VERSION})")
        doc = _Document(where, limits)
        doc.check(graph)
        expected = {"graph.json"} | {meta["file"] for meta in graph["constants"].values()}
        extra = sorted(set(zf.namelist()) - expected)
        if extra:
            raise ModelFileError(f"{where}: the archive holds {extra[0]!r}, which graph.json does not list"
                                 + (f" (and {len(extra) - 1} more)" if len(extra) > 1 else ""))
        constants = {name: _read_constant(zf, name, meta, where) for name, meta in graph["constants"].items()}
    tensors = {t["name"]: TensorInfo(**{**t, "shape": tuple(t["shape"])}) for t in graph["tensors"]}
    nodes = [Node(**n) for n in graph["nodes"]]
    return {"name": graph["name"], "rounding": graph["rounding"], "inputs": list(graph["inputs"]),
            "outputs": list(graph["outputs"]), "tensors": tensors, "nodes": nodes, "constants": constants}


def _read_constant(zf, name: str, meta: dict, where: str) -> np.ndarray:
    """One constant member, checked against its graph.json entry: size (before reading), sha256, .npy header."""
    member = meta["file"]
    at = f"{where}: constant {name!r} ({member})"
    try:
        info = zf.getinfo(member)
    except KeyError:
        raise ModelFileError(f"{at} is missing from the archive") from None
    need = math.prod(meta["shape"]) * np.dtype(meta["dtype"]).itemsize
    if not need <= info.file_size <= need + NPY_MAX_HEADER + 16:
        raise ModelFileError(f"{at} is {info.file_size:,} bytes, but graph.json declares {meta['dtype']}"
                             f"{meta['shape']} ({need:,} bytes of data)")
    data = read_member(zf, member, info.file_size, ModelFileError, where, "constant_bytes")
    if hashlib.sha256(data).hexdigest() != meta["sha256"]:
        raise ModelFileError(f"{at} fails its checksum (the file was edited or damaged)")
    arr = parse_npy(data, ModelFileError, at)
    if str(arr.dtype) != meta["dtype"] or list(arr.shape) != meta["shape"]:
        raise ModelFileError(f"{at} is {arr.dtype}{list(arr.shape)}, graph.json says {meta['dtype']}{meta['shape']}")
    return arr


class _Document:
    """The structural checks of graph.json: field names and types, counts and sizes against the limits."""

    def __init__(self, where: str, limits: Limits):
        self.where, self.limits = f"{where}: graph.json", limits

    def fail(self, at: str, problem: str):
        raise ModelFileError(f"{self.where}: {at}: {problem}")

    def check(self, graph: dict) -> None:
        unknown = sorted(set(graph) - set(GRAPH_FIELDS))
        if unknown:
            self.fail(f"field {unknown[0]!r}", "is not a field of format version 1")
        for key in GRAPH_FIELDS:
            if key not in graph:
                self.fail(f"field {key!r}", "is missing")
        for key in ("name", "rounding"):
            self.name(graph[key], key)
        for key in ("inputs", "outputs"):
            self.names(graph[key], key)
        for key, kind, limit in (("tensors", list, "tensors"), ("nodes", list, "nodes"),
                                 ("constants", dict, "constants")):
            if not isinstance(graph[key], kind):
                self.fail(key, f"must be a JSON {'array' if kind is list else 'object'}")
            over_limit(ModelFileError, self.where, f"the number of {key}", len(graph[key]), self.limits, limit)
        seen: dict[str, int] = {}
        for i, t in enumerate(graph["tensors"]):
            at = f"tensors[{i}]"
            self.record(t, at, TENSOR_FIELDS, TENSOR_REQUIRED)
            if t["name"] in seen:
                self.fail(at, f"name {t['name']!r} is used by tensors[{seen[t['name']]}] too")
            seen[t["name"]] = i
            self.shape(t["shape"], f"{at} ({t['name']!r}).shape", minimum=1, limit="tensor_elements")
        for i, n in enumerate(graph["nodes"]):
            at = f"nodes[{i}]"
            self.record(n, at, NODE_FIELDS, NODE_REQUIRED)
            for key in ("inputs", "outputs"):
                self.names(n[key], f"{at}.{key}")
            for key, value in n.get("params", {}).items():
                self.name(value, f"{at}.params[{key!r}]")
        total, files = 0, {}
        for name, meta in graph["constants"].items():
            at = f"constants[{name!r}]"
            self.name(name, at)
            self.record(meta, at, CONSTANT_FIELDS, tuple(CONSTANT_FIELDS))
            if meta["dtype"] not in CONSTANT_DTYPES:
                self.fail(f"{at}.dtype", f"{meta['dtype']!r} is not one of {', '.join(CONSTANT_DTYPES)}")
            self.shape(meta["shape"], f"{at}.shape", minimum=0, limit=None)  # constant_bytes bounds them
            if meta["file"] in files:
                self.fail(f"{at}.file", f"{meta['file']!r} is also the file of constant {files[meta['file']]!r}")
            files[meta["file"]] = name
            total += math.prod(meta["shape"]) * np.dtype(meta["dtype"]).itemsize
        over_limit(ModelFileError, self.where, "the constants' declared size in bytes", total, self.limits,
                   "constant_bytes")

    def record(self, value, at: str, fields: dict, required: tuple) -> None:
        if not isinstance(value, dict):
            self.fail(at, "must be a JSON object")
        for key in value:
            if key not in fields:
                self.fail(f"{at}.{key}", "is not a known field")
        for key in required:
            if key not in value:
                self.fail(f"{at}.{key}", "is missing")
        for key, item in value.items():
            kind = fields[key]
            if not isinstance(item, kind) or isinstance(item, bool):
                names = "number" if kind == (int, float) else {str: "string", list: "array", dict: "object",
                                                              int: "integer"}[kind]
                self.fail(f"{at}.{key}", f"must be a JSON {names}, got {_short(item)}")
            if kind is str and len(item) > MAX_NAME:
                self.fail(f"{at}.{key}", f"is {len(item):,} characters long (at most {MAX_NAME})")

    def name(self, value, at: str) -> None:
        if not isinstance(value, str):
            self.fail(at, f"must be a string, got {_short(value)}")
        if len(value) > MAX_NAME:
            self.fail(at, f"is {len(value):,} characters long (at most {MAX_NAME})")

    def names(self, value, at: str) -> None:
        if not isinstance(value, list):
            self.fail(at, f"must be an array of strings, got {_short(value)}")
        for i, item in enumerate(value):
            self.name(item, f"{at}[{i}]")

    def shape(self, value, at: str, minimum: int, limit: str | None) -> None:
        if (not isinstance(value, list) or len(value) > MAX_RANK or
                not all(isinstance(d, int) and not isinstance(d, bool) and d >= minimum for d in value)):
            self.fail(at, f"must be at most {MAX_RANK} integers >= {minimum}, got {_short(value)}")
        if limit:
            over_limit(ModelFileError, f"{self.where}: {at}", "the number of elements", math.prod(value), self.limits,
                       limit)


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
