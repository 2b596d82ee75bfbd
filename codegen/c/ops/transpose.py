from intonly.quantize.errors import UnsupportedOpError

from ..calls import KernelCall, ints, tensor

MAX_RANK = 4


def calls(model, node):
    """Any rank up to 4: the shape is padded with leading 1s to rank 4 and the permutation shifted to match."""
    x, y = model.tensors[node.inputs[0]], model.tensors[node.outputs[0]]
    rank = len(x.shape)
    if rank > MAX_RANK:
        raise UnsupportedOpError([(node.name, f"transpose of a rank-{rank} tensor (C kernel: rank <= {MAX_RANK})")])
    pad = MAX_RANK - rank
    dims = (1,) * pad + tuple(x.shape)
    perm = list(range(pad)) + [p + pad for p in (node.attrs["perm"] or range(rank))]
    args = [tensor("x", "in", model, x.name), *ints(**{f"d{i}": d for i, d in enumerate(dims)}),
            *ints(**{f"p{i}": p for i, p in enumerate(perm)}), tensor("y", "out", model, y.name)]
    return [KernelCall("transpose", (x.dtype,), tuple(args))]
