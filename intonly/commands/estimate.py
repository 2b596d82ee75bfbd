"""``intonly estimate MODEL``: the cost model (hwsim/cost.py) of an .intonly file, or of a float model quantized
first, on one or more targets. It shows a totals table and (``--layers``) per-layer tables, and writes
``estimate.json`` and a plot (``estimate.png`` and ``estimate.html``: per-layer latency and energy of every target,
log scale).

Model, node and target names come from user files: the tables show them as literal :class:`rich.text.Text`
(no markup or emoji codes; non-printable characters as escapes), the plot draws every text holding a name
without mathtext or TeX (a ``$`` is a dollar sign), and the HTML page escapes them. The plot's size is
bounded for any layer count.
"""

from __future__ import annotations

import argparse
import base64
import html
import json
from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

from intonly import api
from intonly.display import literal, print_table, text
from intonly.hwsim.cost import Estimate
from intonly.output import check_out, default_out, output_folder
from intonly.quantize.errors import ConfigError
from intonly.imported import load_int_model
from intonly.targets import list_targets, load_target

from ._options import is_workload_spec, model_input

ORDER = 40

# The plot: PLOT_INCH_PER_LAYER of width per layer up to PLOT_MAX_WIDTH_IN; at most PLOT_MAX_TICK_LABELS
# layers are named on the x axis (every k-th layer beyond that); markers on every point only up to
# PLOT_MARKER_MAX_LAYERS layers.
PLOT_INCH_PER_LAYER = 0.25
PLOT_MAX_WIDTH_IN = 40.0
PLOT_HEIGHT_IN = 9.0
PLOT_DPI = 110
PLOT_MAX_TICK_LABELS = 150
PLOT_MARKER_MAX_LAYERS = 200


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("estimate", help="per-layer latency, energy, peak RAM and flash on one or more targets")
    p.add_argument("model", help="an .intonly file, or a float model to quantize first: a bundled demo (digits, "
                                 "vit, minilm) or FILE.py:NAME with --data")
    p.add_argument("--data", help="for FILE.py:NAME models: .npz as for intonly run")
    p.add_argument("--target", help="comma-separated targets, NAME or NAME@480MHz (default: every target)")
    p.add_argument("--target-dir", action="append", default=[], help="a directory of third-party target files")
    p.add_argument("--batch", type=int, default=1, help="samples per inference (default 1)")
    p.add_argument("--layers", action="store_true", help="also print the per-layer table of every target")
    p.add_argument("--out", help="folder for estimate.json/.png/.html (default out/estimate/<model>)")
    return p


def run(args, console: Console) -> int:
    estimate_job(args, console)
    return 0


def estimate_job(args, console: Console) -> list:
    """``intonly estimate``: the cost model of an .intonly file (or a float model, quantized first) on targets."""
    inputs = [model_input(args.model), args.data, *args.target_dir]
    if args.out:
        check_out(Path(args.out), inputs)
    targets = [load_target(t.strip(), args.target_dir) for t in args.target.split(",")] if args.target else \
        list_targets(args.target_dir)
    work = None
    if is_workload_spec(args.model):
        from intonly.workloads import load_workload

        work = load_workload(args.model, args.data)
        name = work.name
    else:
        if args.data:
            raise ConfigError(f"--data is for float models (a demo or FILE.py:NAME); {args.model!r} is an "
                              "imported or .intonly model, which needs no data for an estimate")
        int_model = load_int_model(args.model)
        name = int_model.name
    out = Path(args.out) if args.out else default_out("estimate", name)
    with output_folder(out, inputs, "intonly estimate") as stage:
        if work is not None:
            with console.status(text(f"quantizing {work.name}")):
                int_model = api.quantize(work.model, work.calib, work.config, name=work.name)
        estimates = api.estimate(int_model, targets, batch=args.batch)
        write_json(int_model.name, estimates, stage / "estimate.json")
        plot(int_model.name, estimates, stage / "estimate.png", stage / "estimate.html")
    console.print(totals_table(int_model.name, estimates))
    if args.layers:
        for e in estimates:
            print_layers(e, console)
    console.print(text(f"wrote {out}/estimate.json, estimate.png, estimate.html"))
    return estimates

def _kib(n: int) -> str:
    return f"{n / 1024:,.1f} KiB"


def totals_table(model_name: str, estimates: list[Estimate]) -> Table:
    table = Table(title=text(f"intonly estimate: {model_name} (batch {estimates[0].batch})"))
    for col in ("target", "MHz", "latency ms", "energy µJ", "compute/memory-bound layers", "peak RAM", "flash", "fits"):
        table.add_column(col, justify="left" if col in ("target", "fits") else "right")
    for e in estimates:
        bound = sum(layer.bound == "compute" for layer in e.layers if layer.cycles)
        fits = Text("yes") if e.fits else Text.assemble(("no", "red"), ": " + literal("; ".join(e.notes)))
        table.add_row(text(e.target), f"{e.clock_mhz:g}", f"{e.latency_ms:.4g}", f"{e.energy_uj:.4g}",
                      f"{bound}/{sum(1 for layer in e.layers if layer.cycles) - bound}", _kib(e.peak_ram_bytes),
                      _kib(e.flash_bytes), fits)
    return table


LAYER_COLUMNS = (("node", "left"), ("op", "left"), ("compute cyc", "right"), ("memory cyc", "right"),
                 ("overhead cyc", "right"), ("bound", "left"), ("latency ms", "right"), ("energy µJ", "right"))


def print_layers(e: Estimate, console: Console) -> None:
    """Every layer of one target's estimate (``--layers``): a rich table, plain aligned text for large graphs."""

    def row(i: int) -> list[str]:
        layer = e.layers[i]
        return [layer.node, layer.op, f"{layer.compute_cycles:,.0f}", f"{layer.memory_cycles:,.0f}",
                f"{layer.overhead_cycles:,.0f}", layer.bound, f"{layer.latency_ms:.4g}", f"{layer.energy_uj:.4g}"]

    print_table(console, f"per layer on {e.target}", LAYER_COLUMNS, len(e.layers), row, "layer", all_rows=True)


def write_json(model_name: str, estimates: list[Estimate], path: Path) -> None:
    """``estimate.json``, encoded straight into the file (a large graph's text is never held in memory)."""
    with open(path, "w") as f:
        json.dump({"model": model_name, "estimates": [e.as_dict() for e in estimates]}, f, indent=1)


def plot(model_name: str, estimates: list[Estimate], png: Path, page: Path) -> None:
    """Per-layer latency (top) and energy (bottom) of every target on a log axis, as a PNG and an HTML page
    that embeds the PNG beside the totals table."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with matplotlib.rc_context({"text.usetex": False}):  # TeX would interpret names; mathtext is off per text
        _draw(model_name, estimates, png, plt)
    rows = "".join(
        f"<tr><td>{html.escape(e.target)}</td><td>{e.clock_mhz:g}</td><td>{e.latency_ms:.4g}</td>"
        f"<td>{e.energy_uj:.4g}</td><td>{e.peak_ram_bytes:,}</td><td>{e.flash_bytes:,}</td>"
        f"<td>{'yes' if e.fits else html.escape('no: ' + '; '.join(e.notes))}</td></tr>" for e in estimates)
    image = base64.b64encode(png.read_bytes()).decode()
    page.write_text(
        f"<!doctype html><meta charset='utf-8'><title>intonly estimate: {html.escape(model_name)}</title>"
        "<style>body{font-family:sans-serif}td,th{padding:2px 8px;text-align:right}</style>"
        f"<h1>intonly estimate: {html.escape(model_name)}</h1>"
        "<table><tr><th>target</th><th>MHz</th><th>latency ms</th><th>energy µJ</th><th>peak RAM bytes</th>"
        f"<th>flash bytes</th><th>fits</th></tr>{rows}</table>"
        f"<p>Rules and sources: docs/cost-model.md; every target number's source: <code>intonly targets show"
        f" NAME</code>.</p><img alt='per-layer latency and energy' src='data:image/png;base64,{image}'>")


def plot_layout(n_layers: int) -> tuple[float, list[int]]:
    """(figure width in inches, the layer indices named on the x axis): 0.25 inch per layer up to
    :data:`PLOT_MAX_WIDTH_IN`, every layer named up to :data:`PLOT_MAX_TICK_LABELS` layers, else every k-th."""
    width = min(max(8.0, PLOT_INCH_PER_LAYER * n_layers + 4), PLOT_MAX_WIDTH_IN)
    step = max(1, -(-n_layers // PLOT_MAX_TICK_LABELS))
    return width, list(range(0, n_layers, step))


def _short(label: str, limit: int = 60) -> str:
    """A tick label of at most ``limit`` characters (longer names end in "…")."""
    return label if len(label) <= limit else label[:limit - 1] + "…"


def _draw(model_name: str, estimates: list[Estimate], png: Path, plt) -> None:
    layers = [layer.node for layer in estimates[0].layers if layer.op != "constant"]
    width, ticks = plot_layout(len(layers))
    fig, axes = plt.subplots(2, 1, figsize=(width, PLOT_HEIGHT_IN), sharex=True)
    try:
        colors = plt.get_cmap("tab20").colors
        markers = len(layers) <= PLOT_MARKER_MAX_LAYERS
        handles = []
        for i, e in enumerate(estimates):
            rows = [layer for layer in e.layers if layer.op != "constant"]
            cycle = (i // len(colors)) % 4  # past 20 targets: another marker, or line style without markers
            style = {"color": colors[i % len(colors)], "linewidth": 1, "marker": ".o^s"[cycle] if markers else None,
                     "linestyle": "-" if markers else ("-", "--", ":", "-.")[cycle]}
            handles += axes[0].plot(range(len(rows)), [r.latency_ms for r in rows], **style)
            axes[1].plot(range(len(rows)), [r.energy_uj for r in rows], **style)
        for ax, label in zip(axes, ("latency per layer (ms)", "energy per layer (µJ)")):
            ax.set_yscale("log")
            ax.set_ylabel(label)
            ax.grid(True, which="major", alpha=0.3)
        # every text holding a name is drawn literally (parse_math=False); the log axes keep their mathtext labels
        axes[1].set_xticks(ticks, [_short(literal(layers[k])) for k in ticks], rotation=90, fontsize=6,
                           parse_math=False)
        if len(ticks) < len(layers):
            axes[1].set_xlabel(f"layer (one in {ticks[1] - ticks[0]} named)")
        # explicit labels: a target named "_x" is listed too (matplotlib hides labels starting with "_")
        legend = axes[0].legend(handles, [literal(e.target) for e in estimates], fontsize=7, ncol=2,
                                loc="upper left", bbox_to_anchor=(1.0, 1.0))
        for label in legend.get_texts():
            label.set_parse_math(False)
        axes[0].set_title(literal(f"{model_name}: estimated per-layer latency and energy (batch {estimates[0].batch})"),
                          parse_math=False)
        fig.tight_layout()
        fig.savefig(png, dpi=PLOT_DPI)
    finally:
        plt.close(fig)
