"""Models imported from other formats, ``.tflite`` and ``.onnx`` files, and their own runtimes as oracles.

:func:`load_int_model` is what every command that takes a model file calls: an ``.intonly`` file is loaded, a
``.tflite`` or ``.onnx`` file is imported (quantize/tflite, quantize/onnx). :func:`compare_with_tflm` runs the TFLM
interpreter (the ``tflite-micro`` package, its reference kernels) on the same integer inputs with every tensor
preserved, :func:`compare_with_onnxruntime` ONNX Runtime with every imported tensor added as an output; both count,
per imported tensor, the elements where hwsim differs.
"""


from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from intonly.quantize.ir import IntModel

IMPORTED_SUFFIXES = (".tflite", ".onnx")
# The tolerance against each runtime: TFLM's integer kernels are reproduced exactly; ONNX Runtime requantizes in
# float32, so an element may differ by 1 LSB where the real value lies within float32 rounding of a tie
# (docs/import.md#onnx).
TOLERANCE_LSB = {"tflite-micro": 0, "onnxruntime": 1}


def is_imported(spec: str) -> bool:
    return Path(spec).suffix.lower() in IMPORTED_SUFFIXES


def load_int_model(path) -> IntModel:
    """The IntModel in ``path``: imported from a ``.tflite`` or ``.onnx`` file, else loaded from an ``.intonly``
    file."""
    if is_imported(str(path)):
        return import_model(path).model
    return IntModel.load(path)


def import_model(path):
    """``import_tflite`` or ``import_onnx`` by the file's suffix."""
    if Path(path).suffix.lower() == ".onnx":
        from intonly.quantize.onnx import import_onnx
        return import_onnx(path)
    from intonly.quantize.tflite import import_tflite
    return import_tflite(path)


def compare_with_runtime(path, imported, int_inputs: list[np.ndarray], values: dict) -> "OracleCompare":
    """The model's own runtime as the oracle: TFLM for .tflite, ONNX Runtime for .onnx."""
    if Path(path).suffix.lower() == ".onnx":
        return compare_with_onnxruntime(path, imported, int_inputs, values)
    return compare_with_tflm(path, imported, int_inputs, values)


@dataclass
class OracleCompare:
    """hwsim against another runtime, tensor by tensor: ``mismatched[name]`` counts differing elements over all
    samples (0 everywhere: bit-exact); ``elements`` counts all compared."""

    runtime: str
    samples: int
    tensors: int
    elements: int
    mismatched: dict[str, int]
    max_abs_lsb: int = 0
    end_to_end_max_abs_lsb: int | None = None   # ONNX Runtime: hwsim free-running, not teacher-forced

    @property
    def bit_exact(self) -> bool:
        return not any(self.mismatched.values())

    @property
    def within_tolerance(self) -> bool:
        return self.max_abs_lsb <= TOLERANCE_LSB[self.runtime]

    def as_dict(self) -> dict:
        return {"runtime": self.runtime, "samples": self.samples, "tensors": self.tensors, "elements": self.elements,
                "bit_exact": self.bit_exact, "max_abs_lsb": self.max_abs_lsb,
                "end_to_end_max_abs_lsb": self.end_to_end_max_abs_lsb,
                "tolerance_lsb": TOLERANCE_LSB[self.runtime], "within_tolerance": self.within_tolerance,
                "mismatched_elements": {k: v for k, v in self.mismatched.items() if v}}


def compare_with_tflm(path, imported, int_inputs: list[np.ndarray], values: dict) -> OracleCompare:
    """Run the TFLM interpreter on each sample of ``int_inputs`` (one batch-first integer array per model input, in
    the subgraph's input order; a float input gets ``scale · (q - zero_point)`` in float32, which TFLite's QUANTIZE
    maps back to ``q``) with every tensor preserved, and compare each TFLite tensor of ``imported.tensor_names``
    with hwsim's ``values`` (batch first)."""
    from tflite_micro import runtime

    names = imported.tensor_names
    # With every tensor preserved nothing shares arena memory: room for all of them twice over, plus TFLM's own
    # bookkeeping (a too small arena crashes the interpreter instead of failing cleanly).
    arena = (1 << 20) + 2 * sum(values[name][0].nbytes for name in names.values())
    interp = runtime.Interpreter.from_file(str(path), arena_size=arena,
                                           intrepreter_config=runtime.InterpreterConfig.kPreserveAllTensors)
    model = imported.model
    feeds = []
    for batch, node, is_float in zip(int_inputs, (n for n in model.nodes if n.op == "quantize"), imported.float_inputs):
        t = model.tensors[node.outputs[0]]
        feeds.append((batch.astype(np.float32) - np.float32(t.zero_point)) * np.float32(t.scale) if is_float else batch)
    mismatched = dict.fromkeys(names.values(), 0)
    elements = worst = 0
    samples = len(int_inputs[0])
    for i in range(samples):
        for k, batch in enumerate(feeds):
            interp.set_input(np.ascontiguousarray(batch[i])[None], k)
        interp.invoke()
        for index, name in names.items():
            ours = values[name][i]
            theirs = np.asarray(interp.GetTensor(index, 0)["tensor_data"]).reshape(ours.shape)
            diff = np.abs(theirs.astype(np.int64) - ours)
            mismatched[name] += int(np.count_nonzero(diff))
            worst = max(worst, int(diff.max(initial=0)))
            elements += ours.size
    return OracleCompare("tflite-micro", samples, len(names), elements, mismatched, worst)


def onnxruntime_values(path, imported, int_inputs: list[np.ndarray]) -> dict[str, np.ndarray]:
    """ONNX Runtime's value of every imported integer tensor, as IR codes in IR layout (batch first): a default
    session (its graph optimizations turn QDQ patterns into its integer kernels) with every such tensor added as a
    graph output, fed the float inputs ``scale · (q - zero_point)``, which its QuantizeLinear maps back to ``q``."""
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(path))
    known = {o.name for o in model.graph.output}
    for name in imported.tensor_names:
        if name not in known:
            model.graph.output.append(onnx.ValueInfoProto(name=name))
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    ir = imported.model
    feeds = []
    for batch, node in zip(int_inputs, (n for n in ir.nodes if n.op == "quantize")):
        t = ir.tensors[node.outputs[0]]
        real = (batch.astype(np.float32) - np.float32(t.zero_point)) * np.float32(t.scale)
        perm = node.attrs["perm"]
        if perm:   # stored HWC -> ONNX's CHW
            real = real.transpose(0, *(1 + perm.index(k) for k in range(len(perm))))
        feeds.append(np.ascontiguousarray(real))
    names = list(imported.tensor_names)
    onnx_inputs = [i.name for i in session.get_inputs()]
    runs = [session.run(names, {k: v[i:i + 1] for k, v in zip(onnx_inputs, feeds)}) for i in range(len(feeds[0]))]
    values = {}
    for k, onnx_name in enumerate(names):
        ir_name = imported.tensor_names[onnx_name]
        arr = np.concatenate([r[k] for r in runs]).astype(np.int64) - imported.offsets[ir_name]
        values[ir_name] = (arr.transpose(0, 2, 3, 1) if arr.ndim == 4 else arr).reshape(
            (len(arr),) + ir.tensors[ir_name].shape)
    return values


def compare_with_onnxruntime(path, imported, int_inputs: list[np.ndarray], values: dict) -> OracleCompare:
    """hwsim against ONNX Runtime (:func:`onnxruntime_values`) **layer by layer**: each integer node runs in hwsim on
    ONNX Runtime's own values of its inputs (teacher-forced; a tensor ONNX Runtime does not have comes from hwsim),
    and its output is compared with ONNX Runtime's, so a difference is that node's own, not one carried from
    upstream. ``mismatched``/``max_abs_lsb`` count those; ``end_to_end_max_abs_lsb`` is the largest difference of
    hwsim's free-running ``values`` (differences grow through steep functions)."""
    from intonly.hwsim.executor import LayerTrace, OpContext
    from intonly.hwsim.ops import executor
    from intonly.quantize.names import ROUNDING_IDS

    theirs = onnxruntime_values(path, imported, int_inputs)
    model = imported.model
    forced = {name: v.astype(model.tensors[name].dtype) for name, v in theirs.items()}
    mismatched = {name: 0 for name in theirs}
    worst = end_to_end = 0
    for name, ref in theirs.items():
        end_to_end = max(end_to_end, int(np.abs(values[name].astype(np.int64) - ref).max(initial=0)))
    for node in model.integer_nodes():
        out = node.outputs[0]
        ctx = OpContext(ROUNDING_IDS[model.rounding], True, LayerTrace(node.name, node.op, out), len(int_inputs[0]))
        ours = executor(node.op).run(model, node, [forced[t] for t in node.inputs], ctx)
        if out in theirs:
            diff = np.abs(ours.astype(np.int64) - theirs[out])
            mismatched[out] = int(np.count_nonzero(diff))
            worst = max(worst, int(diff.max(initial=0)))
        else:
            forced[out] = ours
    elements = int(sum(v.size for v in theirs.values()))
    return OracleCompare("onnxruntime", len(int_inputs[0]), len(theirs), elements, mismatched, worst, end_to_end)
