"""quantize: the graph's float input to integers, ``q = clamp(round(x / scale) + zp)`` on the output tensor's bit
range, with an optional axis permutation (CHW images become HWC). ``form`` says whose division and rounding
(docs/numerics.md#quantization):

* 0 ``intonly``: ``x`` and ``scale`` in float64, divided there, rounded half to even (intonly's own models);
* 1 ``tflite``: float32 ``x / scale``, rounded half away from zero (TFLite's ``AffineQuantize``, imported ``.tflite``);
* 2 ``onnx``: float32 ``x / scale``, rounded half to even (ONNX ``QuantizeLinear``, imported ``.onnx``).
"""

from ._attrs import PERM, Attr
from ._opdef import OpDef
from ._shapes import permuted

FORMS = {"intonly": 0, "tflite": 1, "onnx": 2}

OP = OpDef(
    name="quantize", summary="float graph input -> integer tensor (and CHW -> HWC for images)",
    definition="docs/numerics.md#quantization", n_inputs=1, attrs={"perm": PERM, "form": Attr("int", 0, 2)},
    shape=permuted, integer=False,
    declines={"c": "runs where the float input is: the generated model_run() takes the quantize node's integer "
                   "output"})
