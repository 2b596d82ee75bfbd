"""Shared test helpers: required tools (fail in CI, skip with instructions elsewhere) and small IR builders."""

import os
import shutil

import numpy as np
import pytest

from intonly.quantize.ir import IntModel, Node, TensorInfo

IN_CI = os.environ.get("CI", "").lower() == "true"


def require_tool(command: str, how: str) -> str:
    path = shutil.which(command)
    if path is None:
        message = f"{command} not found; install it with: {how}"
        if IN_CI:
            pytest.fail(message + " (CI must not skip: scripts/setup.sh installs it)")
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def gcc():
    return require_tool("gcc", "apt-get install gcc (or: bash scripts/setup.sh as root)")


def single_op_model(op: str, in_infos: list[TensorInfo], out_info: TensorInfo, attrs: dict, constants=None,
                    rounding: str = "half_up", inputs: list[TensorInfo] = ()) -> IntModel:
    """A model ``quantize -> op -> dequantize`` (one quantize per input) around one integer node. ``inputs``: more
    graph inputs the op does not read (a model has at least one input; ``constant`` reads none)."""
    tensors, nodes, graph_inputs = {}, [], []
    for info in [*in_infos, *inputs]:
        raw = TensorInfo(f"{info.name}_f", "float32", info.shape)
        tensors[raw.name] = raw
        tensors[info.name] = info
        graph_inputs.append(raw.name)
        nodes.append(Node(info.name, "quantize", [raw.name], [info.name], {"perm": [], "form": 0}))
    tensors[out_info.name] = out_info
    params = {role: f"op.{role}" for role in (constants or {})}
    nodes.append(Node("op", op, [i.name for i in in_infos], [out_info.name], attrs, params))
    final = TensorInfo("out_f", "float32", out_info.shape)
    tensors[final.name] = final
    nodes.append(Node("out", "dequantize", [out_info.name], [final.name], {"perm": []}))
    model = IntModel("single_" + op, rounding, graph_inputs, [final.name], tensors, nodes,
                     {f"op.{k}": v for k, v in (constants or {}).items()})
    model.validate()
    return model


def random_ints(rng: np.random.Generator, shape, info: TensorInfo) -> np.ndarray:
    lo, hi = info.qrange()
    return rng.integers(lo, hi + 1, size=shape).astype(info.dtype)


def float_sqnr_db(net, x: np.ndarray, int_model: IntModel) -> float:
    """10 log10 of the float model's output energy over that of hwsim's error on ``x`` (first output)."""
    import torch

    from intonly import simulate

    with torch.no_grad():
        ref = net(torch.from_numpy(x))
    ref = (ref[0] if isinstance(ref, tuple) else ref).numpy().astype(np.float64)
    out = simulate(int_model, x).outputs[0]
    return float(10 * np.log10(np.sum(ref ** 2) / np.sum((out - ref) ** 2)))


def assert_c_equals_hwsim_on_host_and_cortex_m4(model: IntModel, x: np.ndarray, tmp_path) -> None:
    """The model's generated C, built for the host with gcc and for Cortex-M4 with arm-none-eabi-gcc under
    qemu-system-arm, gives hwsim's integer outputs bit for bit (under each one's numerics) on every output."""
    from intonly import build_and_run, simulate
    from intonly.api import build_for
    from intonly.targets import load_target

    require_tool("gcc", "apt-get install gcc (or: bash scripts/setup.sh as root)")
    require_tool("arm-none-eabi-gcc", "apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi "
                                      "(or: bash scripts/setup.sh as root)")
    require_tool("qemu-system-arm", "apt-get install qemu-system-arm (or: bash scripts/setup.sh as root)")
    sim = simulate(model, x)
    _, c_outs = build_and_run(model, tmp_path / "host", sim.int_inputs)
    target = load_target("cortex-m4")
    on_target = simulate(model, x, target=target)
    built = build_for(model, target, tmp_path / "m4", run_inputs=on_target.int_inputs, timeout=60)
    assert len(c_outs) == len(built.outputs) == len(sim.int_outputs)
    for c, b, s, t in zip(c_outs, built.outputs, sim.int_outputs, on_target.int_outputs):
        np.testing.assert_array_equal(c, s)
        np.testing.assert_array_equal(b, t)
