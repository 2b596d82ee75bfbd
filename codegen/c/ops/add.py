import math

from ..calls import KernelCall, ints, tensor


def calls(model, node, sign: int = 1):
    """The add kernel; ``sign = -1`` makes it TFLite's SUB (codegen/c/ops/sub.py)."""
    a = node.attrs
    xa, xb, y = (model.tensors[t] for t in (*node.inputs, node.outputs[0]))
    (zpa, zpb), (ma, mb, mo), (ca, cb, co) = a["input_zps"], a["multipliers"], a["shifts"]
    args = [tensor("xa", "in", model, xa.name), tensor("xb", "in", model, xb.name),
            *ints(n=math.prod(y.shape), sign=sign, zpa=zpa, zpb=zpb, left=a["left_shift"], ma=ma, ca=ca, mb=mb, cb=cb,
                  mo=mo, co=co, out_zp=a["output_zp"], act_min=a["act_min"], act_max=a["act_max"]),
            tensor("y", "out", model, y.name)]
    return [KernelCall("add", (xa.dtype, xb.dtype, y.dtype), tuple(args))]
