from .shiftmax import softmax_call


def calls(model, node):
    a = node.attrs
    return softmax_call(model, node, {k: a[k] for k in ("x0", "n", "b_int", "c_int")}, {"code_bits": a["code_bits"]})
