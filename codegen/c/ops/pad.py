from ..calls import KernelCall, ints, tensor

RANK = 4


def calls(model, node):
    """Any rank up to 4: shapes padded with leading 1s (and zero pads) to rank 4."""
    x, y = model.tensors[node.inputs[0]], model.tensors[node.outputs[0]]
    lead = RANK - len(x.shape)
    dims = (1,) * lead + tuple(x.shape)
    pads = [0] * (2 * lead) + list(node.attrs["pads"])
    args = [tensor("x", "in", model, x.name), *ints(**{f"d{i}": d for i, d in enumerate(dims)}),
            *ints(**{f"b{i}": pads[2 * i] for i in range(RANK)}), *ints(**{f"a{i}": pads[2 * i + 1]
                                                                             for i in range(RANK)}),
            *ints(value=node.attrs["value"]), tensor("y", "out", model, y.name)]
    return [KernelCall("pad", (x.dtype,), tuple(args))]
