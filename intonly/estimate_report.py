"""What ``intonly estimate`` shows and writes: a totals table, per-layer tables, ``estimate.json`` and a plot
(``estimate.png`` and ``estimate.html``: per-layer latency and energy of every target, log scale)."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

from rich.table import Table

from hwsim.cost import Estimate


def _kib(n: int) -> str:
    return f"{n / 1024:,.1f} KiB"


def totals_table(model_name: str, estimates: list[Estimate]) -> Table:
    table = Table(title=f"intonly estimate: {model_name} (batch {estimates[0].batch})")
    for col in ("target", "MHz", "latency ms", "energy µJ", "compute/memory-bound layers", "peak RAM", "flash", "fits"):
        table.add_column(col, justify="left" if col in ("target", "fits") else "right")
    for e in estimates:
        bound = sum(layer.bound == "compute" for layer in e.layers if layer.cycles)
        table.add_row(e.target, f"{e.clock_mhz:g}", f"{e.latency_ms:.4g}", f"{e.energy_uj:.4g}",
                      f"{bound}/{sum(1 for layer in e.layers if layer.cycles) - bound}", _kib(e.peak_ram_bytes),
                      _kib(e.flash_bytes), "yes" if e.fits else "[red]no[/]: " + "; ".join(e.notes))
    return table


def layers_table(e: Estimate) -> Table:
    table = Table(title=f"per layer on {e.target}")
    for col in ("node", "op", "compute cyc", "memory cyc", "overhead cyc", "bound", "latency ms", "energy µJ"):
        table.add_column(col, justify="left" if col in ("node", "op", "bound") else "right")
    for layer in e.layers:
        table.add_row(layer.node, layer.op, f"{layer.compute_cycles:,.0f}", f"{layer.memory_cycles:,.0f}",
                      f"{layer.overhead_cycles:,.0f}", layer.bound, f"{layer.latency_ms:.4g}", f"{layer.energy_uj:.4g}")
    return table


def write_json(model_name: str, estimates: list[Estimate], path: Path) -> None:
    path.write_text(json.dumps({"model": model_name, "estimates": [e.as_dict() for e in estimates]}, indent=1))


def plot(model_name: str, estimates: list[Estimate], png: Path, page: Path) -> None:
    """Per-layer latency (top) and energy (bottom) of every target on a log axis, as a PNG and an HTML page
    that embeds the PNG beside the totals table."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    layers = [layer.node for layer in estimates[0].layers if layer.op != "constant"]
    fig, axes = plt.subplots(2, 1, figsize=(max(8, 0.25 * len(layers) + 4), 9), sharex=True)
    colors = plt.get_cmap("tab20").colors
    for i, e in enumerate(estimates):
        rows = [layer for layer in e.layers if layer.op != "constant"]
        style = {"color": colors[i % len(colors)], "marker": ".o^s"[(i // len(colors)) % 4], "linewidth": 1,
                 "label": e.target}
        axes[0].plot(range(len(rows)), [r.latency_ms for r in rows], **style)
        axes[1].plot(range(len(rows)), [r.energy_uj for r in rows], **style)
    for ax, label in zip(axes, ("latency per layer (ms)", "energy per layer (µJ)")):
        ax.set_yscale("log")
        ax.set_ylabel(label)
        ax.grid(True, which="major", alpha=0.3)
    axes[1].set_xticks(range(len(layers)), layers, rotation=90, fontsize=6)
    axes[0].legend(fontsize=7, ncol=2, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    axes[0].set_title(f"{model_name}: estimated per-layer latency and energy (batch {estimates[0].batch})")
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)
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
