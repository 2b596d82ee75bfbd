"""tflite_softmax16: TensorFlow Lite's int16 SOFTMAX over the last axis, exactly (docs/numerics.md#tflite_softmax16).

Input and output zero points are 0; the output scale is 1/32768. Per row, with ``m`` the row maximum,
``LUT(v, T) = T[256 + (v >> 7)] + ((T[.. + 1] - T[..]) · (v & 127) + 64) >> 7`` (TFLite's ``LUTLookup``)::

    e_c   = LUT(clamp(MBQM(x_c - m; multiplier, left_shift) + 32767, -32768, 32767), exp_lut)   exp(x_c - m), Q0.15
    sum   = Σ e_c                                               int32; h = leading zeros of sum
    r     = LUT(clamp(((sum << (h - 1)) + 2^13) >> 14) - 98304, -32768, 32767), reciprocal_lut)
                                                                1/(sum·2^(h-31)), Q0.15
    y_c   = clamp((e_c · r + 2^(30 - h)) >> (31 - h), 0, 32767)

``MBQM`` is TFLite's MultiplyByQuantizedMultiplier (``RDBPOT(SRDHM(d · 2^max(s, 0), m), max(-s, 0))``); the importer
builds both 513-entry tables with TFLite's ``LUTPopulate`` (quantize/tflite/lut16.py). Bounds: ``left_shift <= 15``
keeps ``(x_c - m) · 2^left_shift`` inside int32; table entries in [0, 32767] keep every interpolation inside int16;
``D · 32767 < 2^31`` keeps the sum in int32, and the row maximum's own exp (at least 2) keeps ``h <= 30``, so every
shift is defined."""

from ..bounds import Bound
from ._attrs import MULTIPLIER, Attr
from ._opdef import OpDef
from ._shapes import same_as_input

LUT_SIZE = 513           # 512 segments of 128 codes and the end point of the last


def bounds(model, node, producers=None):
    from ..tflite.lut16 import lut_lookup16   # here: the tflite package imports the IR, which imports this registry
    depth = model.tensors[node.inputs[0]].shape[-1]
    found = []
    for role in ("exp_lut", "reciprocal_lut"):
        table = model.param(node, role).astype("int64")
        found += [Bound(f"{role} entries below 0", max(0, -int(table.min())), 0),
                  Bound(f"{role} entries above 32767", max(0, int(table.max()) - 32767), 0)]
    found += [Bound(f"row sum of exps (D={depth}) in Q16.15", depth * 32767, 2**31 - 1),
              Bound("2 - exp of the row maximum (the sum must be at least 2)",
                    2 - int(lut_lookup16(32767, model.param(node, "exp_lut"))), 0)]
    return found


def shape(attrs, in_shapes, params):
    for role in ("exp_lut", "reciprocal_lut"):
        if tuple(params[role]) != (LUT_SIZE,):
            raise ValueError(f"{role} has shape {tuple(params[role])}, expected ({LUT_SIZE},)")
    return same_as_input(attrs, in_shapes, params)


OP = OpDef(name="tflite_softmax16", summary="TensorFlow Lite's int16 softmax (two interpolated 513-entry tables), "
           "last axis", definition="docs/numerics.md#tflite_softmax16", n_inputs=1,
           attrs={"multiplier": MULTIPLIER, "left_shift": Attr("int", -31, 15)},
           params={"exp_lut": ("int16",), "reciprocal_lut": ("int16",)}, shape=shape, bounds=bounds)
