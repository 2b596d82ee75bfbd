"""Integer-only accuracy of the transformer demos for every softmax / GELU family, beside FP32.

    python -m bench.transformer_accuracy [--out bench/results/transformer_accuracy.json] [--models vit,minilm]

* ``vit``: the tiny ViT on sklearn digits (540 test images): FP32 and INT top-1 accuracy per family.
* ``minilm``: all-MiniLM-L6-v2 on the bundled sentences, both folds (calibrate on one half, evaluate on the
  other, then swap): cosine between FP32 and INT mean-pooled embeddings (mean, min), nearest-neighbour agreement
  (plain, and over queries whose FP32 top1-top2 margin is >= 0.02), paraphrase retrieval, and how many
  tensors the automatic width rule made wider than 8 bits.
All runs use ``QuantConfig.transformer()`` with only the family changed.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent

FAMILIES = [("shiftmax", "shiftgelu"), ("iexp", "igelu"), ("log2", "shiftgelu"), ("shiftmax", "igelu"),
            ("iexp", "shiftgelu"), ("log2", "igelu")]


def wide_tensors(int_model) -> int:
    return sum(1 for t in int_model.tensors.values() if t.dtype != "float32" and t.bits > 8)


def run_vit() -> list[dict]:
    from intonly.hwsim import simulate
    from intonly.workloads import float_outputs, load_workload
    from intonly.quantize.lower import quantize

    work = load_workload("vit")
    fp_acc = work.score(float_outputs(work.model, work.x))
    rows = []
    for softmax, gelu in FAMILIES:
        t0 = time.perf_counter()
        int_model = quantize(work.model, work.calib, dataclasses.replace(work.config, softmax=softmax, gelu=gelu))
        sim = simulate(int_model, work.x)
        rows.append({"softmax": softmax, "gelu": gelu, "fp32_accuracy": fp_acc,
                     "int_accuracy": work.score(sim.outputs[0]),
                     "delta_points": 100 * (work.score(sim.outputs[0]) - fp_acc), "wide_tensors": wide_tensors(int_model),
                     "overflow_events": int(sum(t.overflows for t in sim.trace)), "seconds": time.perf_counter() - t0})
        print(f"vit {softmax:8s} {gelu:9s} FP32 {100 * fp_acc:.2f}%  INT {100 * rows[-1]['int_accuracy']:.2f}%  "
              f"delta {rows[-1]['delta_points']:+.2f} pt", flush=True)
    return rows


def run_minilm(families) -> list[dict]:
    from intonly.hwsim import simulate
    from intonly.workloads import float_outputs, load_workload
    from intonly.quantize.lower import quantize

    work = load_workload("minilm")
    folds = [(work.calib, work.x), (work.x, work.calib)]
    fp = [float_outputs(work.model, x) for _, x in folds]
    rows = []
    for softmax, gelu in families:
        per_fold = []
        for (calib, x), fp_out in zip(folds, fp):
            int_model = quantize(work.model, calib, dataclasses.replace(work.config, softmax=softmax, gelu=gelu))
            out = simulate(int_model, x).outputs[0]
            per_fold.append((work.extra(fp_out, out)["embedding"], wide_tensors(int_model)))
        emb = [m for m, _ in per_fold]
        n_conf = sum(m["n_confident"] for m in emb)
        row = {"softmax": softmax, "gelu": gelu, "sentences": sum(m["n"] for m in emb),
               "cos_mean": float(np.mean([m["cos_mean"] for m in emb])), "cos_min": min(m["cos_min"] for m in emb),
               "nn_agreement": float(np.mean([m["nn_agreement"] for m in emb])),
               "nn_agreement_confident": sum(m["nn_agreement_confident"] * m["n_confident"] for m in emb) / n_conf,
               "n_confident": n_conf, "wide_tensors_per_fold": [w for _, w in per_fold], "folds": emb}
        rows.append(row)
        print(f"minilm {softmax:8s} {gelu:9s} cos mean {row['cos_mean']:.4f} min {row['cos_min']:.4f}  NN "
              f"{100 * row['nn_agreement']:.1f}% (margin>=0.02: {100 * row['nn_agreement_confident']:.1f}% of "
              f"{n_conf})", flush=True)
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=str(HERE / "results" / "transformer_accuracy.json"))
    p.add_argument("--models", default="vit,minilm")
    p.add_argument("--minilm-families", type=int, default=3, help="how many of the families to run on MiniLM")
    args = p.parse_args(argv)
    wanted = set(args.models.split(","))
    report = {}
    if "vit" in wanted:
        report["vit_digits"] = run_vit()
    if "minilm" in wanted:
        report["minilm_l6"] = run_minilm(FAMILIES[:args.minilm_families])
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
