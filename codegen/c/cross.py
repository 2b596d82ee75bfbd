"""Cross builds: compile an emitted C project for a target (``targets/specs/<name>.toml`` ``[toolchain]``) and run
it on the target's emulator with the same input/output files as the host driver.

Three kinds of target, told apart by the target's compiler:

* bare-metal Cortex-M (``cc = "arm-none-eabi-gcc"``): the project is linked with a board start-up
  (``boards/cortex-m-startup.c``: vector table, FPU/MVE enable, .data/.bss set-up, semihosting argv, main, exit)
  and the linker script of the QEMU machine named by ``-machine`` in ``toolchain.emulator``
  (``boards/<machine>.ld``), against newlib with semihosting (``--specs=rdimon.specs``), so ``fopen``/``fread``/
  ``fwrite`` in main.c reach host files. It runs under ``qemu-system-arm ... -semihosting-config
  enable=on,target=native,arg=...`` with the program's arguments as semihosting ``arg=`` entries;
* Linux user mode (``cc = "aarch64-linux-gnu-gcc"``): linked ``-static``, run under ``qemu-aarch64``;
* the host (``cc = "gcc"``, empty emulator): built and run natively.

Every build compiles each source to an object (``-std=c99 -Wall -Wextra -Werror`` on top of the target's
``cflags``) in ``<project>/build-<target>/`` and links ``model.elf`` (with a linker map, ``model.map``, for the
bare-metal boards). :func:`elf_sizes` reads flash, RAM and the static arena back from the ELF with readelf.
A link that exits 0 without writing an ELF (no file, or one not starting with the ELF magic 7f 45 4c 46), and any
readelf failure (a missing file, a readelf that cannot start, exits non-zero or hangs), is one
:class:`ToolchainError` naming the target.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from intonly.quantize.errors import ToolchainError
from intonly.targets import Target

from .toolchain import _run_driver

BOARDS = Path(__file__).resolve().parent / "boards"
STARTUP = BOARDS / "cortex-m-startup.c"
C99_FLAGS = ("-std=c99", "-Wall", "-Wextra", "-Werror")
SOURCES = ("main.c", "model.c", "kernels.c", "weights.c")
MODEL_OBJECTS = ("model.o", "kernels.o", "weights.o")  # the model itself, without the test driver and libc
ARENA_SYMBOL = "arena_storage"  # templates/project/model.c.j2's static arena array

# Debian packages that provide each tool (scripts/setup.sh installs them).
DEBIAN_PACKAGES = {
    "gcc": "gcc",
    "readelf": "binutils",
    "arm-none-eabi-gcc": "gcc-arm-none-eabi libnewlib-arm-none-eabi",
    "arm-none-eabi-readelf": "binutils-arm-none-eabi",
    "qemu-system-arm": "qemu-system-arm",
    "aarch64-linux-gnu-gcc": "gcc-aarch64-linux-gnu libc6-dev-arm64-cross",
    "aarch64-linux-gnu-readelf": "binutils-aarch64-linux-gnu",
    "qemu-aarch64": "qemu-user",
}


def _where(target: Target) -> str:
    return f"target {target.label}"


def find_tool(tool: str, target: Target, what: str) -> str:
    """The absolute path of ``tool`` on PATH, or one ToolchainError saying what is missing and how to install it."""
    path = shutil.which(tool)
    if path is None:
        package = DEBIAN_PACKAGES.get(Path(tool).name)
        how = (f"install it (Debian: apt-get install {package}, or bash scripts/setup.sh as root)" if package
               else "install it or put it on PATH (intonly knows no Debian package for it)")
        raise ToolchainError(f"{_where(target)}: {what} {tool!r} not found on PATH; {how}")
    return path


def target_kind(target: Target) -> str:
    """``"bare-metal"`` (arm-none-eabi, QEMU system emulation), ``"linux"`` (a cross Linux compiler, QEMU user
    mode) or ``"host"`` (native)."""
    cc = Path(target.toolchain.cc).name
    if not cc:
        raise ToolchainError(f"{_where(target)} generates no C (toolchain.cc is empty: it runs through TVM)")
    if cc.endswith("-none-eabi-gcc") or "-none-" in cc or "-elf-" in cc:
        return "bare-metal"
    if "-linux-" in cc:
        return "linux"
    return "host"


def qemu_machine(target: Target) -> str:
    """The QEMU ``-machine`` value in the target's emulator command (it chooses the board files)."""
    tokens = shlex.split(target.toolchain.emulator)
    for i, tok in enumerate(tokens):
        if tok in ("-machine", "-M") and i + 1 < len(tokens):
            return tokens[i + 1].split(",")[0]
        if tok.startswith("-machine="):
            return tok.split("=", 1)[1].split(",")[0]
    raise ToolchainError(f"{_where(target)}: toolchain.emulator {target.toolchain.emulator!r} names no QEMU "
                         f"-machine, so there is no board to build for (boards: {', '.join(boards())})")


def boards() -> list[str]:
    """The QEMU machines with a linker script in codegen/c/boards/."""
    return sorted(p.stem for p in BOARDS.glob("*.ld") if not p.stem.startswith("cortex-m"))


def board_script(target: Target) -> Path:
    machine = qemu_machine(target)
    script = BOARDS / f"{machine}.ld"
    if not script.is_file():
        raise ToolchainError(f"{_where(target)}: no board files for QEMU machine {machine!r} "
                             f"(codegen/c/boards/ has {', '.join(boards())})")
    return script


def _debian_arch(cc: str) -> str:
    """Debian's architecture name in cross libc package names (libc6-dev-<arch>-cross) for a GNU triplet."""
    triplet = Path(cc).name.removesuffix("-gcc")
    return {"aarch64-linux-gnu": "arm64", "arm-linux-gnueabihf": "armhf", "x86_64-linux-gnu": "amd64",
            "riscv64-linux-gnu": "riscv64"}.get(triplet, triplet.split("-")[0])


def _tool_prefix(target: Target) -> str:
    cc = target.toolchain.cc
    return cc[:-3] if cc.endswith("gcc") else ""


@dataclass
class BuildPlan:
    """The commands :func:`build_for_target` runs, all in ``project`` (paths relative to it)."""

    project: Path
    build_dir: Path
    elf: Path
    compile: list[list[str]]
    link: list[str]

    def commands(self) -> list[str]:
        return [shlex.join(c) for c in self.compile] + [shlex.join(self.link)]


def build_plan(project_dir: str | Path, target: Target, cflags_extra: str = "") -> BuildPlan:
    """The compile and link commands for ``target`` (nothing is run; a missing compiler is not checked here)."""
    project = Path(project_dir).resolve()
    kind = target_kind(target)
    cc = target.toolchain.cc
    flags = [*shlex.split(target.toolchain.cflags), *(f for f in C99_FLAGS if f not in target.toolchain.cflags.split()),
             *shlex.split(cflags_extra)]
    build = f"build-{target.name}"
    sources = list(SOURCES)
    link_flags: list[str] = []
    if kind == "bare-metal":
        script = board_script(target)
        sources.append(str(STARTUP))
        flags += ["-ffunction-sections", "-fdata-sections"]
        link_flags = ["--specs=rdimon.specs", "-Wl,--gc-sections", f"-Wl,-Map={build}/model.map",
                      "-L", str(BOARDS), "-T", str(script)]
    elif kind == "linux":
        link_flags = ["-static"]
    objects = [f"{build}/{Path(s).stem}.o" for s in sources]
    compile_cmds = [[cc, *flags, "-c", src, "-o", obj] for src, obj in zip(sources, objects)]
    link = [cc, *flags, *link_flags, "-o", f"{build}/model.elf", *objects]
    return BuildPlan(project, project / build, project / build / "model.elf", compile_cmds, link)


def build_for_target(project_dir: str | Path, target: Target, cflags_extra: str = "") -> Path:
    """Compile and link the emitted C project in ``project_dir`` for ``target``; returns the executable (ELF),
    ``<project>/build-<target>/model.elf``. A missing compiler or C library, or a compiler error, is one
    :class:`ToolchainError`."""
    plan = build_plan(project_dir, target, cflags_extra)
    cc = find_tool(target.toolchain.cc, target, "C compiler")
    kind = target_kind(target)
    needs = {"bare-metal": ("rdimon.specs", "newlib semihosting specs", "libnewlib-arm-none-eabi"),
             "linux": ("libc.a", "static C library", "libc6-dev-" + _debian_arch(target.toolchain.cc) + "-cross")}
    if kind in needs:
        file, what, package = needs[kind]
        found = subprocess.run([cc, f"-print-file-name={file}"], check=False, capture_output=True,
                               text=True).stdout.strip()
        if not Path(found).is_file():
            raise ToolchainError(f"{_where(target)}: {target.toolchain.cc} has no {what} ({file}); install it "
                                 f"(Debian: apt-get install {package})")
    plan.build_dir.mkdir(parents=True, exist_ok=True)
    try:
        plan.elf.unlink(missing_ok=True)   # a stale ELF must not pass for this build's
    except OSError as exc:
        raise ToolchainError(f"{_where(target)}: cannot remove the previous build's {plan.elf} ({exc.strerror})") \
            from None
    for cmd in [*plan.compile, plan.link]:
        proc = subprocess.run([cc, *cmd[1:]], cwd=plan.project, check=False, capture_output=True, text=True)
        if proc.returncode != 0:
            raise ToolchainError(f"{_where(target)}: {target.toolchain.cc} failed in {plan.project} "
                                 f"({shlex.join(cmd)}):\n{proc.stderr.strip()}")
    _check_elf(plan.elf, target)
    return plan.elf


ELF_MAGIC = b"\x7fELF"


def _check_elf(elf: Path, target: Target) -> None:
    """The link reported success: the executable must exist and be an ELF file, else one ToolchainError naming
    the target and the compiler (a compiler that does nothing, such as /bin/true, exits 0 too)."""
    try:
        with open(elf, "rb") as f:
            magic = f.read(len(ELF_MAGIC))
    except FileNotFoundError:
        raise ToolchainError(f"{_where(target)}: the C compiler {target.toolchain.cc!r} exited with 0 but wrote no "
                             f"executable {elf}") from None
    except OSError as exc:
        raise ToolchainError(f"{_where(target)}: the executable {elf} written by the C compiler "
                             f"{target.toolchain.cc!r} cannot be read ({exc.strerror})") from None
    if magic != ELF_MAGIC:
        raise ToolchainError(f"{_where(target)}: the C compiler {target.toolchain.cc!r} exited with 0 but {elf} is "
                             f"not an ELF file (it does not start with the ELF magic 7f 45 4c 46)")


def emulator_command(elf: Path, target: Target, args: list[str]) -> tuple[list[str], Path]:
    """The command that runs ``elf args...`` on the target, and its working directory: the ELF's folder (file
    arguments are best given relative to it, so the command stays valid when the folder moves)."""
    kind = target_kind(target)
    tokens = shlex.split(target.toolchain.emulator)
    if kind == "host" and not tokens:
        return [f"./{elf.name}", *args], elf.parent
    if not tokens:
        raise ToolchainError(f"{_where(target)} has no emulator (toolchain.emulator is empty), so intonly cannot "
                             f"run its build here")
    tokens[0] = find_tool(tokens[0], target, "emulator")
    if kind != "bare-metal":
        return [*tokens, f"./{elf.name}", *args], elf.parent
    # QEMU system emulation: the program's argv travels as semihosting arg= entries (QEMU joins them with spaces,
    # so they must not contain any: the files are named relative to the ELF's folder, QEMU's working directory).
    argv = [elf.name, *args]
    if any(not a or any(c in a for c in " ,\t\n") for a in argv):
        raise ToolchainError(f"{_where(target)}: semihosting arguments cannot contain spaces or commas: {argv}")
    semi = ",".join(f"arg={a}" for a in argv)
    if "-semihosting-config" in tokens:
        i = tokens.index("-semihosting-config")
        tokens[i + 1] += "," + semi
    else:
        at = len(tokens) - 1 if tokens[-1] == "-kernel" else len(tokens)
        tokens[at:at] = ["-semihosting-config", f"enable=on,target=native,{semi}"]
    if tokens[-1] == "-kernel":
        tokens.append(elf.name)
    elif "-kernel" not in tokens:
        tokens += ["-kernel", elf.name]
    return tokens, elf.parent


def run_on_target(elf: str | Path, target: Target, inputs: list[np.ndarray], ports: list[tuple[str, tuple]],
                  timeout: float = 120) -> list[np.ndarray]:
    """Run a :func:`build_for_target` executable on the target's emulator (natively for the host) on integer
    ``inputs`` (one batch-first array per model input); ``ports`` lists each output's (dtype, per-sample shape).
    Returns one array per output, as :func:`codegen.c.toolchain.run_host`. A crash, a hang (killed after
    ``timeout`` seconds) or a non-zero exit is one :class:`ToolchainError` naming the target, the command and
    its stderr."""
    elf = Path(elf).resolve()

    def launch(exe: Path, in_file: Path, out_file: Path, extra: list[str]):
        # input.bin and output.bin are next to the ELF, the emulator's working directory (semihosting opens files
        # relative to QEMU's)
        return emulator_command(exe, target, [in_file.name, out_file.name, *extra])

    return _run_driver(elf, list(inputs), ports, timeout=timeout, launch=launch, where=_where(target))


def _readelf(target: Target) -> str:
    return find_tool(_tool_prefix(target) + "readelf", target, "readelf")


READELF_TIMEOUT_S = 60


def _run_readelf(readelf: str, option: str, path: Path, target: Target) -> str:
    """``readelf <option> -W <path>``'s output; a missing file, a readelf that cannot start, fails or hangs is one
    ToolchainError naming the target, the command and readelf's stderr."""
    cmd = [readelf, option, "-W", str(path)]
    if not path.is_file():
        raise ToolchainError(f"{_where(target)}: cannot read the sizes of {path}: no such file")
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace", check=False,
                              timeout=READELF_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise ToolchainError(f"{_where(target)}: {shlex.join(cmd)} did not finish within {READELF_TIMEOUT_S} s "
                             f"and was killed") from None
    except OSError as exc:
        raise ToolchainError(f"{_where(target)}: cannot run {shlex.join(cmd)} ({exc.strerror})") from None
    if proc.returncode != 0:
        raise ToolchainError(f"{_where(target)}: {shlex.join(cmd)} exited with {proc.returncode}:\n"
                             f"{proc.stderr.strip()}")
    return proc.stdout


def _sections(readelf: str, path: Path, target: Target) -> list[tuple[str, str, int, str]]:
    """(name, type, size, flags) of every section of an ELF file or object."""
    out = _run_readelf(readelf, "-S", path, target)
    rows = []
    for line in out.splitlines():
        m = re.match(r"\s*\[\s*\d+\]\s+(.*)$", line)
        if not m:
            continue
        tok = m.group(1).split()
        if len(tok) == 10:
            name, typ, _, _, size, _, flags = tok[:7]
        elif len(tok) == 9:
            name, typ, _, _, size, _ = tok[:6]
            flags = ""
        else:
            continue
        rows.append((name, typ, int(size, 16), flags))
    return rows


def _classify(rows) -> dict[str, int]:
    sums = {"text_bytes": 0, "rodata_bytes": 0, "data_bytes": 0, "bss_bytes": 0}
    for name, typ, size, flags in rows:
        if "A" not in flags:
            continue
        if "X" in flags:
            sums["text_bytes"] += size
        elif "W" not in flags:
            sums["rodata_bytes"] += size
        elif typ == "NOBITS":
            sums["bss_bytes"] += size
        else:
            sums["data_bytes"] += size
    return sums


def arena_symbol(model_c: Path) -> str:
    """The name of the static arena array in a generated model.c (``static <type> NAME[...]``)."""
    if model_c.is_file():
        m = re.search(r"^static\s+[\w ]+?\s+(\w*arena\w*)\s*\[", model_c.read_text(), re.MULTILINE)
        if m:
            return m.group(1)
    return ARENA_SYMBOL


def elf_sizes(elf: str | Path, target: Target) -> dict[str, int]:
    """Static memory of a built model (bytes, JSON-able ints), from ``readelf -S -s``:

    * ``text_bytes``, ``rodata_bytes``, ``data_bytes``, ``bss_bytes``: allocated sections by flags (executable;
      read-only; writable with contents; writable without);
    * ``flash_bytes`` = text + rodata (code and constants; the weights are rodata) and ``flash_image_bytes`` =
      flash + data (what a flash image holds: the initial values of .data are copied to RAM at reset);
    * ``ram_bytes`` = data + bss (static RAM; the heap and the stack come on top);
    * ``arena_bytes``: the size of model.c's static arena array (its symbol in the ELF; 0 if absent);
    * ``model_flash_bytes``, ``model_ram_bytes``: the same sums over model.o, kernels.o and weights.o alone
      (without the test driver, the start-up code and the C library), when the objects are next to the ELF.
    """
    elf = Path(elf).resolve()
    readelf = _readelf(target)
    sizes = _classify(_sections(readelf, elf, target))
    sizes["flash_bytes"] = sizes["text_bytes"] + sizes["rodata_bytes"]
    sizes["flash_image_bytes"] = sizes["flash_bytes"] + sizes["data_bytes"]
    sizes["ram_bytes"] = sizes["data_bytes"] + sizes["bss_bytes"]
    name = arena_symbol(elf.parent.parent / "model.c")
    out = _run_readelf(readelf, "-s", elf, target)
    sizes["arena_bytes"] = 0
    for line in out.splitlines():
        tok = line.split()
        if len(tok) >= 8 and tok[7] == name and tok[3] == "OBJECT":
            sizes["arena_bytes"] = int(tok[2], 0)
            break
    objects = [elf.parent / o for o in MODEL_OBJECTS]
    if all(o.is_file() for o in objects):
        model = _classify([row for o in objects for row in _sections(readelf, o, target)])
        sizes["model_flash_bytes"] = model["text_bytes"] + model["rodata_bytes"]
        sizes["model_ram_bytes"] = model["data_bytes"] + model["bss_bytes"]
    return {k: int(v) for k, v in sizes.items()}
