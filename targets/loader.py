"""Read, validate and find target files (``targets/specs/<name>.toml``, format in docs/targets.md).

Contract:

* :func:`load_file` parses one TOML file and returns a :class:`~targets.spec.Target`, or raises ONE
  :class:`TargetError` naming the file and the field (``{path}: field 'memory[1].bandwidth_bytes_per_cycle': must
  be > 0, got -4.0``). Every number must be a table ``{ value = <number>, source = "<where it comes from>" }``.
* :func:`load_target` resolves a spec: ``NAME``, ``NAME@480MHz`` / ``NAME@0.48GHz`` (clock override), or a path
  to a ``.toml`` file (with or without the ``@`` suffix).
* :func:`list_targets` returns every target on the search path, sorted by kind (``KINDS`` order) then name.

Search path, in order: the built-in ``targets/specs/``; the directories in ``$INTONLY_TARGET_PATH``
(``os.pathsep``-separated); ``extra_dirs`` (the CLI's ``--target-dir``); the directories given by the
``intonly.targets`` entry points (each loads to a directory, or to a zero-argument callable returning one). Two
files defining the same name are an error naming both.

The schema is one table (:data:`SCHEMA`): field name -> field kind. Each kind validates its raw TOML value
(``parse``), writes a value back as a document (``dump``, the inverse, used by ``--json``) and lists its rows
for display (``rows``).
"""

from __future__ import annotations

import functools
import importlib.metadata
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from quantize.errors import IntonlyError

from .spec import HOLDS, KINDS, OP_CLASSES, ROUNDINGS, SATURATIONS, MemoryLevel, Numerics, Sourced, Target, Toolchain

SCHEMA_VERSION = 1
BUILTIN_DIR = Path(__file__).parent / "specs"
ENV_VAR = "INTONLY_TARGET_PATH"
ENTRY_POINT_GROUP = "intonly.targets"


class TargetError(IntonlyError):
    """A target file or target spec is unreadable, invalid, ambiguous or unknown."""


class _Invalid(Exception):
    """A problem at a field; :func:`parse_document` prefixes the file name."""


# --- field kinds --------------------------------------------------------------------------------------------------

def _get(obj, key):
    return obj[key] if isinstance(obj, Mapping) else getattr(obj, key)


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.6g}"


@dataclass(frozen=True)
class Number:
    """A sourced number ``{ value = <number>, source = "<text>" }`` -> :class:`Sourced`."""
    positive: bool          # True: > 0, False: >= 0
    unit: str
    optional: bool = False

    def parse(self, raw, field):
        if (not isinstance(raw, dict) or set(raw) != {"value", "source"} or not _is_number(raw["value"])
                or not isinstance(raw["source"], str) or not raw["source"].strip()):
            raise _Invalid(f"field '{field}': must be a table "
                           '{ value = <number>, source = "<where the number comes from>" }')
        value = float(raw["value"])
        if value < 0 or (self.positive and value == 0):
            raise _Invalid(f"field '{field}': must be {'>' if self.positive else '>='} 0, got {value}")
        return Sourced(value, raw["source"])

    def dump(self, value):
        return {"value": value.value, "source": value.source}

    def rows(self, value, field):
        yield field, _fmt(value.value), self.unit, value.source


def _is_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


@dataclass(frozen=True)
class Text:
    """A string; ``choices`` restricts it, ``nonempty`` refuses ""."""
    choices: tuple[str, ...] = ()
    nonempty: bool = False
    optional: bool = False

    def parse(self, raw, field):
        if not isinstance(raw, str):
            raise _Invalid(f"field '{field}': must be a string, got {raw!r}")
        if self.nonempty and not raw.strip():
            raise _Invalid(f"field '{field}': must not be empty")
        _check_choice(raw, self.choices, field)
        return raw

    def dump(self, value):
        return value

    def rows(self, value, field):
        yield field, value, "", ""


@dataclass(frozen=True)
class Integer:
    """An integer, from ``choices`` when given."""
    choices: tuple[int, ...] = ()
    unit: str = ""
    optional: bool = False

    def parse(self, raw, field):
        if not isinstance(raw, int) or isinstance(raw, bool):
            raise _Invalid(f"field '{field}': must be an integer, got {raw!r}")
        _check_choice(raw, self.choices, field)
        return raw

    def dump(self, value):
        return value

    def rows(self, value, field):
        yield field, str(value), self.unit, ""


@dataclass(frozen=True)
class TextList:
    """A non-empty list of distinct strings from ``choices`` -> tuple."""
    choices: tuple[str, ...]
    optional: bool = False

    def parse(self, raw, field):
        if not isinstance(raw, list) or not raw or not all(isinstance(x, str) for x in raw):
            raise _Invalid(f"field '{field}': must be a non-empty list of strings, e.g. {list(self.choices)!r}")
        for x in raw:
            _check_choice(x, self.choices, field)
        if len(set(raw)) != len(raw):
            raise _Invalid(f"field '{field}': lists an entry twice: {raw!r}")
        return tuple(raw)

    def dump(self, value):
        return list(value)

    def rows(self, value, field):
        yield field, ", ".join(value), "", ""


def _check_choice(value, choices, field):
    if choices and value not in choices:
        shown = ", ".join(str(c) for c in sorted(choices))
        raise _Invalid(f"field '{field}': {value!r} is not one of {shown}")


@dataclass(frozen=True)
class Table:
    """A TOML table with exactly these ``fields`` (optional ones may be absent); ``build`` makes the object."""
    fields: dict
    build: type | None = None   # called with the parsed fields as keywords; None: a dict
    optional: bool = False

    def parse(self, raw, field):
        if not isinstance(raw, dict):
            raise _Invalid(f"field '{field}': must be a table, got {raw!r}")
        for key in raw:
            if key not in self.fields:
                raise _Invalid(f"field '{_join(field, key)}' is not a known field")
        parsed = {}
        for key, kind in self.fields.items():
            if key in raw:
                parsed[key] = kind.parse(raw[key], _join(field, key))
            elif not kind.optional:
                raise _Invalid(f"field '{_join(field, key)}' is missing")
        return self.build(**parsed) if self.build else parsed

    def dump(self, value):
        out = {}
        for key, kind in self.fields.items():
            item = _get(value, key)
            if item is not None:
                out[key] = kind.dump(item)
        return out

    def rows(self, value, field):
        for key, kind in self.fields.items():
            item = _get(value, key)
            if item is not None:
                yield from kind.rows(item, _join(field, key))


@dataclass(frozen=True)
class TableList:
    """A non-empty array of tables (``[[memory]]``) -> tuple."""
    item: Table
    optional: bool = False

    def parse(self, raw, field):
        if not isinstance(raw, list) or not raw:
            raise _Invalid(f"field '{field}': must be a non-empty array of tables ([[{field}]])")
        return tuple(self.item.parse(x, f"{field}[{i}]") for i, x in enumerate(raw))

    def dump(self, value):
        return [self.item.dump(x) for x in value]

    def rows(self, value, field):
        for i, x in enumerate(value):
            yield from self.item.rows(x, f"{field}[{i}]")


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


# --- the schema ---------------------------------------------------------------------------------------------------

def _per_op_class(unit: str, positive: bool) -> Table:
    return Table({op: Number(positive, unit) for op in OP_CLASSES})


SCHEMA = Table({
    "schema": Integer(),   # checked first, by parse_document: its value decides the schema
    "name": Text(nonempty=True),
    "description": Text(nonempty=True),
    "kind": Text(KINDS),
    "notes": Text(optional=True),
    "clock_mhz": Number(True, "MHz"),
    "layer_overhead_cycles": Number(False, "cycles"),
    "static_mw": Number(False, "mW"),
    "numerics": Table({
        "rounding": Text(ROUNDINGS),
        "accumulator_bits": Integer((16, 32, 64), "bits"),
        "saturation": Text(SATURATIONS),
        "source": Text(nonempty=True),
    }, build=Numerics),
    "throughput": _per_op_class("ops/cycle", positive=True),
    "pj_per_op": _per_op_class("pJ/op", positive=False),
    "memory": TableList(Table({
        "name": Text(nonempty=True),
        "size_bytes": Number(True, "bytes"),
        "bandwidth_bytes_per_cycle": Number(True, "B/cycle"),
        "latency_cycles": Number(False, "cycles"),
        "pj_per_byte": Number(False, "pJ/B"),
        "wait_states": Number(False, "cycles", optional=True),
        "holds": TextList(HOLDS),
    }, build=MemoryLevel)),
    "toolchain": Table({
        "codegen_family": Text(nonempty=True),
        "cc": Text(),
        "cflags": Text(),
        "emulator": Text(),
    }, build=Toolchain),
})


# --- documents <-> targets ----------------------------------------------------------------------------------------

def parse_document(doc: dict, path: Path) -> Target:
    """Validate a parsed TOML (or JSON) document read from ``path`` and build its Target."""
    try:
        if "schema" in doc and doc["schema"] != SCHEMA_VERSION:
            raise _Invalid(f"field 'schema': version {doc['schema']!r} is not supported "
                           f"(this intonly reads schema {SCHEMA_VERSION})")
        fields = SCHEMA.parse(doc, "")
        if fields["name"] != path.stem:
            raise _Invalid(f"field 'name': {fields['name']!r} must equal the file name {path.stem!r}")
        _check_memory(fields["memory"])
    except _Invalid as exc:
        raise TargetError(f"{path}: {exc}") from None
    del fields["schema"]
    return Target(**fields, file=path)


def _check_memory(levels: tuple[MemoryLevel, ...]) -> None:
    names = [level.name for level in levels]
    for i, name in enumerate(names):
        if name in names[:i]:
            raise _Invalid(f"field 'memory[{i}].name': {name!r} is used by memory[{names.index(name)}] too")
    for what in HOLDS:
        if not any(what in level.holds for level in levels):
            raise _Invalid(f"field 'memory': no level holds {what!r}")


def to_document(target: Target) -> dict:
    """The target as a document of the file format (every Sourced as ``{"value", "source"}``); the inverse of
    :func:`parse_document`."""
    return SCHEMA.dump(_fields(target))


def describe(target: Target) -> list[tuple[str, str, str, str]]:
    """Every field as ``(field, value, unit, source)`` rows, in file order (for ``intonly targets show``)."""
    return [row for row in SCHEMA.rows(_fields(target), "") if row[0] != "schema"]


def _fields(target: Target) -> dict:
    return {key: SCHEMA_VERSION if key == "schema" else getattr(target, key) for key in SCHEMA.fields}


# --- files --------------------------------------------------------------------------------------------------------

def load_file(path: str | os.PathLike) -> Target:
    """Parse and validate one target file; parsed files are cached by (path, mtime, size)."""
    path = Path(path)
    try:
        st = path.stat()
    except OSError as exc:
        raise TargetError(f"{path}: cannot read target file ({exc.strerror})") from None
    return _load_cached(str(path), st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=256)
def _load_cached(path: str, mtime_ns: int, size: int) -> Target:
    try:
        doc = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise TargetError(f"{path}: not valid TOML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TargetError(f"{path}: cannot read target file ({exc})") from None
    return parse_document(doc, Path(path))


# --- the search path ----------------------------------------------------------------------------------------------

def search_dirs(extra_dirs=()) -> list[tuple[Path, str]]:
    """``(directory, where it came from)`` in search order; a configured directory that does not exist is an
    error."""
    found = [(BUILTIN_DIR, "built-in")]
    env = [d for d in os.environ.get(ENV_VAR, "").split(os.pathsep) if d]
    found += [(Path(d), ENV_VAR) for d in env]
    found += [(Path(d), "--target-dir") for d in extra_dirs]
    found += _entry_point_dirs()
    for directory, origin in found:
        if not directory.is_dir():
            raise TargetError(f"target directory '{directory}' (from {origin}) does not exist")
    return found


def _entry_point_dirs() -> list[tuple[Path, str]]:
    dirs = []
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        origin = f"entry point '{ep.name} = {ep.value}' in group {ENTRY_POINT_GROUP}"
        try:
            obj = ep.load()
            obj = obj() if callable(obj) else obj
        except Exception as exc:   # a broken plugin must not look like intonly's bug
            raise TargetError(f"{origin} failed to load: {type(exc).__name__}: {exc}") from None
        if not isinstance(obj, (str, os.PathLike)):
            raise TargetError(f"{origin} gave {obj!r}, not a directory path")
        dirs.append((Path(obj), origin))
    return dirs


def _index(extra_dirs=()) -> dict[str, Path]:
    """Target name -> file over the whole search path; a name defined by two files is an error."""
    index: dict[str, Path] = {}
    for directory, _ in search_dirs(extra_dirs):
        for path in sorted(directory.glob("*.toml")):
            first = index.setdefault(path.stem, path)
            if first != path and first.resolve() != path.resolve():
                raise TargetError(f"target '{path.stem}' is defined twice: {first} and {path}")
    return index


def list_targets(extra_dirs=()) -> list[Target]:
    """Every target on the search path, sorted by kind (mcu, dsp, cpu, gpu) then name."""
    targets = [load_file(path) for path in _index(extra_dirs).values()]
    return sorted(targets, key=lambda t: (KINDS.index(t.kind), t.name))


_CLOCK = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*(mhz|ghz)", re.IGNORECASE)


def parse_clock(text: str, spec: str) -> float:
    """``480MHz`` -> 480.0, ``1.2GHz`` -> 1200.0 (case-insensitive)."""
    m = _CLOCK.fullmatch(text.strip())
    if not m or float(m.group(1)) == 0:
        raise TargetError(f"bad clock {text!r} in target spec {spec!r}: write NAME@<number>MHz or "
                          "NAME@<number>GHz with a number > 0, e.g. cortex-m7@480MHz or cortex-a76@2.4GHz")
    return float(m.group(1)) * (1000.0 if m.group(2).lower() == "ghz" else 1.0)


def load_target(spec: str, extra_dirs=()) -> Target:
    """Resolve ``NAME``, ``NAME@<clock>`` or ``PATH.toml[@<clock>]`` on the search path."""
    base, clock = spec, None
    head, at, tail = spec.rpartition("@")
    if at and "/" not in tail and os.sep not in tail:
        base, clock = head, tail
    if base.endswith(".toml"):
        target = load_file(base)
    else:
        index = _index(extra_dirs)
        if base not in index:
            raise TargetError(f"unknown target {base!r}; known: {', '.join(sorted(index))} "
                              f"(add your own with --target-dir or {ENV_VAR})")
        target = load_file(index[base])
    return target.with_clock(parse_clock(clock, spec)) if clock is not None else target
