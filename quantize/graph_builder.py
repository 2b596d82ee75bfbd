"""What the model importers (quantize/tflite, quantize/onnx) share: an IntModel under construction, with unique
tensor and constant names, and the node naming of the source operator being converted."""

from __future__ import annotations

import numpy as np

from .ir import Node, TensorInfo


class GraphBuilder:
    """Tensors, nodes and constants of the IntModel being built; ``node_prefix`` names the source operator whose
    nodes are being appended (``op3:CONV_2D``, ``n5:Conv``)."""

    def __init__(self):
        self.tensors: dict[str, TensorInfo] = {}
        self.nodes: list[Node] = []
        self.constants: dict[str, np.ndarray] = {}
        self.node_prefix = ""

    def unique(self, base: str) -> str:
        """``base``, or ``base#k`` with the first k >= 2 that no tensor or constant uses yet."""
        name, k = base or "t", 1
        while name in self.tensors or name in self.constants:
            k += 1
            name = f"{base}#{k}"
        return name

    def add_constant(self, base: str, values: np.ndarray) -> str:
        name = self.unique(base)
        self.constants[name] = values
        return name

    def append(self, op: str, inputs: list[str], output: TensorInfo, attrs: dict, params: dict | None = None,
               step: str = "") -> None:
        """A node of the current source operator, named ``node_prefix`` (``/<step>`` for its helper nodes)."""
        self.nodes.append(Node(self.node_prefix + (f"/{step}" if step else ""), op, inputs, [output.name], attrs,
                               params or {}))

    def intermediate(self, like: TensorInfo, shape: tuple, suffix: str, layout: str = "") -> TensorInfo:
        """A new tensor quantized as ``like`` (a helper node's output), named after it."""
        info = TensorInfo(self.unique(like.name + suffix), like.dtype, tuple(shape), like.scale, like.zero_point,
                          like.bits, layout=layout)
        self.tensors[info.name] = info
        return info
