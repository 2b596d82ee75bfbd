"""The table of IR operators: what each op takes, its attributes, and its output shape.

One row per op. The IR validator, the lowering pass, hwsim and codegen all read this table,
so adding an op starts here. Shapes are per sample (no batch dimension); image tensors are
HWC (channels last, as in TFLite / CMSIS-NN), vectors are (C,).

Attribute kinds: ``int``, ``ints`` (list of int), ``str``.
"""

from dataclasses import dataclass, field

from .errors import ModelFileError

INT_DTYPES = ("int8", "int16", "int32")
ACT_DTYPES = ("int8", "int16")
ROUNDING_MODES = ("half_up", "double", "half_even")


@dataclass(frozen=True)
class OpSchema:
    n_inputs: int | None  # None: one or more (concat)
    attrs: dict[str, str]
    params: dict[str, tuple[str, ...]] = field(default_factory=dict)  # role -> allowed dtypes
    integer: bool = True  # False only for the graph-boundary ops quantize/dequantize


_CLAMP = {"act_min": "int", "act_max": "int"}
_REQUANT = {"input_zp": "int", "output_zp": "int", **_CLAMP}
_WEIGHTED = {"weight": ("int8", "int16"), "bias": ("int32",), "multiplier": ("int32",), "shift": ("int32",)}
_REQUANT1 = {"multiplier": "int", "shift": "int", "output_zp": "int", **_CLAMP}  # one per-tensor requant
_IEXP = {"x0": "int", "n": "int", "q_max": "int", "b_int": "int", "c_int": "int"}  # I-BERT i-exp constants
_WINDOW = {"kernel": "ints", "stride": "ints", "padding": "ints"}

OPS: dict[str, OpSchema] = {
    "quantize": OpSchema(1, {"perm": "ints"}, integer=False),
    "dequantize": OpSchema(1, {"perm": "ints"}, integer=False),
    "conv2d": OpSchema(1, {"stride": "ints", "padding": "ints", "dilation": "ints", "groups": "int", **_REQUANT},
                       _WEIGHTED),
    "dense": OpSchema(1, dict(_REQUANT), _WEIGHTED),
    "matmul": OpSchema(2, {"input_zps": "ints", "transpose_b": "int", "multiplier": "int", "shift": "int",
                           "output_zp": "int", **_CLAMP}),
    "add": OpSchema(2, {"input_zps": "ints", "left_shift": "int", "multipliers": "ints", "shifts": "ints",
                        "output_zp": "int", **_CLAMP}),
    "requantize": OpSchema(1, {"multiplier": "int", "shift": "int", **_REQUANT}),
    "avgpool": OpSchema(1, {**_WINDOW, "count_include_pad": "int", "pad_value": "int", **_CLAMP}),
    "maxpool": OpSchema(1, {**_WINDOW, "dilation": "ints"}),
    "concat": OpSchema(None, {"axis": "int"}),
    "reshape": OpSchema(1, {"shape": "ints"}),
    "transpose": OpSchema(1, {"perm": "ints"}),
    "clamp": OpSchema(1, dict(_CLAMP)),
    # ---- transformer ops (docs/transformer-ops.md states each one's exact integer definition) ----
    "constant": OpSchema(0, {}, {"value": ("int8", "int16", "int32")}),
    "slice": OpSchema(1, {"axis": "int", "start": "int", "stop": "int"}),
    "embedding": OpSchema(1, {}, {"weight": ("int8", "int16")}),
    "mask_keys": OpSchema(2, {}),
    "mean_pool": OpSchema(2, {"input_zp": "int", "output_zp": "int"}),
    "shiftmax": OpSchema(1, {"x0": "int", "n": "int", "q_max": "int", "norm_bits": "int", "masked": "int"}),
    "iexp_softmax": OpSchema(1, {**_IEXP, "norm_bits": "int", "masked": "int"}),
    "log2_softmax": OpSchema(1, {**_IEXP, "masked": "int", "code_bits": "int"}),
    "shift_matmul": OpSchema(2, {"input_zp": "int", "code_bits": "int", "multiplier": "int", "shift": "int",
                                 "output_zp": "int", **_CLAMP}),
    "shiftgelu": OpSchema(1, {"x0": "int", "n": "int", "q_max": "int", "norm_bits": "int", "sig_bits": "int",
                              **_REQUANT1}),
    "igelu": OpSchema(1, {"b_int": "int", "c_int": "int", "erf_shift": "int", "one_int": "int", **_REQUANT1}),
    "layernorm": OpSchema(1, {"norm_shift": "int", "output_zp": "int", **_CLAMP},
                          {"weight": ("int16",), "bias": ("int32",), "multiplier": ("int32",), "shift": ("int32",)}),
}
SOFTMAX_OPS = ("shiftmax", "iexp_softmax")  # linear probabilities, scale 2^-(bits-1), row sum < 2^(bits-1)


def _window_out(size: int, k: int, s: int, p0: int, p1: int, d: int = 1) -> int:
    return (size + p0 + p1 - d * (k - 1) - 1) // s + 1


def _rank(shape, rank: int, what: str) -> tuple:
    if len(shape) != rank or any(d < 1 for d in shape):
        raise ValueError(f"{what} has shape {tuple(shape)}, expected {rank} dimensions of at least 1")
    return tuple(shape)


def infer_shape(op: str, attrs: dict, in_shapes: list[tuple], params: dict) -> tuple:
    """Output shape of ``op`` for the given input shapes; raises ValueError on inconsistency."""
    if op == "constant":
        out = tuple(params["value"])
    elif op == "slice":
        (shape,) = in_shapes
        axis, start, stop = attrs["axis"], attrs["start"], attrs["stop"]
        if not (0 <= axis < len(shape) and 0 <= start < stop <= shape[axis]):
            raise ValueError(f"slice axis={axis} [{start}:{stop}] does not fit shape {tuple(shape)}")
        out = tuple(stop - start if i == axis else d for i, d in enumerate(shape))
    elif op == "embedding":
        (ids,) = in_shapes
        _rank(params["weight"], 2, "embedding weight")
        out = tuple(ids) + (params["weight"][1],)
    elif op == "mask_keys":
        scores, mask = (tuple(s) for s in in_shapes)
        if len(mask) != 1 or scores[-1] != mask[0]:
            raise ValueError(f"mask {mask} does not match the key axis of scores {scores}")
        out = scores
    elif op == "mean_pool":
        x, mask = (tuple(s) for s in in_shapes)
        if len(x) < 2 or mask != (x[-2],):
            raise ValueError(f"mean_pool mask {mask} does not match the token axis of {x}")
        out = x[:-2] + x[-1:]
    elif op in ("shiftmax", "iexp_softmax", "log2_softmax", "shiftgelu", "igelu"):
        out = tuple(in_shapes[0])
    elif op == "layernorm":
        out = tuple(in_shapes[0])
        if params["weight"] != (out[-1],) or out[-1] < 1:
            raise ValueError(f"layernorm weight {params['weight']} does not fit {out[-1]} channels")
    elif op == "shift_matmul":
        a, b = (tuple(s) for s in in_shapes)
        if len(a) < 2 or len(a) != len(b) or a[:-2] != b[:-2] or a[-1] != b[-2]:
            raise ValueError(f"shift_matmul operands {a} and {b} do not chain")
        out = a[:-1] + b[-1:]
    elif op in ("quantize", "dequantize", "transpose"):
        (shape,) = in_shapes
        perm = attrs["perm"] or list(range(len(shape)))
        if sorted(perm) != list(range(len(shape))):
            raise ValueError(f"perm {perm} does not permute a rank-{len(shape)} tensor")
        return tuple(shape[p] for p in perm)
    elif op == "conv2d":
        h, w, c = _rank(in_shapes[0], 3, "conv2d input (H, W, C)")
        oc, kh, kw, icg = _rank(params["weight"], 4, "conv2d weight (OC, KH, KW, IC/groups)")
        g = attrs["groups"]
        sh, sw = attrs["stride"]
        pt, pl, pb, pr = attrs["padding"]
        dh, dw = attrs["dilation"]
        if g < 1 or c % g or oc % g or icg != c // g:
            raise ValueError(f"weight {params['weight']} and groups={g} do not fit {c} input channels")
        out = (_window_out(h, kh, sh, pt, pb, dh), _window_out(w, kw, sw, pl, pr, dw), oc)
    elif op == "dense":
        (x,) = in_shapes
        n, wk = _rank(params["weight"], 2, "dense weight (N, K)")
        if wk != x[-1]:
            raise ValueError(f"weight {params['weight']} does not fit input of {x[-1]} features")
        out = tuple(x[:-1]) + (n,)
    elif op == "matmul":
        a, b = (tuple(s) for s in in_shapes)
        if len(a) < 2 or len(a) != len(b) or a[:-2] != b[:-2]:
            raise ValueError(f"matmul operands {a} and {b} need equal rank >= 2 and equal leading dimensions")
        k_b, n = (b[-1], b[-2]) if attrs["transpose_b"] else (b[-2], b[-1])
        if a[-1] != k_b:
            raise ValueError(f"matmul inner dimensions differ: {a} x {b} (transpose_b={attrs['transpose_b']})")
        out = a[:-1] + (n,)
    elif op in ("add",):
        a, b = in_shapes
        if tuple(a) != tuple(b):
            raise ValueError(f"add inputs differ in shape: {a} vs {b}")
        out = tuple(a)
    elif op in ("requantize", "clamp"):
        out = tuple(in_shapes[0])
    elif op in ("avgpool", "maxpool"):
        h, w, c = _rank(in_shapes[0], 3, f"{op} input (H, W, C)")
        kh, kw = attrs["kernel"]
        sh, sw = attrs["stride"]
        pt, pl, pb, pr = attrs["padding"]
        dh, dw = attrs.get("dilation", [1, 1])
        span_h, span_w = dh * (kh - 1) + 1, dw * (kw - 1) + 1
        if max(pt, pb) >= span_h or max(pl, pr) >= span_w:
            raise ValueError(f"padding {attrs['padding']} must be below the window ({span_h}x{span_w}): a window "
                             "entirely in the padding has no input to pool")
        out = (_window_out(h, kh, sh, pt, pb, dh), _window_out(w, kw, sw, pl, pr, dw), c)
    elif op == "concat":
        axis = attrs["axis"]
        first = in_shapes[0]
        if not 0 <= axis < len(first):
            raise ValueError(f"concat axis {axis} is outside the inputs' rank {len(first)}")
        for s in in_shapes[1:]:
            if len(s) != len(first) or any(x != y for i, (x, y) in enumerate(zip(s, first)) if i != axis):
                raise ValueError(f"concat inputs {in_shapes} differ outside axis {axis}")
        out = tuple(sum(s[axis] for s in in_shapes) if i == axis else d for i, d in enumerate(first))
    elif op == "reshape":
        out = tuple(attrs["shape"])
        n_in = 1
        for d in in_shapes[0]:
            n_in *= d
        n_out = 1
        for d in out:
            n_out *= d
        if n_in != n_out:
            raise ValueError(f"reshape {in_shapes[0]} -> {out} changes the element count")
    else:
        raise ValueError(f"unknown op {op!r}")
    if any(d < 1 for d in out):
        raise ValueError(f"output shape {out} has an empty dimension")
    return out


INT32_RANGE = (-2**31, 2**31 - 1)
MAX_RANK = 8
# Ranges shared by every op that has the attribute. An int: (lowest, highest). A list of ints: (length or None,
# lowest, highest). Every other int attribute, and every element of every other list, lies in int32. The
# transformer ops' constants (x0 < 0 divides by x0, and so on; docs/transformer-ops.md) are ranged here too, so
# nothing unbounded reaches the overflow proofs of quantize/bounds.py.
ATTR_LIMITS = {
    "x0": (-(2**31 - 1), -1), "n": (0, 31), "q_max": (0, 62), "norm_bits": (31, 62), "sig_bits": (1, 30),
    "code_bits": (1, 6), "erf_shift": (0, 31), "masked": (0, 1),
    "stride": (2, 1, 2**16), "dilation": (2, 1, 2**16), "kernel": (2, 1, 2**16), "padding": (4, 0, 2**16),
    "groups": (1, 2**16), "count_include_pad": (0, 1), "transpose_b": (0, 1),
    "multiplier": (0, 2**31 - 1), "shift": (1, 62),            # a dyadic requant b / 2^c (hwsim/numerics.py)
    "multipliers": (3, 0, 2**31 - 1), "shifts": (3, 1, 62),    # add: input a, input b, output
    "left_shift": (0, 30), "norm_shift": (0, 31), "axis": (0, MAX_RANK - 1),
    "input_zps": (2, *INT32_RANGE), "perm": (None, 0, MAX_RANK - 1), "shape": (None, 1, INT32_RANGE[1]),
}


def check_attrs(op: str, attrs: dict, where: str) -> None:
    """Raise ModelFileError unless ``attrs`` has exactly the schema's attributes, each of the right kind and
    inside its range (:data:`ATTR_LIMITS`; int32 for the rest). Ranges that depend on tensors (zero points,
    clamps, axes against a rank) are checked by :meth:`quantize.ir.IntModel.validate`."""
    schema = OPS.get(op)
    if schema is None:
        raise ModelFileError(f"{where}: unknown op {op!r} (known: {', '.join(sorted(OPS))})")
    missing = set(schema.attrs) - set(attrs)
    extra = set(attrs) - set(schema.attrs)
    if missing or extra:
        raise ModelFileError(f"{where}: op {op!r} attributes missing {sorted(missing)} / unexpected {sorted(extra)}")
    for key, kind in schema.attrs.items():
        value = attrs[key]
        ok = (isinstance(value, int) and not isinstance(value, bool)) if kind == "int" else \
            (isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in value))
        if not ok:
            raise ModelFileError(f"{where}: attribute {key!r} must be {kind}, got {value!r}")
        if kind == "int":
            lo, hi = ATTR_LIMITS.get(key, INT32_RANGE)
            if not lo <= value <= hi:
                raise ModelFileError(f"{where}: {key}={value} outside [{lo}, {hi}]")
        else:
            length, lo, hi = ATTR_LIMITS.get(key, (None, *INT32_RANGE))
            if (length is not None and len(value) != length) or len(value) > MAX_RANK or \
                    not all(lo <= v <= hi for v in value):
                count = f"{length} integers" if length is not None else f"at most {MAX_RANK} integers"
                raise ModelFileError(f"{where}: {key}={_short(value)} must be {count} in [{lo}, {hi}]")


def _short(values: list) -> str:
    return repr(values) if len(values) <= 8 else f"[{', '.join(map(str, values[:8]))}, ...] ({len(values)} values)"
