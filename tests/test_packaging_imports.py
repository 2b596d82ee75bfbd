"""Imports name the installed package only, so that the rule cannot regress:

* No Python file of the repository imports the generic top-level names ``quantize``, ``hwsim``, ``codegen`` or
  ``targets`` (they install as ``intonly.quantize``, ...; the repository root is not on ``sys.path`` when intonly
  is used, so such an import works only by accident, and loads a second copy of the module when it does).
* Nothing edits ``sys.path`` (bench/ runs as ``python -m bench.<name>``; tests import bench through
  tests/bench_modules.py).
* Every name the README and docs/ import from ``intonly`` is exported by it (``intonly.__all__``).
"""

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

import intonly

REPO = Path(__file__).resolve().parents[1]
FOLDERS = ("intonly", "quantize", "hwsim", "codegen", "targets", "tests", "bench")
GENERIC = {"quantize", "hwsim", "codegen", "targets"}


def python_files() -> list[Path]:
    """Every tracked .py file under :data:`FOLDERS` (every .py file there when git cannot list them)."""
    try:
        out = subprocess.run(["git", "ls-files", "-z", "--", *FOLDERS], cwd=REPO, capture_output=True,
                             check=True).stdout.decode()
        files = [REPO / p for p in out.split("\0") if p.endswith(".py")]
    except (OSError, subprocess.CalledProcessError):
        files = [p for folder in FOLDERS for p in (REPO / folder).rglob("*.py")]
    return sorted(p for p in files if p.is_file())


def generic_imports(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, statement) of every absolute ``import x`` / ``from x import`` whose top-level name is generic."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        for name in names:
            if name.split(".")[0] in GENERIC:
                found.append((node.lineno, ast.unparse(node)))
    return found


def test_the_file_list_covers_every_folder():
    files = python_files()
    assert {p.relative_to(REPO).parts[0] for p in files} == set(FOLDERS)


def test_no_import_of_a_generic_top_level_name():
    bad = [f"{path.relative_to(REPO)}:{line}: {stmt}"
           for path in python_files()
           for line, stmt in generic_imports(ast.parse(path.read_text(), str(path)))]
    assert not bad, "import these through the intonly namespace (intonly.quantize, ...):\n" + "\n".join(bad)


def test_the_check_finds_each_form():
    source = ("import hwsim\nimport targets.loader as t\nfrom codegen.c import emit\nfrom quantize import ir\n"
              "from intonly.quantize import ir\nfrom . import targets\nfrom .quantize import x\nimport intonly.hwsim\n"
              "def f():\n    import hwsim.ops\n")
    assert [line for line, _ in generic_imports(ast.parse(source))] == [1, 2, 3, 4, 10]


def test_nothing_edits_sys_path():
    bad = []
    for path in python_files():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Attribute) and node.attr == "path" and isinstance(node.value, ast.Name) \
                    and node.value.id == "sys":
                bad.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert not bad, "sys.path used in:\n" + "\n".join(bad)


def documented_intonly_imports() -> list[tuple[str, str]]:
    """(file, name) for every name a ``from intonly import ...`` in README.md or docs/*.md imports."""
    found = []
    for doc in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        text = doc.read_text()
        for m in re.finditer(r"^[ \t]*from intonly import (\([^)]*\)|[^\n]*)", text, re.MULTILINE):
            statement = ast.parse("from intonly import " + m.group(1).split("#")[0].strip()).body[0]
            found += [(doc.name, alias.name) for alias in statement.names]
    return found


def test_the_api_exports_what_the_docs_import():
    found = documented_intonly_imports()
    assert {name for _, name in found} >= {"quantize", "simulate", "emit_c", "profile_c", "load_target"}
    missing = [f"{doc}: {name}" for doc, name in found if name not in intonly.__all__ or not hasattr(intonly, name)]
    assert not missing, missing


@pytest.mark.parametrize("argv", [["-m", "bench.published_rows"], ["-m", "bench.host_profile", "--help"]])
def test_bench_runs_as_a_module_from_the_repository_root(argv):
    proc = subprocess.run([sys.executable, *argv], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout
