"""intonly installs only the ``intonly`` package: the repository's quantize/, hwsim/, codegen/ and targets/ install
as intonly.quantize, ... (pyproject's package-dir), so a user's own ``targets/`` or ``hwsim/`` folder cannot shadow
them, and the README's API example runs beside such folders."""

import os
import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MAPPED = ("quantize", "hwsim", "codegen", "targets")


def test_every_package_folder_is_listed_in_pyproject():
    setup = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert setup["package-dir"] == {f"intonly.{name}": name for name in MAPPED}
    found = set()
    for init in ROOT.glob("*/**/__init__.py"):
        parts = init.parent.relative_to(ROOT).parts
        if parts[0] in MAPPED:
            found.add(".".join(("intonly", *parts)))
        elif parts[0] == "intonly":
            found.add(".".join(parts))
    assert sorted(setup["packages"]) == sorted(found)


def _python(code: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=600)


def readme_api_example() -> str:
    text = (ROOT / "README.md").read_text()
    return re.search(r"## Python API\n\n```python\n(.*?)```", text, re.S).group(1)


def test_the_readme_api_example_runs_beside_a_users_own_targets_and_hwsim_packages(tmp_path, gcc):
    for name in ("targets", "hwsim"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text(f"raise ImportError('the user\\'s own {name}/ was imported')\n")
    setup = ("import numpy as np, torch\n"
             "torch.manual_seed(0)\n"
             "model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(),\n"
             "                            torch.nn.Linear(4 * 6 * 6, 3)).eval()\n"
             "calib_x = np.random.default_rng(0).normal(size=(32, 1, 6, 6)).astype(np.float32)\n"
             "x = calib_x[:8]\n")
    run = _python(setup + readme_api_example() + "print('example ok', len(c_out), len(seconds))\n", tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "example ok 8" in run.stdout
    assert (tmp_path / "build" / "c" / "model.c").is_file() and (tmp_path / "model.intonly").is_file()


@pytest.mark.parametrize("name", MAPPED)
def test_no_generic_top_level_package_is_importable(name, tmp_path):
    run = _python(f"import {name}", tmp_path)
    assert run.returncode == 1 and f"ModuleNotFoundError: No module named '{name}'" in run.stderr


def test_a_wheel_holds_only_the_intonly_package_with_its_data(tmp_path):
    """A regular (non-editable) install gets the namespace, the templates at every depth, targets and boards."""
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--disable-pip-version-check",
                            "-w", str(tmp_path), str(ROOT)], capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = tmp_path.glob("intonly-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    top = {n.split("/")[0] for n in names if not n.startswith("intonly-")}
    assert top == {"intonly"}
    for expected in ("intonly/quantize/ops/conv2d.py", "intonly/hwsim/ops/negate.py", "intonly/codegen/c/ops/dense.py",
                     "intonly/codegen/c/templates/generic/negate.c.j2",
                     "intonly/codegen/c/templates/x86/requant8/half_up.c.j2",
                     "intonly/codegen/c/templates/project/runtime.h.j2", "intonly/codegen/c/boards/mps2-an386.ld",
                     "intonly/targets/specs/cortex-m7.toml", "intonly/assets/digits_cnn.pt",
                     "intonly/commands/ops.py"):
        assert expected in names, expected
