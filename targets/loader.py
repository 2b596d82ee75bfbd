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

Target files are hostile input (users download and share them); see "Trust" in docs/targets.md. Before TOML
parsing, a file must be a regular file (a symlink is followed; a directory, device, FIFO or socket is refused
before it is opened) of at most :data:`MAX_FILE_BYTES`, UTF-8 without a byte-order mark, with arrays/tables nested
at most :data:`MAX_NESTING` deep and at most :data:`MAX_DOTS_PER_LINE` dots outside strings on one line (tomllib's
memory grows with the square of a dotted key's length). Every number is finite and 0 or within
:data:`~targets.spec.VALUE_MIN` .. :data:`~targets.spec.VALUE_MAX`; every string is at most
:data:`MAX_TEXT_CHARS` characters without control characters; ``[toolchain]`` may name only a C compiler, a QEMU
emulator with allow-listed options and allow-listed compiler flags (:func:`check_toolchain`).
"""

from __future__ import annotations

import functools
import importlib.metadata
import math
import os
import re
import reprlib
import shlex
import tomllib
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from intonly.quantize.bounded_read import file_kind
from intonly.quantize.errors import IntonlyError
from intonly.quantize.names import OP_CLASSES, ROUNDING_MODES

from .spec import (HOLDS, KINDS, SATURATIONS, VALUE_MAX, VALUE_MIN, MemoryLevel, Numerics, Sourced, Target,
                   Toolchain)

SCHEMA_VERSION = 1
BUILTIN_DIR = Path(__file__).parent / "specs"
ENV_VAR = "INTONLY_TARGET_PATH"
ENTRY_POINT_GROUP = "intonly.targets"

# Limits on a target file (docs/targets.md, "Trust"). The built-in files are at most 11 KB, nest 2 deep, use no
# dotted keys and have strings of at most 1,200 characters and at most 4 memory levels.
MAX_FILE_BYTES = 256 * 1024      # size on disk (23x the largest built-in); at most this + 1 bytes are ever read
MAX_NESTING = 16                 # arrays / tables / inline tables inside one another
MAX_DOTS_PER_LINE = 16           # '.' outside strings and comments on one line (dotted keys, decimal points)
MAX_TEXT_CHARS = 4096            # any one string
MAX_MEMORY_LEVELS = 16           # [[memory]] tables
MAX_FILES_PER_DIR = 1000         # *.toml files in one directory of the search path
NAME_PATTERN = r"[a-z0-9][a-z0-9_-]{0,63}"      # target names (= file stems) and codegen families
NAME_RULE = "1 to 64 of a-z, 0-9, '_' and '-', starting with a letter or digit"


class TargetError(IntonlyError):
    """A target file or target spec is unreadable, invalid, ambiguous or unknown."""


class _Invalid(Exception):
    """A problem at a field; :func:`parse_document` prefixes the file name."""


# --- field kinds --------------------------------------------------------------------------------------------------

def _get(obj, key):
    return obj[key] if isinstance(obj, Mapping) else getattr(obj, key)


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.6g}"


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother, _REPR.maxlong = 3, 80, 80, 40
_REPR.maxlist = _REPR.maxdict = _REPR.maxtuple = _REPR.maxset = 6


def _show(value) -> str:
    """A short repr for an error message: long strings, deep or long structures and huge integers are cut."""
    try:
        return _REPR.repr(value)
    except (ValueError, RecursionError):   # an int over Python's str-conversion limit
        return f"<{type(value).__name__}>"


# Bidirectional overrides and isolates reorder displayed text ("Trojan source"); other control characters can
# drive the terminal that prints a target.
_BIDI = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f")


def _check_text(raw: str, field: str) -> None:
    if len(raw) > MAX_TEXT_CHARS:
        raise _Invalid(f"field '{field}': is {len(raw):,} characters long, over the limit of {MAX_TEXT_CHARS:,}")
    for i, c in enumerate(raw):
        if (c != "\t" and unicodedata.category(c) == "Cc") or c in _BIDI:
            raise _Invalid(f"field '{field}': contains the control character U+{ord(c):04X} at position {i}")


_PLAIN_KEY = re.compile(r"[A-Za-z0-9_-]{1,64}")


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
        _check_text(raw["source"], f"{field}.source")
        allowed = "" if self.positive else "0 or "
        try:
            value = float(raw["value"])
        except OverflowError:   # an integer literal beyond float range
            raise _Invalid(f"field '{field}': must be {allowed}between {VALUE_MIN:g} and {VALUE_MAX:g}, got "
                           f"{_show(raw['value'])}") from None
        if not math.isfinite(value):
            raise _Invalid(f"field '{field}': must be a finite number, got {value}")
        if value < 0 or (self.positive and value == 0):
            raise _Invalid(f"field '{field}': must be {'>' if self.positive else '>='} 0, got {value}")
        if value != 0 and not VALUE_MIN <= value <= VALUE_MAX:
            raise _Invalid(f"field '{field}': must be {allowed}between {VALUE_MIN:g} and {VALUE_MAX:g}, got {value:g}")
        return Sourced(value, raw["source"])

    def dump(self, value):
        return {"value": value.value, "source": value.source}

    def rows(self, value, field):
        yield field, _fmt(value.value), self.unit, value.source


def _is_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


@dataclass(frozen=True)
class Text:
    """A string; ``choices`` restricts it, ``nonempty`` refuses "", ``pattern`` (with ``rule``, its wording) must
    match it whole."""
    choices: tuple[str, ...] = ()
    nonempty: bool = False
    optional: bool = False
    pattern: str = ""
    rule: str = ""

    def parse(self, raw, field):
        if not isinstance(raw, str):
            raise _Invalid(f"field '{field}': must be a string, got {_show(raw)}")
        if self.nonempty and not raw.strip():
            raise _Invalid(f"field '{field}': must not be empty")
        _check_text(raw, field)
        _check_choice(raw, self.choices, field)
        if self.pattern and not re.fullmatch(self.pattern, raw):
            raise _Invalid(f"field '{field}': {_show(raw)} is not valid: {self.rule}")
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
            raise _Invalid(f"field '{field}': must be an integer, got {_show(raw)}")
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
            raise _Invalid(f"field '{field}': lists an entry twice: {_show(raw)}")
        return tuple(raw)

    def dump(self, value):
        return list(value)

    def rows(self, value, field):
        yield field, ", ".join(value), "", ""


def _check_choice(value, choices, field):
    if choices and value not in choices:
        shown = ", ".join(str(c) for c in sorted(choices))
        raise _Invalid(f"field '{field}': {_show(value)} is not one of {shown}")


@dataclass(frozen=True)
class Table:
    """A TOML table with exactly these ``fields`` (optional ones may be absent); ``build`` makes the object."""
    fields: dict
    build: type | None = None   # called with the parsed fields as keywords; None: a dict
    optional: bool = False

    def parse(self, raw, field):
        if not isinstance(raw, dict):
            raise _Invalid(f"field '{field}': must be a table, got {_show(raw)}")
        for key in raw:
            if key not in self.fields:
                shown = key if _PLAIN_KEY.fullmatch(key) else _show(key)
                raise _Invalid(f"field '{_join(field, shown)}' is not a known field")
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
    max_items: int = MAX_MEMORY_LEVELS

    def parse(self, raw, field):
        if not isinstance(raw, list) or not raw:
            raise _Invalid(f"field '{field}': must be a non-empty array of tables ([[{field}]])")
        if len(raw) > self.max_items:
            raise _Invalid(f"field '{field}': has {len(raw):,} tables, over the limit of {self.max_items}")
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
    "name": Text(nonempty=True, pattern=NAME_PATTERN, rule=NAME_RULE),
    "description": Text(nonempty=True),
    "kind": Text(KINDS),
    "notes": Text(optional=True),
    "clock_mhz": Number(True, "MHz"),
    "layer_overhead_cycles": Number(False, "cycles"),
    "static_mw": Number(False, "mW"),
    "numerics": Table({
        "rounding": Text(ROUNDING_MODES),
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
        "codegen_family": Text(nonempty=True, pattern=NAME_PATTERN, rule=NAME_RULE),
        "cc": Text(),
        "cflags": Text(),
        "emulator": Text(),
    }, build=Toolchain),
})


# --- documents <-> targets ----------------------------------------------------------------------------------------

def parse_document(doc: dict, path: Path) -> Target:
    """Validate a parsed TOML (or JSON) document read from ``path`` and build its Target."""
    path = Path(path)
    try:
        if not isinstance(doc, dict):
            raise _Invalid(f"must be a table of fields, got {_show(doc)}")
        if "schema" in doc and doc["schema"] != SCHEMA_VERSION:
            raise _Invalid(f"field 'schema': version {_show(doc['schema'])} is not supported "
                           f"(this intonly reads schema {SCHEMA_VERSION})")
        fields = SCHEMA.parse(doc, "")
        if fields["name"] != path.stem:
            raise _Invalid(f"field 'name': {fields['name']!r} must equal the file name {_show(path.stem)}")
        _check_memory(fields["memory"])
        check_toolchain(fields["toolchain"])
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


# --- [toolchain]: what a target file may make intonly run -----------------------------------------------------------
#
# toolchain.cc is run as a program, toolchain.emulator's words as a command line, toolchain.cflags are passed to the
# compiler (codegen/c/cross.py). A shared target file must not be able to run anything but a C compiler and QEMU,
# nor make either read or write files outside the project folder: each is checked against an allow-list here.

_PROGRAM_PATH = re.compile(r"/(?:[A-Za-z0-9_.+-]+/)*[A-Za-z0-9_.+-]+")
CC_PATTERN = r"(?:[A-Za-z0-9][A-Za-z0-9_.+-]*)?(?:gcc|clang|cc)(?:-[0-9][0-9.]*)?"
EMULATOR_PATTERN = r"qemu-(?:system-)?[a-z0-9_]+(?:-static)?"
QEMU_TOOLS = ("qemu-img", "qemu-io", "qemu-nbd", "qemu-ga", "qemu-edid", "qemu-keymap")   # not emulators
_NAME_ARG = r"[A-Za-z0-9][A-Za-z0-9_.+-]*"    # no ',': sub-options such as -machine dumpdtb=<file> write files
_ON_OFF = r"(?:on|off)"
_SEMIHOSTING = rf"(?:enable={_ON_OFF}|target=(?:native|gdb|auto)|userspace={_ON_OFF})"
QEMU_OPTIONS = {    # option -> (the pattern its one argument must match whole, that pattern in words)
    "-machine": (_NAME_ARG, "a machine name, without ',' sub-options"),
    "-M": (_NAME_ARG, "a machine name, without ',' sub-options"),
    "-cpu": (_NAME_ARG, "a CPU name, without ',' sub-options"),
    "-m": (r"[0-9]+[KMGkmg]?", "a memory size such as 64M"),
    "-smp": (r"[0-9]+", "a number of CPUs"),
    "-icount": (rf"(?:shift=)?(?:[0-9]+|auto)(?:,(?:align|sleep)={_ON_OFF})*",
                "[shift=]<n>|auto[,align=on|off][,sleep=on|off]"),
    "-semihosting-config": (rf"{_SEMIHOSTING}(?:,{_SEMIHOSTING})*",   # no chardev=, no arg= (intonly adds those)
                            "comma-separated enable=on|off, target=native|gdb|auto, userspace=on|off"),
    "-L": (_PROGRAM_PATH.pattern, "an absolute path without '..'"),  # qemu-user's sysroot, qemu-system's firmware
}
QEMU_FLAGS = ("-nographic", "-semihosting", "-no-reboot", "-kernel")   # -kernel: the last word, intonly appends the ELF
_CFLAG_CHARS = re.compile(r"[A-Za-z0-9_=.,+:-]+")
CFLAG_PATTERNS = (
    r"-O[A-Za-z0-9]*",
    r"-m(?!llvm$)[A-Za-z0-9].*",
    r"-f(?!plugin|pass-plugin|use-ld|crash-diagnostics)[A-Za-z0-9].*",
    r"-D[A-Za-z_][A-Za-z0-9_]*(?:=-?[0-9][A-Za-z0-9.+-]*)?",
    r"-U[A-Za-z_][A-Za-z0-9_]*",
    r"-W(?!l,|a,|p,).*",
    r"-g.*",
    r"-std=[A-Za-z0-9+]+",
    r"-pedantic(?:-errors)?",
    r"-w",
)
CFLAGS_RULE = ("allowed: -O*, -m* (not -mllvm), -f* (not -fplugin*, -fpass-plugin*, -fuse-ld*, "
               "-fcrash-diagnostics*), -D<NAME>[=<number>], -U<NAME>, -W* (not -Wl,/-Wa,/-Wp,), -g*, -std=*, "
               "-pedantic, -w")
MAX_TOOLCHAIN_WORDS = 64


def _is_program(word: str, pattern: str) -> bool:
    """``word`` is a program name matching ``pattern``, or an absolute path (no '..') whose last part does."""
    if "/" in word:
        if not _PROGRAM_PATH.fullmatch(word) or ".." in word.split("/"):
            return False
        word = word.rsplit("/", 1)[1]
    return re.fullmatch(pattern, word) is not None


def _words(text: str, field: str) -> list[str]:
    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise _Invalid(f"field '{field}': cannot be split into words ({exc})") from None
    if len(words) > MAX_TOOLCHAIN_WORDS:
        raise _Invalid(f"field '{field}': has {len(words)} words, over the limit of {MAX_TOOLCHAIN_WORDS}")
    return words


def check_toolchain(tc: Toolchain) -> None:
    """Refuse a ``[toolchain]`` that could make intonly run anything but a C compiler and QEMU, or make them touch
    files outside the project folder (docs/targets.md, "Trust"); raises the loader's field error."""
    if tc.cc and not _is_program(tc.cc, CC_PATTERN):
        raise _Invalid(f"field 'toolchain.cc': {_show(tc.cc)} is not a C compiler: its name must match "
                       f"[<prefix>]gcc|clang|cc[-<version>] (e.g. gcc, arm-none-eabi-gcc, clang-17), alone or as "
                       f"an absolute path without '..'")
    _check_cflags(_words(tc.cflags, "toolchain.cflags"))
    _check_emulator(_words(tc.emulator, "toolchain.emulator"))


def _check_cflags(words: list[str]) -> None:
    for word in words:
        if word.startswith("@"):
            why = "is a response file (a word starting with '@')"
        elif "/" in word or "\\" in word:
            why = "names a path ('/' is not allowed)"
        elif ".." in word:
            why = "names a path ('..' is not allowed)"
        elif not _CFLAG_CHARS.fullmatch(word):
            why = "has a character other than A-Z a-z 0-9 _ = . , + : -"
        elif not any(re.fullmatch(p, word) for p in CFLAG_PATTERNS):
            why = "is not an allowed compiler flag"
        else:
            continue
        raise _Invalid(f"field 'toolchain.cflags': {_show(word)} {why} ({CFLAGS_RULE})")


def _check_emulator(words: list[str]) -> None:
    if not words:
        return
    field = "field 'toolchain.emulator'"
    program = words[0]
    if not _is_program(program, EMULATOR_PATTERN) or program.rsplit("/", 1)[-1] in QEMU_TOOLS:
        raise _Invalid(f"{field}: {_show(program)} is not a QEMU emulator: the first word must be qemu-<arch> or "
                       f"qemu-system-<arch>, alone or as an absolute path without '..'")
    allowed = ", ".join([*QEMU_OPTIONS, *QEMU_FLAGS])
    i = 1
    while i < len(words):
        word = words[i]
        if word == "-kernel" and i != len(words) - 1:
            raise _Invalid(f"{field}: '-kernel' must be the last word (intonly appends the program to run)")
        if word in QEMU_FLAGS:
            i += 1
        elif word in QEMU_OPTIONS:
            if i + 1 == len(words):
                raise _Invalid(f"{field}: {word!r} needs an argument")
            arg, (pattern, what) = words[i + 1], QEMU_OPTIONS[word]
            if not re.fullmatch(pattern, arg) or ".." in arg.split("/"):
                raise _Invalid(f"{field}: {_show(arg)} is not an allowed argument of {word} (it must be {what})")
            i += 2
        else:
            raise _Invalid(f"{field}: {_show(word)} is not an allowed QEMU option (allowed: {allowed})")


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
    """Parse and validate one target file; parsed files are cached by (path, mtime, size). The file must be a
    regular file (a symlink is followed) of at most :data:`MAX_FILE_BYTES`: a directory, device, FIFO or socket is
    refused before it is opened."""
    path = Path(path)
    try:
        st = path.stat()
    except (OSError, ValueError) as exc:   # ValueError: a NUL in the path
        raise TargetError(f"{path}: cannot read target file ({getattr(exc, 'strerror', None) or exc})") from None
    _check_regular(st, path)
    return _load_cached(str(path), st.st_mtime_ns, st.st_size)


def _check_regular(st: os.stat_result, path) -> None:
    kind = file_kind(st.st_mode)
    if kind is not None:
        raise TargetError(f"{path}: cannot read target file (it is {kind}, not a regular file)")
    if st.st_size > MAX_FILE_BYTES:
        raise TargetError(f"{path}: target file is {st.st_size:,} bytes, over the limit of {MAX_FILE_BYTES:,}")


def _read_bounded(path: str) -> bytes:
    """At most MAX_FILE_BYTES + 1 bytes of a regular file, opened without blocking (a FIFO swapped in after
    :func:`load_file`'s check) and checked again on the open descriptor, so a file replaced or growing after
    that check is refused too."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise TargetError(f"{path}: cannot read target file ({exc.strerror})") from None
    try:
        _check_regular(os.fstat(fd), path)
        chunks, left = [], MAX_FILE_BYTES + 1
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 16))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
    except OSError as exc:
        raise TargetError(f"{path}: cannot read target file ({exc.strerror})") from None
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > MAX_FILE_BYTES:
        raise TargetError(f"{path}: target file is over the limit of {MAX_FILE_BYTES:,} bytes (it grew while read)")
    return data


def _decode(data: bytes, path: str) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        raise TargetError(f"{path}: starts with a byte-order mark; save the file as UTF-8 without one")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TargetError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start:,})") from None


_TOML_SPECIAL = re.compile(r"""[\[\]{}.#"'\n]""")
_BASIC_STRING = re.compile(r'(?:[^"\\\n]|\\.)*+"')
_MULTILINE_BASIC = re.compile(r'(?:[^"\\]|\\.|"(?!""))*+"""', re.DOTALL)


def _check_shape(text: str, path: str) -> None:
    """Refuse, before tomllib sees it, nesting deeper than MAX_NESTING (tomllib recurses per level) and lines with
    more than MAX_DOTS_PER_LINE dots outside strings and comments (tomllib's memory grows with the square of a
    dotted key's length: a 200 KB key takes tens of GB). A conservative scan: strings and comments are skipped,
    every other bracket and dot counts; a string that does not end stops the scan (tomllib then reports it)."""
    depth = dots = 0
    line, i, n = 1, 0, len(text)
    while True:
        m = _TOML_SPECIAL.search(text, i)
        if m is None:
            return
        c, i = m.group(), m.end()
        if c == "\n":
            line, dots = line + 1, 0
        elif c in "[{":
            depth += 1
            if depth > MAX_NESTING:
                raise TargetError(f"{path}: arrays and tables are nested more than {MAX_NESTING} deep "
                                  f"(at line {line:,})")
        elif c in "]}":
            depth = max(depth - 1, 0)
        elif c == ".":
            dots += 1
            if dots > MAX_DOTS_PER_LINE:
                raise TargetError(f"{path}: line {line:,} has more than {MAX_DOTS_PER_LINE} dots outside strings "
                                  f"(a dotted key that long is refused)")
        elif c == "#":
            i = text.find("\n", i)
            if i < 0:
                return
        else:   # a string: skip it, counting its newlines
            triple = text.startswith(c * 2, i)
            if c == '"':
                found = _MULTILINE_BASIC.match(text, i + 2) if triple else _BASIC_STRING.match(text, i)
                end = found.end() if found else -1
            elif triple:
                end = text.find("'''", i + 2)
                end = end + 3 if end >= 0 else -1
            else:
                end = text.find("'", i)
                end = end + 1 if end >= 0 and "\n" not in text[i:end] else -1
            if end < 0:
                return
            for _ in range(2 if triple else 0):   # a multi-line string's text may end with one or two quotes
                if end < n and text[end] == c:
                    end += 1
            line += text.count("\n", i, end)
            i = end


@functools.lru_cache(maxsize=256)
def _load_cached(path: str, mtime_ns: int, size: int) -> Target:
    text = _decode(_read_bounded(path), path)
    _check_shape(text, path)
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise TargetError(f"{path}: not valid TOML: {exc}") from None
    except RecursionError:
        raise TargetError(f"{path}: not valid TOML: nested too deeply") from None
    except ValueError:   # int() of a literal over Python's 4300-digit limit
        raise TargetError(f"{path}: not valid TOML: a number has more than 4300 digits") from None
    except MemoryError:
        raise TargetError(f"{path}: not valid TOML: too large to parse") from None
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
            what = "is not a directory" if directory.exists() else "does not exist"
            raise TargetError(f"target directory '{directory}' (from {origin}) {what}")
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
    for directory, origin in search_dirs(extra_dirs):
        paths = []
        try:
            for path in directory.glob("*.toml"):
                paths.append(path)
                if len(paths) > MAX_FILES_PER_DIR:
                    raise TargetError(f"target directory '{directory}' (from {origin}) holds more than "
                                      f"{MAX_FILES_PER_DIR:,} .toml files")
        except OSError as exc:
            raise TargetError(f"target directory '{directory}' (from {origin}) cannot be read "
                              f"({exc.strerror})") from None
        for path in sorted(paths):
            first = index.setdefault(path.stem, path)
            if first != path and not _same_file(first, path):
                raise TargetError(f"target '{path.stem}' is defined twice: {first} and {path}")
    return index


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):   # a dangling link or a loop: not provably the same file, so a collision
        return False


def list_targets(extra_dirs=()) -> list[Target]:
    """Every target on the search path, sorted by kind (mcu, dsp, cpu, gpu) then name."""
    targets = [load_file(path) for path in _index(extra_dirs).values()]
    return sorted(targets, key=lambda t: (KINDS.index(t.kind), t.name))


_CLOCK = re.compile(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*(mhz|ghz)", re.IGNORECASE | re.ASCII)


def parse_clock(text: str, spec: str) -> float:
    """``480MHz`` -> 480.0, ``1.2GHz`` -> 1200.0 (case-insensitive); the result is within VALUE_MIN .. VALUE_MAX."""
    m = _CLOCK.fullmatch(text.strip())
    if not m or float(m.group(1)) == 0:
        raise TargetError(f"bad clock {text!r} in target spec {spec!r}: write NAME@<number>MHz or "
                          "NAME@<number>GHz with a number > 0, e.g. cortex-m7@480MHz or cortex-a76@2.4GHz")
    mhz = float(m.group(1)) * (1000.0 if m.group(2).lower() == "ghz" else 1.0)
    if not (math.isfinite(mhz) and VALUE_MIN <= mhz <= VALUE_MAX):
        raise TargetError(f"bad clock {_show(text)} in target spec {_show(spec)}: must be between {VALUE_MIN:g} "
                          f"and {VALUE_MAX:g} MHz, got {mhz:g} MHz")
    return mhz


def load_target(spec: str, extra_dirs=()) -> Target:
    """Resolve ``NAME``, ``NAME@<clock>`` or ``PATH.toml[@<clock>]`` on the search path."""
    base, clock = spec, None
    head, at, tail = spec.rpartition("@")
    if at and "/" not in tail and os.sep not in tail and not tail.endswith(".toml"):   # dir/a@b.toml is a path
        base, clock = head, tail
    if base.endswith(".toml"):
        target = load_file(base)
    else:
        index = _index(extra_dirs)
        if base not in index:
            # a file whose name is not a valid target name is not offered (list_targets reports it when loading it)
            known = sorted(name for name in index if re.fullmatch(NAME_PATTERN, name))
            raise TargetError(f"unknown target {base!r}; known: {', '.join(known)} "
                              f"(add your own with --target-dir or {ENV_VAR})")
        target = load_file(index[base])
    return target.with_clock(parse_clock(clock, spec)) if clock is not None else target
