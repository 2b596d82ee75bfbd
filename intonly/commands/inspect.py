"""``intonly inspect FILE [--all]``: prints an .intonly model's node table with totals, every overflow bound, and
the tensors wider than 8 bits.

Large graphs: a table shows at most ``head`` + ``tail`` rows (the first and the last) and one "… N more" row
in place of the rest, unless ``all_rows``; totals always cover every node. A table of more than
:data:`intonly.display.RICH_TABLE_MAX_ROWS` rows is printed as plain aligned text instead of a rich table
(whose layout costs about a millisecond a row).

Every name in a model file (model, node, tensor, constant names, the file path) is shown literally: cells are
:class:`rich.text.Text` (no markup, no emoji codes), and characters that are not printable (escape sequences,
newlines) are shown as Python escapes (:func:`literal`).
"""

from __future__ import annotations

import argparse
import math

import numpy as np
from rich.console import Console
from rich.text import Text

from intonly.display import HEAD_ROWS, TAIL_ROWS, literal, print_table, shown_indices
from intonly.quantize.bounds import node_bounds, producer_map
from intonly.imported import load_int_model
from intonly.quantize.ir import IntModel

ORDER = 20


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("inspect", help="print the graph of an .intonly model (or of a .tflite/.onnx file as "
                                          "imported): nodes, dtypes, bits, params, MACs")
    p.add_argument("file")
    p.add_argument("--all", action="store_true", help="list every node, bound and wide tensor (default: the first "
                                                      "and last 100 of each)")
    return p


def run(args, console: Console) -> int:
    print_report(load_int_model(args.file), console, args.file, all_rows=args.all)
    return 0


NODE_COLUMNS = (("#", "right"), ("node", "left"), ("op", "left"), ("inputs", "left"), ("output", "left"),
                ("dtype", "left"), ("bits", "right"), ("shape", "left"), ("scale", "left"), ("zp", "right"),
                ("params", "right"), ("MACs", "right"))


def print_nodes(model: IntModel, console: Console, path: str | None = None, all_rows: bool = False,
                head: int = HEAD_ROWS, tail: int = TAIL_ROWS) -> int:
    """The node table (node, op, inputs, output tensor with dtype, bits, shape, scale, zero point, parameter and MAC
    counts) and the totals line over every node. Returns the number of node rows printed."""

    def row(i: int) -> list[str]:
        node = model.nodes[i]
        t = model.tensors[node.outputs[0]]
        weight = f" (w{model.param(node, 'weight').dtype.itemsize * 8}b)" if "weight" in node.params else ""
        real = t.dtype == "float32"
        return [str(i), node.name, node.op, ", ".join(node.inputs), t.name, t.dtype, "" if real else str(t.bits),
                "x".join(map(str, t.shape)), "" if real else f"{t.scale:.4g}", "" if real else str(t.zero_point),
                f"{model.parameter_count(node)}{weight}", f"{model.node_macs(node):,}"]

    where = f"{path}, " if path is not None else ""
    shown = print_table(console, f"{model.name}  ({where}rounding {model.rounding})", NODE_COLUMNS, len(model.nodes),
                        row, "node", all_rows, head, tail)
    total_params = sum(model.parameter_count(n) for n in model.nodes)
    total_macs = sum(model.node_macs(n) for n in model.nodes)
    console.print(Text(f"{len(model.nodes)} nodes, {total_params:,} parameters, {total_macs:,} MACs per sample, "
                       f"{sum(a.nbytes for a in model.constants.values()):,} bytes of constants"))
    return shown


def print_bounds(model: IntModel, console: Console, all_rows: bool = False, head: int = HEAD_ROWS,
                 tail: int = TAIL_ROWS) -> int:
    """Every overflow proof of the model (quantize/bounds.py): worst case beside the width's limit. Returns the
    number of bound rows printed."""
    producers = producer_map(model)
    bounds = [(node, b) for node in model.nodes for b in node_bounds(model, node, producers)]

    def row(i: int) -> list[str]:
        node, b = bounds[i]
        headroom = f"{math.log2(b.limit / b.value):.1f} bits" if b.value else "inf"
        return [node.name, node.op, b.what, f"{b.value:,}", f"2^{round(math.log2(b.limit + 1))}-1", headroom]

    columns = [(c, "right" if c in ("bound", "limit", "headroom") else "left")
               for c in ("node", "op", "intermediate", "bound", "limit", "headroom")]
    return print_table(console, "overflow bounds (worst case over every input the bit widths allow)", columns,
                       len(bounds), row, "bound", all_rows, head, tail)


def print_wide_tensors(model: IntModel, console: Console, all_rows: bool = False, head: int = HEAD_ROWS,
                       tail: int = TAIL_ROWS) -> int:
    """Tensors stored wider than 8 bits and their memory cost against int8 storage, then the int16 embedding
    tables. Returns the number of tensor rows printed."""
    wide = [t for t in model.tensors.values() if t.dtype in ("int16", "int32") and t.bits > 8]
    if not wide:
        console.print(Text("every activation tensor is 8-bit"))
        return 0
    counts = [math.prod(t.shape) for t in wide]
    nbytes = [c * np.dtype(t.dtype).itemsize for c, t in zip(counts, wide)]

    def row(i: int) -> list[str]:
        t = wide[i]
        return [t.name, str(t.bits), t.dtype, "x".join(map(str, t.shape)), f"{nbytes[i]:,}",
                f"{nbytes[i] - counts[i]:,}"]

    columns = [(c, "left" if c in ("tensor", "dtype", "shape") else "right")
               for c in ("tensor", "bits", "dtype", "shape", "bytes", "extra vs int8")]
    shown = print_table(console, "activation tensors wider than 8 bits (per sample)", columns, len(wide), row,
                        "tensor", all_rows, head, tail)
    console.print(Text(f"{len(wide)} tensors wider than 8 bits: {sum(nbytes) - sum(counts):,} extra bytes per sample "
                       "over int8 storage"))
    # tables chosen 16-bit by the same width rule (weights are otherwise weight_bits)
    tables = [n for n in model.nodes if n.op == "embedding" and model.param(n, "weight").dtype.itemsize > 1]
    lines = []
    for i in shown_indices(len(tables), all_rows, head, tail):
        if i is None:
            lines.append(f"… {len(tables) - head - tail:,} more int16 embedding tables (use --all to list every one)")
            continue
        table = model.param(tables[i], "weight")
        lines.append(f"embedding table {literal(tables[i].params['weight'])} is int16: {table.nbytes:,} bytes "
                     f"({table.size:,} extra over int8)")
    if lines:
        console.print(Text("\n".join(lines)), soft_wrap=True)
    return shown


def print_report(model: IntModel, console: Console, path: str | None = None, all_rows: bool = False,
                 head: int = HEAD_ROWS, tail: int = TAIL_ROWS) -> None:
    """Everything ``intonly inspect`` prints for ``model`` (loaded from ``path``)."""
    print_nodes(model, console, path, all_rows, head, tail)
    print_bounds(model, console, all_rows, head, tail)
    print_wide_tensors(model, console, all_rows, head, tail)
