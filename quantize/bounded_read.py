"""Bounded reading of the files intonly loads: zip archives (``.intonly`` models, ``.npz`` data), ``.npy`` arrays
and JSON documents.

Every size is checked against a limit *before* anything of that size is read, decompressed or allocated, so a
hostile or damaged file is refused in well under a second and with little memory, whatever it declares:

* the archive is a regular file (not a directory, device or FIFO) of at most ``archive_bytes``;
* the zip end-of-central-directory record is read first: at most ``archive_members`` entries;
* a member is read only if its declared uncompressed size is within the limit its caller gives (zipfile then
  stops at that size: a member that inflates further fails its CRC); any zip or zlib failure (a flipped bit, an
  unsupported compression method, encryption, a truncated stream) is one error naming the member;
* a ``.npy`` is parsed header first (magic, version, header length <= 4 KiB, ``descr``/``shape``/``fortran_order``
  as literals, never a pickle); only numeric and boolean dtypes; the data must be exactly shape x itemsize bytes;
* JSON is measured before it is parsed: its nesting depth (brackets outside strings) must be at most
  ``json_depth``, and an object with a repeated key is refused.

The defaults of :class:`Limits` suit any model intonly deploys (they are far above MiniLM-L6 or EfficientNet);
each one can be raised for a session with an environment variable ``INTONLY_MAX_<NAME>`` (for example
``INTONLY_MAX_CONSTANT_BYTES=4294967296``) or for one call by passing ``Limits(...)``. Errors are raised as the
caller's :class:`~quantize.errors.IntonlyError` subclass (``error=``), naming the file and the member or field.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import math
import os
import re
import stat
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import ConfigError, IntonlyError

MiB = 2**20
# Everything zipfile and zlib raise for a damaged or unusual archive (a bad CRC or header, a zlib stream error, an
# unsupported version or compression method (NotImplementedError), encryption (RuntimeError), bad sizes).
ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, OSError, NotImplementedError,
              RuntimeError, ValueError, OverflowError, struct.error)
NPY_MAX_HEADER = 4096
NPY_DTYPES = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "float16", "float32", "float64",
              "bool")


@dataclass(frozen=True)
class Limits:
    """Upper bounds on what one file may declare. Raise one with ``INTONLY_MAX_<FIELD>`` (upper case)."""

    archive_bytes: int = 2048 * MiB     # size of an .intonly or .npz file on disk
    archive_members: int = 100_000      # entries in its zip central directory
    graph_json_bytes: int = 64 * MiB    # graph.json, uncompressed
    json_depth: int = 32                # nesting of JSON arrays/objects (graph.json needs 4)
    nodes: int = 100_000
    tensors: int = 200_000
    constants: int = 400_000
    constant_bytes: int = 512 * MiB     # all constants of a model together, uncompressed
    tensor_elements: int = 2**28        # elements of one tensor (per sample for activations)
    data_bytes: int = 2048 * MiB        # all arrays of one .npz data file together, uncompressed

    @classmethod
    def from_env(cls, environ=None) -> "Limits":
        """The defaults, with every ``INTONLY_MAX_<FIELD>`` set in the environment applied (a positive integer)."""
        environ = os.environ if environ is None else environ
        given = {}
        for f in dataclasses.fields(cls):
            var = "INTONLY_MAX_" + f.name.upper()
            if var in environ:
                text = environ[var].strip()
                if not re.fullmatch(r"[0-9]+", text) or int(text) < 1:
                    raise ConfigError(f"environment variable {var}={environ[var]!r}: must be a positive integer")
                given[f.name] = int(text)
        return cls(**given)

    @staticmethod
    def hint(field: str) -> str:
        return f"raise the limit with INTONLY_MAX_{field.upper()}=<n> if the file is trusted"


def over_limit(error: type[IntonlyError], where: str, what: str, value: int, limits: Limits, field: str):
    """Raise ``error`` when ``value`` (of ``what``) exceeds ``limits.<field>``."""
    limit = getattr(limits, field)
    if value > limit:
        raise error(f"{where}: {what} is {value:,}, over the limit of {limit:,} ({Limits.hint(field)})")


# ---- files and zip archives ---------------------------------------------------------------------------------

def read_model_file(path: Path, error: type[IntonlyError], what: str, limits: Limits) -> bytes:
    """The bytes of a model file another tool wrote (``.tflite``, ``.onnx``): a regular file of at most
    ``limits.archive_bytes``, checked before it is read."""
    where = str(path)
    size = regular_file_size(Path(path), error, where, what)
    over_limit(error, where, "file size", size, limits, "archive_bytes")
    return Path(path).read_bytes()


def file_kind(mode: int) -> str | None:
    """None for a regular file, else what the file is ("a directory", "a FIFO", ...), from ``os.stat``'s mode."""
    if stat.S_ISREG(mode):
        return None
    kinds = ((stat.S_ISDIR, "a directory"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
             (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"))
    return next((name for test, name in kinds if test(mode)), "a special file")


def regular_file_size(path: Path, error: type[IntonlyError], where: str, what: str = "file") -> int:
    """The size of ``path`` after checking it is a regular file (a symlink is followed; a directory, device,
    FIFO or socket is refused before anything opens it)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise error(f"{where}: no such file") from None
    except OSError as exc:
        raise error(f"{where}: cannot read the {what} ({exc.strerror})") from None
    kind = file_kind(st.st_mode)
    if kind is not None:
        raise error(f"{where}: the {what} is {kind}, not a regular file")
    return st.st_size


_EOCD = struct.Struct("<4s4H2LH")            # end of central directory
_ZIP64_LOCATOR = struct.Struct("<4sLQL")
_ZIP64_EOCD = struct.Struct("<4sQ2H2L4Q")


def _declared_members(fp, size: int) -> int | None:
    """Entries the archive's end-of-central-directory record declares (zip64 aware), or None if there is none
    (zipfile then reports the archive as corrupt)."""
    tail = min(size, _EOCD.size + 65535)
    fp.seek(size - tail)
    data = fp.read(tail)
    at = data.rfind(b"PK\x05\x06")
    if at < 0 or at + _EOCD.size > len(data):
        return None
    entries = _EOCD.unpack_from(data, at)[4]
    loc = at - _ZIP64_LOCATOR.size
    if entries == 0xFFFF and loc >= 0 and data[loc:loc + 4] == b"PK\x06\x07":
        offset = _ZIP64_LOCATOR.unpack_from(data, loc)[2]
        if offset + _ZIP64_EOCD.size <= size:
            fp.seek(offset)
            record = fp.read(_ZIP64_EOCD.size)
            if record[:4] == b"PK\x06\x06":
                entries = _ZIP64_EOCD.unpack(record)[5]
    return entries


def open_archive(path: Path, error: type[IntonlyError], where: str, limits: Limits, what: str) -> zipfile.ZipFile:
    """Open a zip archive within ``limits`` (file size, member count) and with no repeated member name."""
    size = regular_file_size(path, error, where, what)
    over_limit(error, where, f"the {what}'s size in bytes", size, limits, "archive_bytes")
    try:
        fp = open(path, "rb")
    except OSError as exc:
        raise error(f"{where}: cannot read the {what} ({exc.strerror})") from None
    try:
        members = _declared_members(fp, size)
        if members is not None:
            over_limit(error, where, "the number of archive members", members, limits, "archive_members")
        zf = zipfile.ZipFile(fp)
    except IntonlyError:
        fp.close()
        raise
    except ZIP_ERRORS as exc:
        fp.close()
        raise error(f"{where}: not an {what} (truncated or corrupt: {exc})") from None
    names = [i.filename for i in zf.infolist()]
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        zf.close()
        raise error(f"{where}: the archive holds member {dup!r} more than once")
    return zf


def read_member(zf: zipfile.ZipFile, name: str, max_bytes: int, error: type[IntonlyError], where: str,
                field: str) -> bytes:
    """The bytes of member ``name``; refused before reading when its declared size exceeds ``max_bytes``
    (``field`` names the limit in the message). A damaged member (CRC, zlib stream, unsupported method,
    encryption) is one ``error`` naming it."""
    try:
        info = zf.getinfo(name)
    except KeyError:
        raise error(f"{where}: {name} is missing from the archive") from None
    if info.file_size > max_bytes:
        raise error(f"{where}: {name} declares {info.file_size:,} bytes, over the limit of {max_bytes:,} "
                    f"({Limits.hint(field)})")
    try:
        return zf.read(info)
    except ZIP_ERRORS as exc:
        raise error(f"{where}: {name} is damaged and cannot be read ({type(exc).__name__}: {exc})") from None


# ---- .npy -----------------------------------------------------------------------------------------------------

def npy_header(data: bytes, error: type[IntonlyError], where: str) -> tuple[np.dtype, tuple[int, ...], bool, int]:
    """``(dtype, shape, fortran_order, data offset)`` from a .npy header, checked without evaluating anything but
    literals: magic and version 1.0/2.0/3.0, a header of at most 4 KiB, a numeric dtype (never ``object``)."""
    if len(data) < 10 or data[:6] != b"\x93NUMPY":
        raise error(f"{where}: not a .npy array (bad magic)")
    major = data[6]
    if major == 1:
        (hlen,), start = struct.unpack_from("<H", data, 8), 10
    elif major in (2, 3):
        if len(data) < 12:
            raise error(f"{where}: .npy header is truncated")
        (hlen,), start = struct.unpack_from("<L", data, 8), 12
    else:
        raise error(f"{where}: .npy format version {major}.{data[7]} is not supported")
    if hlen > NPY_MAX_HEADER or start + hlen > len(data):
        raise error(f"{where}: .npy header of {hlen:,} bytes is too long or truncated")
    try:
        text = data[start:start + hlen].decode("utf-8" if major == 3 else "latin1")
        header = ast.literal_eval(text)
    except (ValueError, SyntaxError, UnicodeDecodeError, MemoryError, RecursionError):
        raise error(f"{where}: .npy header is not a literal dictionary") from None
    if not isinstance(header, dict) or set(header) != {"descr", "fortran_order", "shape"}:
        raise error(f"{where}: .npy header must have exactly the keys descr, fortran_order, shape")
    descr, shape, fortran = header["descr"], header["shape"], header["fortran_order"]
    if not isinstance(descr, str):
        raise error(f"{where}: .npy dtype {descr!r} is not a plain numeric type (a structured or object array?)")
    try:
        dtype = np.dtype(descr)
    except (TypeError, ValueError):
        raise error(f"{where}: .npy dtype {descr!r} is not understood") from None
    if dtype.name not in NPY_DTYPES:
        raise error(f"{where}: .npy dtype {descr!r} is not a plain number type (one of {', '.join(NPY_DTYPES)})")
    if (not isinstance(shape, tuple) or len(shape) > 32 or
            not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)):
        raise error(f"{where}: .npy shape {shape!r} is not a tuple of non-negative integers")
    if not isinstance(fortran, bool):
        raise error(f"{where}: .npy fortran_order {fortran!r} is not a boolean")
    return dtype, shape, fortran, start + hlen


def parse_npy(data: bytes, error: type[IntonlyError], where: str) -> np.ndarray:
    """A .npy file's array (a C-contiguous, writable, native-endian copy of its shape), after :func:`npy_header` and a check
    that the data is exactly ``prod(shape) * itemsize`` bytes."""
    dtype, shape, fortran, offset = npy_header(data, error, where)
    expected = math.prod(shape) * dtype.itemsize
    if len(data) - offset != expected:
        raise error(f"{where}: .npy data is {len(data) - offset:,} bytes, its header ({dtype.name}{list(shape)}) "
                    f"declares {expected:,}")
    arr = np.frombuffer(data, dtype=dtype, count=math.prod(shape), offset=offset)
    arr = arr.reshape(shape, order="F" if fortran else "C")
    return arr.astype(dtype.newbyteorder("="), order="C", copy=True)   # 0-d arrays stay 0-d


def load_npz(path: Path, error: type[IntonlyError], where: str, limits: Limits) -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` file (``name.npy`` members), each header checked against ``data_bytes`` (all
    arrays together) before its data is read."""
    with open_archive(path, error, where, limits, ".npz file") as zf:
        arrays, budget = {}, limits.data_bytes
        for info in zf.infolist():
            if not info.filename.endswith(".npy"):
                raise error(f"{where}: member {info.filename!r} is not a .npy array (an .npz holds only those)")
            name = info.filename[:-4]
            at = f"{where}: array {name!r}"
            if info.file_size > budget + NPY_MAX_HEADER + 16:
                raise error(f"{at} declares {info.file_size:,} bytes, over what is left of the limit of "
                            f"{limits.data_bytes:,} for all arrays ({Limits.hint('data_bytes')})")
            head = _read_prefix(zf, info, NPY_MAX_HEADER + 16, error, at)
            dtype, shape, _, offset = npy_header(head, error, at)
            need = math.prod(shape) * dtype.itemsize
            if need > budget:
                raise error(f"{at} declares {dtype.name}{list(shape)} = {need:,} bytes, over what is left of the "
                            f"limit of {limits.data_bytes:,} for all arrays ({Limits.hint('data_bytes')})")
            if info.file_size != offset + need:
                raise error(f"{at}: the member is {info.file_size:,} bytes, its .npy header declares "
                            f"{offset + need:,}")
            budget -= need
            arrays[name] = parse_npy(read_member(zf, info.filename, offset + need, error, where, "data_bytes"),
                                     error, at)
    return arrays


def _read_prefix(zf: zipfile.ZipFile, info: zipfile.ZipInfo, n: int, error: type[IntonlyError], where: str) -> bytes:
    try:
        with zf.open(info) as f:
            return f.read(n)
    except ZIP_ERRORS as exc:
        raise error(f"{where}: the member is damaged and cannot be read ({type(exc).__name__}: {exc})") from None


# ---- JSON -----------------------------------------------------------------------------------------------------

_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)


def json_depth(data: bytes) -> int:
    """The deepest nesting of arrays and objects in a JSON text (brackets inside strings do not count)."""
    stripped = _JSON_STRING.sub(b"", data)
    codes = np.frombuffer(stripped, dtype=np.uint8)
    steps = (codes == ord("[")).astype(np.int64) + (codes == ord("{"))
    steps -= (codes == ord("]")).astype(np.int64) + (codes == ord("}"))
    return int(np.cumsum(steps).max(initial=0))


def parse_json(data: bytes, error: type[IntonlyError], where: str, limits: Limits):
    """Parse a JSON document after checking its nesting depth; an object with a repeated key is refused."""
    depth = json_depth(data)
    if depth > limits.json_depth:
        raise error(f"{where}: nests arrays/objects {depth:,} deep, over the limit of {limits.json_depth} "
                    f"({Limits.hint('json_depth')})")

    def unique_keys(pairs):
        keys = [k for k, _ in pairs]
        if len(set(keys)) != len(keys):
            dup = next(k for k in keys if keys.count(k) > 1)
            raise error(f"{where}: an object repeats the key {dup!r}")
        return dict(pairs)

    try:
        return json.loads(data, object_pairs_hook=unique_keys)
    except UnicodeDecodeError as exc:
        raise error(f"{where}: is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except (ValueError, RecursionError) as exc:
        raise error(f"{where}: is not valid JSON ({exc})") from None
