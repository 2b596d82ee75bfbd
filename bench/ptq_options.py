"""What each post-training quantization option does to a real pretrained CNN: EfficientNet-Lite0 (its packages'
ImageNet weights, as shipped) on the ``intonly run --model efficientnet-lite0`` data (scikit-image photo crops).

    python -m bench.ptq_options [--out bench/results/ptq_options.json] [--n-eval 256] [--only NAME ...]

Per config: FP32/INT top-1 agreement, top-5 overlap and logit SQNR on ``--n-eval`` crops (hwsim, bit-accurate),
the five layers with the lowest output SQNR (``intonly.api.compare`` on the first 32 crops), the bytes of the
integer weights and how many tensors are wider than 8 bits. The table in docs/ptq.md comes from this script.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent

CONFIGS = {  # name -> QuantConfig overrides
    "int8, no bias correction": {"bias_correction": False},
    "int8 (library default: bias correction)": {},
    "int8, percentile observer": {"observer": "percentile"},
    "int8, mse observer": {"observer": "mse"},
    "int8, wide weights": {"wide_weights": True},
    "int8, cross-layer equalization": {"equalize": True},
    "act 16": {"act_bits": 16},
    "act 16, wide weights": {"act_bits": 16, "wide_weights": True},
    "act 10, wide weights": {"act_bits": 10, "wide_weights": True},
    "act 12, wide weights, no bias correction": {"act_bits": 12, "wide_weights": True, "bias_correction": False},
    "act 12, wide weights (efficientnet-lite0 demo default)": {"act_bits": 12, "wide_weights": True},
    "act 12, wide weights, cross-layer equalization": {"act_bits": 12, "wide_weights": True, "equalize": True},
}


def measure(wl, fp_logits: np.ndarray, overrides: dict) -> dict:
    from intonly.api import compare, quantize, simulate
    from intonly.quantize.config import QuantConfig
    from intonly.workloads import logit_fidelity

    cfg = dataclasses.replace(QuantConfig(), **overrides)
    t0 = time.perf_counter()
    int_model = quantize(wl.model, wl.calib, cfg)
    quantize_s = time.perf_counter() - t0
    q = simulate(int_model, wl.x, batch_size=32).outputs[0]
    layers = sorted(compare(wl.model, int_model, [wl.x[0][:32]], batch_size=16), key=lambda r: r.sqnr_db)
    weights = [int_model.param(n, "weight") for n in int_model.nodes if "weight" in n.params]
    return {"config": overrides, "fp_int_top1_agreement": float(np.mean(fp_logits.argmax(1) == q.argmax(1))),
            **logit_fidelity(fp_logits, q),
            "worst_layers": [{"layer": r.node, "bits": r.bits, "sqnr_db": round(r.sqnr_db, 2)} for r in layers[:5]],
            "weight_bytes": int(sum(w.nbytes for w in weights)),
            "int16_weight_layers": sum(w.dtype == np.int16 for w in weights), "weighted_layers": len(weights),
            "tensors_wider_than_8_bits": sum(1 for t in int_model.tensors.values()
                                             if t.dtype != "float32" and t.bits > 8),
            "quantize_s": round(quantize_s, 1)}


def markdown(rows: dict) -> str:
    lines = ["| config | top-1 agreement | top-5 overlap | logit SQNR (dB) | weight bytes | worst 5 layers (output "
             "SQNR dB) |", "|---|---|---|---|---|---|"]
    for name, r in rows.items():
        worst = ", ".join(f"{w['layer']} {w['sqnr_db']:.1f}" for w in r["worst_layers"])
        lines.append(f"| {name} | {100 * r['fp_int_top1_agreement']:.1f} % | {100 * r['top5_overlap']:.1f} % | "
                     f"{r['logit_sqnr_db']:.1f} | {r['weight_bytes']:,} | {worst} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    import torch

    from intonly.workloads import efficientnet_workload

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=str(HERE / "results" / "ptq_options.json"))
    p.add_argument("--n-eval", type=int, default=256)
    p.add_argument("--n-calib", type=int, default=128)
    p.add_argument("--only", action="append", help="a config name (repeat for several; default: all)")
    args = p.parse_args(argv)
    names = args.only or list(CONFIGS)
    unknown = [n for n in names if n not in CONFIGS]
    if unknown:
        raise SystemExit(f"unknown config(s) {unknown}; known: {list(CONFIGS)}")
    wl = efficientnet_workload(n_eval=args.n_eval, n_calib=args.n_calib)
    with torch.no_grad():
        fp_logits = np.concatenate([wl.model(torch.from_numpy(wl.x[0][i:i + 32])).numpy()
                                    for i in range(0, len(wl.x[0]), 32)])
    rows = {}
    for name in names:
        rows[name] = measure(wl, fp_logits, CONFIGS[name])
        print(f"{name}: agreement {rows[name]['fp_int_top1_agreement']:.3f}, "
              f"SQNR {rows[name]['logit_sqnr_db']:.2f} dB", flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"model": "efficientnet_lite0", "n_eval": args.n_eval, "n_calib": args.n_calib,
                               "rows": rows}, indent=2) + "\n")
    print(markdown(rows))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
