"""The repository's bench/ package for the tests that call its functions in-process (its cases, strategies and
networks): imported by file path, so that no test needs the repository root on sys.path (which would also put
the checkout's generic top-level folders there). Tests that only run a bench script use
``python -m bench.<name>`` in a subprocess, with the repository root as the working directory."""

import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "bench"


def bench_module(name: str) -> ModuleType:
    """``bench.<name>``, with ``bench`` the checkout's bench/ package."""
    package = sys.modules.get("bench")
    if package is None:
        spec = importlib.util.spec_from_file_location("bench", BENCH / "__init__.py",
                                                      submodule_search_locations=[str(BENCH)])
        package = importlib.util.module_from_spec(spec)
        sys.modules["bench"] = package
        spec.loader.exec_module(package)
    if [Path(p).resolve() for p in package.__path__] != [BENCH]:
        raise ImportError(f"the imported 'bench' package is {list(package.__path__)}, not {BENCH}")
    return importlib.import_module(f"bench.{name}")
