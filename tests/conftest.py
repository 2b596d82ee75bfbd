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
        nodes.append(Node(info.name, "quantize", [raw.name], [info.name], {"perm": []}))
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
