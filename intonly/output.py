"""Where intonly writes, enforced here and nowhere else (README "Output folders", docs/trust.md).

1. An output path comes only from ``--out`` or from a default under ``out/`` built by :func:`default_out`, whose
   parts (model and target names read from files) are each reduced to one safe path component by
   :func:`safe_component`.
2. intonly replaces only a folder it made itself: every output folder holds the marker file :data:`MARKER`. An
   existing folder without the marker (and not empty), a symbolic link or a file in the way is refused with one
   :class:`OutputError` naming it, and nothing is touched.
3. The output folder is checked before any work starts: it is not the working directory or one of its parents,
   not an input file nor a folder holding one, and its parent is writable (the staging folder is created at
   once, so an unwritable place fails in the first second, not after the run).
4. Results are written into a fresh staging folder beside it (``.<name>.<random>.partial``, made with
   ``mkdtemp`` so it never reuses a path that exists) and moved into place only when the command succeeds. The
   staging folder is removed on any error, on Ctrl-C (SIGINT) and on SIGTERM/SIGHUP (:class:`StopSignals`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path

from intonly.quantize.errors import IntonlyError
from intonly.quantize.ir_file import write_atomically

MARKER = ".intonly-output"
MAX_COMPONENT = 80
_UNSAFE = re.compile(r"[^A-Za-z0-9._@+-]+")


class OutputError(IntonlyError):
    """An output folder intonly must not write to or replace (exists and is not intonly's, is an input...)."""


class Terminated(BaseException):
    """SIGTERM or SIGHUP arrived: unwinds like KeyboardInterrupt, so staging folders are removed."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def safe_component(name: str, fallback: str = "model") -> str:
    """``name`` as ONE path component: every run of characters outside ``A-Za-z0-9._@+-`` becomes ``_``, leading
    and trailing dots and underscores are dropped (so no ``.``, ``..`` or hidden name), at most
    :data:`MAX_COMPONENT` characters; ``fallback`` when nothing is left. ``"../../victim"`` -> ``"victim"``."""
    return _UNSAFE.sub("_", str(name)).strip("._")[:MAX_COMPONENT].strip("._") or fallback


def default_out(*parts: str) -> Path:
    """``out/<part>/<part>...`` with every part reduced by :func:`safe_component`."""
    return Path("out", *(safe_component(p) for p in parts))


def _is_within(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def check_out(out: Path, inputs=(), option: str = "--out") -> Path:
    """Refuse an output folder the policy forbids (module docstring, rules 2-3); returns its absolute path.
    ``inputs`` are the files and folders the command reads."""
    shown = f"{option} {str(out)!r}"
    if str(out).strip() == "":
        raise OutputError(f"{option} is empty; name a folder for the results")
    absolute = Path(os.path.abspath(out))
    cwd, real = Path(os.getcwd()), Path(os.path.realpath(out))
    if _is_within(cwd, absolute) or _is_within(Path(os.path.realpath(cwd)), real):
        raise OutputError(f"{shown} is the working directory or one of its parents; intonly writes results into "
                          "a folder of their own (e.g. --out results)")
    for item in inputs:
        if item is None:
            continue
        source = Path(os.path.abspath(item))
        if _is_within(source, absolute) or _is_within(Path(os.path.realpath(item)), real):
            raise OutputError(f"{shown} would replace the input {str(item)!r}; choose another output folder")
    _check_replaceable(absolute, shown)
    for parent in Path(out).parents:   # the nearest existing folder above it must be a folder
        if parent.exists():
            if not parent.is_dir():
                raise OutputError(f"{shown}: {str(parent)!r} is not a folder")
            break
    return absolute


def _check_replaceable(folder: Path, shown: str) -> None:
    """Rule 2: nothing there, an empty folder, or a folder holding intonly's marker."""
    if folder.is_symlink():
        raise OutputError(f"{shown} is a symbolic link; name the real folder")
    if not folder.exists():
        return
    if not folder.is_dir():
        raise OutputError(f"{shown} exists and is not a folder; intonly will not replace it")
    marker = folder / MARKER
    if marker.is_file() and not marker.is_symlink():
        return
    try:
        empty = next(folder.iterdir(), None) is None
    except OSError as exc:
        raise OutputError(f"{shown} cannot be read ({exc.strerror})") from None
    if not empty:
        raise OutputError(f"{shown} exists and was not made by intonly (no {MARKER} file in it); intonly only "
                          "replaces its own output folders: choose another --out or remove the folder yourself")


def _make_stage(folder: Path, shown: str) -> tuple[Path, list[Path]]:
    """The staging folder beside ``folder``, and the parent folders created for it (deepest first), which a
    failed command removes again if they are still empty."""
    created = [p for p in [folder.parent, *folder.parent.parents] if not p.exists()]
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".partial", dir=folder.parent)), created
    except OSError as exc:
        _remove_empty(created)
        raise OutputError(f"{shown}: cannot create a folder in {str(folder.parent)!r} ({exc.strerror})") from None


def _remove_empty(folders: list[Path]) -> None:
    for p in folders:
        try:
            p.rmdir()
        except OSError:
            return


@contextmanager
def output_folder(out, inputs=(), command: str = "", option: str = "--out"):
    """Check ``out`` (rules 2-3), create its staging folder and yield it; on success the staging folder, with
    the marker written into it, replaces ``out``; on any exception (KeyboardInterrupt and :class:`Terminated`
    included) it is removed, with any parent folder made for it, and ``out`` is left as it was."""
    folder = check_out(Path(out), inputs, option)
    shown = f"{option} {str(out)!r}"
    stage, created = _make_stage(folder, shown)
    try:
        (stage / MARKER).write_text(json.dumps({"made_by": "intonly", "command": command}) + "\n")
        yield stage
        if StopSignals.signum is not None:   # the work swallowed the interruption: do not publish its results
            raise Terminated(StopSignals.signum)
        _replace(folder, stage, shown)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        _remove_empty(created)
        raise


def _replace(folder: Path, stage: Path, shown: str) -> None:
    """Move ``stage`` to ``folder``; an existing (intonly-made or empty) folder is moved aside first and removed
    after the new one is in place, so the old results survive any failure before that point. A stop signal
    during the renames and the removal is deferred to their end (one between them would leave results only in
    a hidden ``.old`` folder); the folder then counts as published."""
    _check_replaceable(folder, shown)  # again: the folder may have changed while the command ran
    old = None
    with _signals_deferred():
        if folder.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".old", dir=folder.parent))
            os.replace(folder, old)
        try:
            os.replace(stage, folder)
        except OSError:
            if old is not None:
                os.replace(old, folder)
            raise
        StopSignals.published.append(folder)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


@contextmanager
def _signals_deferred():
    """A stop signal that arrives inside the block is recorded but interrupts only when the block is done (a
    signal mask would not do: any other thread may take a process signal, and Python runs its handler then)."""
    StopSignals.deferring = True
    try:
        yield
    finally:
        StopSignals.deferring = False
    if StopSignals.deferred:
        StopSignals.deferred = False
        StopSignals.interrupt(StopSignals.signum)


def write_file(path, text: str, inputs=(), option: str = "--json") -> Path:
    """Write one result file the user named (``--json FILE``) atomically: refused if it is a folder, a symbolic
    link or one of the ``inputs``; written to a temporary file beside it, then renamed over it."""
    target = Path(path)
    shown = f"{option} {str(path)!r}"
    if target.is_symlink() or target.is_dir():
        raise OutputError(f"{shown} is a folder or a symbolic link; name a file")
    for item in inputs:
        if item is not None and os.path.realpath(item) == os.path.realpath(target):
            raise OutputError(f"{shown} would replace the input {str(item)!r}")
    try:
        return write_atomically(target, text.encode())
    except OSError as exc:
        raise OutputError(f"{shown}: cannot write it ({exc.strerror})") from None


class StopSignals:
    """While active (in the main thread), SIGINT, SIGTERM and SIGHUP are recorded in :attr:`signum` and then
    interrupt the work: SIGINT as KeyboardInterrupt, the others as :class:`Terminated`, so ``finally`` and
    ``except BaseException`` clean-ups (staging folders, child processes) run as they do on Ctrl-C. Only the first
    signal interrupts; later ones are ignored so the clean-up itself is not cut short. A library may turn the
    interruption into another exception (an import interrupted half-way raises ImportError): the CLI asks
    :attr:`signum`, not the exception's type, whether a signal stopped the command, and :func:`output_folder`
    never moves a staging folder into place after a signal."""

    signum: int | None = None
    published: list[Path] = []   # output folders moved into place (the last step of a command) while active
    deferring = deferred = False  # inside _signals_deferred; a signal arrived there
    SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

    def __enter__(self):
        StopSignals.signum = None
        StopSignals.published = []
        StopSignals.deferring = StopSignals.deferred = False
        self.previous = {}
        if threading.current_thread() is threading.main_thread():
            self.previous = {s: signal.signal(s, self._handler) for s in self.SIGNALS}
        return self

    def __exit__(self, *exc):
        for s, h in self.previous.items():
            signal.signal(s, h)
        return False

    @staticmethod
    def _handler(signum, frame):
        if StopSignals.signum is not None:
            return
        StopSignals.signum = signum
        if StopSignals.deferring:
            StopSignals.deferred = True
            return
        StopSignals.interrupt(signum)

    @staticmethod
    def interrupt(signum: int):
        raise KeyboardInterrupt() if signum == signal.SIGINT else Terminated(signum)
