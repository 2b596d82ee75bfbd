"""codegen.tvm: the TVM backend (in progress: this module loads TVM and checks its pins; the per-op tensor
expressions and schedules come next).

TVM 0.27 is pinned with its FFI package: ``apache-tvm==0.27.0.post1`` and ``apache-tvm-ffi==0.1.14.post0``. With the
newer ``apache-tvm-ffi`` 0.1.15.post2 that pip picks when only TVM is pinned, serializing any TIR object
(``tvm.ir.save_json`` of a ``tvm.tirx.Var``) crashes the process, which breaks ``Schedule.tensorize`` and the
MetaSchedule builders; so a different version is refused before TVM is imported."""

from __future__ import annotations

import importlib
from importlib import metadata

from intonly.quantize.errors import ToolchainError

PINNED = {"apache-tvm": "0.27.0.post1", "apache-tvm-ffi": "0.1.14.post0"}


def _pins() -> str:
    return " and ".join(f"{name}=={version}" for name, version in PINNED.items())


def load_tvm():
    """Return the ``tvm`` module after checking that both pinned distributions are installed at their versions;
    one ToolchainError naming the pins otherwise (missing, another version, or an import that fails)."""
    for name, version in PINNED.items():
        try:
            found = metadata.version(name)
        except metadata.PackageNotFoundError:
            raise ToolchainError(f"the TVM backend needs {_pins()}; {name} is not installed "
                                 f"(pip install {name}=={version})") from None
        if found != version:
            raise ToolchainError(f"the TVM backend needs {_pins()}; {name} {found} is installed "
                                 f"(pip install {name}=={version})")
    try:
        return importlib.import_module("tvm")
    except Exception as e:   # a broken install raises anything from ImportError to OSError
        raise ToolchainError(f"the TVM backend needs {_pins()}; importing tvm failed: {e}") from None
