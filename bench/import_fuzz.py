"""Fuzzing the model importers: byte-mutated ``.tflite`` and ``.onnx`` files must import or fail with one
:class:`~quantize.errors.IntonlyError`, never with anything else.

    python -m bench.import_fuzz [--cases 5000] [--seed 0] [--out bench/results/import_fuzz.json]

Seeds: the five MLPerf Tiny models (``intonly/assets/mlperf-tiny``) and, when ``onnxruntime`` is installed, a
small CNN exported from PyTorch and quantized by ``quantize_static`` (QDQ). A case flips 1-8 random bytes, 70 % of
them inside the last 4 KiB of a ``.tflite`` (where the flatbuffer's tables lie; the front holds weight buffers).
The CI test (tests/test_import_fuzz.py) runs a few hundred derandomized cases; this script runs a longer campaign
and writes the outcome counts and every finding (an exception that is not an IntonlyError) as JSON.
"""

from __future__ import annotations

import argparse
import collections
import json
import tempfile
import traceback
from importlib import resources
from pathlib import Path

import numpy as np

from intonly.imported import import_model
from intonly.quantize.errors import IntonlyError


def mutate(data: bytes, rng: np.random.Generator, tail: int = 4096) -> bytes:
    """1-8 random bytes replaced; 70 % of them within the last ``tail`` bytes."""
    b = bytearray(data)
    for _ in range(int(rng.integers(1, 9))):
        lo = max(0, len(b) - tail) if rng.random() < 0.7 else 0
        b[int(rng.integers(lo, len(b)))] = int(rng.integers(0, 256))
    return bytes(b)


def campaign(seeds: dict[str, bytes], cases: int, seed: int, folder: Path) -> dict:
    """``cases`` mutations spread over ``seeds`` (name -> file bytes); returns outcome counts and findings."""
    rng = np.random.default_rng(seed)
    names = sorted(seeds)
    outcomes, findings = collections.Counter(), []
    for i in range(cases):
        name = names[i % len(names)]
        path = folder / f"case{Path(name).suffix}"
        path.write_bytes(mutate(seeds[name], rng))
        try:
            import_model(path)
            outcomes["ok"] += 1
        except IntonlyError as e:
            outcomes[type(e).__name__] += 1
        except Exception as e:   # a finding: the importer let something untyped escape
            outcomes["finding"] += 1
            findings.append({"case": i, "seed": name, "error": "".join(
                traceback.format_exception_only(type(e), e)).strip()[:500]})
    return {"cases": cases, "outcomes": dict(outcomes), "findings": findings}


def tflite_seeds() -> dict[str, bytes]:
    folder = Path(str(resources.files("intonly") / "assets" / "mlperf-tiny"))
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.tflite"))}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--onnx", help="also mutate this .onnx file")
    ap.add_argument("--out", default="bench/results/import_fuzz.json")
    args = ap.parse_args(argv)
    seeds = tflite_seeds()
    if args.onnx:
        seeds[Path(args.onnx).name] = Path(args.onnx).read_bytes()
    with tempfile.TemporaryDirectory() as tmp:
        result = campaign(seeds, args.cases, args.seed, Path(tmp))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(json.dumps(result["outcomes"]), f"{len(result['findings'])} findings; wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
