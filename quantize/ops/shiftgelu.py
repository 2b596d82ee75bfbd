"""shiftgelu (I-ViT ShiftGELU): ``GELU(x) ~ x * sigmoid(1.702 x)``, 1.702 x by shifts (1.6875 x), the sigmoid
from two shift-exps and one division into ``sig_bits`` bits, then one per-tensor requant and the clamp."""

from ..bounds import Bound, shift_exp_max, span
from ._attrs import Attr, SHIFT_COUNT, NORM_BITS, Q_MAX, REQUANT1, X0
from ._opdef import OpDef
from ._shapes import same_as_input


def bounds(model, node, producers=None):
    a = node.attrs
    x_span = span(model, node.inputs[0])
    return [Bound(f"sigmoid sum e1 + e2 (n={a['n']})", 2 * (shift_exp_max(a["x0"]) << a["n"])),
            Bound("exp range clip q_max*x0", abs(a["q_max"] * a["x0"])),
            Bound("1.6875*x by shifts", x_span * 2),
            Bound(f"x * sigmoid ({a['sig_bits']}-bit sigmoid)", x_span * ((1 << a["sig_bits"]) - 1))]


def relations(attrs):
    if attrs["sig_bits"] >= attrs["norm_bits"]:
        return [f"sig_bits={attrs['sig_bits']} must be below norm_bits={attrs['norm_bits']}"]
    return []


OP = OpDef(name="shiftgelu", summary="integer GELU by shifts (I-ViT ShiftGELU)",
           definition="docs/transformer-ops.md#shiftgelu-i-vit-shiftgelu-gelux--x--sigmoid1702-x", n_inputs=1,
           attrs={"x0": X0, "n": SHIFT_COUNT, "q_max": Q_MAX, "norm_bits": NORM_BITS, "sig_bits": Attr("int", 1, 30),
                  **REQUANT1},
           shape=same_as_input, bounds=bounds, relations=relations, elementwise=True)
