"""Published latency measurements of the :mod:`zoo` networks, as data: what a latency cost model is
validated against.

    python -m bench.published_rows      # prints the table

Every :class:`PublishedRow` is copied from a public source, which its ``source`` names: the TinyEngine README's
"Measured Results" (STM32H743), Krishnamoorthi 2018 Table 7 (Pixel 2) or the HAWQ-V3 README (NVIDIA T4).
``measured_ms`` is the latency of one inference call on ``batch`` samples (for HAWQ-V3 batch 8: the whole batch of
8). ``model`` is a key of ``zoo.ZOO``; where the measured network differs from it (both ResNet50 measurements ran
the original ResNet v1, ``resnet50-224`` is torchvision's v1.5), ``exact_model`` names the zoo entry with the
measured layout (``resnet50_v1-224``) and ``note`` says how they differ. ``target`` is the name of a target file
(``targets/specs/<target>.toml``), ``clock_mhz`` the core clock of the measurement where a source gives it (``None``
where none was found), so ``f"{target}@{clock_mhz}MHz"`` is the form ``intonly`` takes.

Library columns whose entry is "OOM" (the network did not fit the 512 KB SRAM limit) have no latency; they
are listed in :data:`OUT_OF_MEMORY` instead.
"""

from __future__ import annotations

from dataclasses import dataclass

TINYENGINE = ("mit-han-lab/tinyengine README.md, 'Measured Results' (STM32H743, 512 KB SRAM / 2 MB flash limit, "
              "-Ofast in STM32CubeIDE, X-CUBE-AI 7.3.0 balanced mode)")
H743_CLOCK = ("480 MHz: the TinyEngine maintainer says the numbers need 480 MHz with I/D caches on (tinyengine "
              "issue #23); the README itself states no clock")
PIXEL2 = ("Krishnamoorthi 2018, 'Quantizing deep convolutional networks for efficient inference: A whitepaper' "
          "(arXiv:1806.08342) Table 7: 'Inference time measurements on Pixel2 phone in milliseconds on a single "
          "large core'")
PIXEL2_CPU = ("Pixel 2 = Snapdragon 835, CPU 4 x 2.35 GHz + 4 x 1.9 GHz Kryo 280 (LineageOS wiki "
              "_data/devices/walleye.yml: 'cpu_freq: 4 x 2.35 GHz + 4 x 1.9 GHz'); the large cores are Qualcomm "
              "semi-custom cores 'likely based on the A72 or A73' (AnandTech 10948, Qualcomm did not disclose), "
              "modelled as cortex-a73; 2.35 GHz is the phone's maximum, the sustained clock during the runs is not "
              "reported")
PIXEL2_HVX = ("HVX column via Android NN-API on the Qualcomm DSP (Snapdragon 835: Hexagon 682 with HVX); the DSP "
              "clock is not stated by the whitepaper and was not found")
HAWQ = ("Yao et al., HAWQ-V3 (ICML 2021), Zhen-Dong/HAWQ README.md ('Table I and Table II in HAWQ-V3'); T4 setup "
        "in Zhen-Dong/HAWQ tvm_benchmark/README.md (TVM branch int4_direct_HWNC, CUDA 10.2)")
RESNET50_V1 = ("Measured network is ResNet v1 (stride 2 in the first 1x1 conv of a downsampling bottleneck, "
               "3.86 GMACs): zoo 'resnet50_v1-224'. 'resnet50-224' is torchvision's v1.5 (stride in the 3x3 conv, "
               "4.09 GMACs, 6% more; same 25.6M params).")
T4_CLOCK = ("1590 MHz = T4 boost clock (base 585 MHz; sysrqmts.com/en/gpus/nvidia/tesla/t4); HAWQ does not report "
            "the clock during the runs")


@dataclass(frozen=True)
class PublishedRow:
    model: str                      # key of zoo.ZOO
    target: str                     # target file name (targets/specs/<target>.toml)
    clock_mhz: float | None         # core clock of the measurement; None: not found
    batch: int                      # samples per inference call
    measured_ms: float              # latency of one call on `batch` samples
    column: str                     # the source table's column: library / precision / engine
    source: str                     # the public source the row is copied from
    note: str = ""
    measured_sram_kb: float | None = None  # peak SRAM, where the source gives it
    exact_model: str | None = None  # zoo.ZOO name of the exact measured layout, where `model` only approximates it

    @property
    def target_at(self) -> str:
        """``target@<clock>MHz`` (or just ``target`` without a clock)."""
        return self.target if self.clock_mhz is None else f"{self.target}@{self.clock_mhz:g}MHz"

    @property
    def ms_per_sample(self) -> float:
        return self.measured_ms / self.batch


# ---- STM32H743 (Cortex-M7), TinyEngine comparison ----------------------------------------------------------

_TE_COLS = ("TF-Lite Micro @713b6ed", "CMSIS-NN @011bf32", "X-CUBE-AI 7.3.0", "TinyEngine @0363956")


def _h743(model: str, latency_ms: dict[str, float], sram_kb: dict[str, float], source: str, note: str):
    return [PublishedRow(model, "cortex-m7", 480.0, 1, ms, col, source, note, sram_kb.get(col))
            for col, ms in latency_ms.items()]


_MBV2_035_SRC = (f"{TINYENGINE}, row mbv2-w0.35, in README versions up to commit dbe52ad (2023-02-23; replaced by "
                 "mbv2-w0.3-r64 in b116d7d): latency and peak SRAM; MACs/params: mit-han-lab/mcunet README.md Model "
                 "Zoo row mbv2-320kB")
_MBV2_03_SRC = f"{TINYENGINE}, row mbv2-w0.3-r64 (README since commit b116d7d): latency and peak SRAM"

STM32H743_ROWS = tuple(
    _h743("mbv2-w0.35-r144", {"X-CUBE-AI 7.3.0": 118.0, "TinyEngine @0363956": 124.0},
          {"X-CUBE-AI 7.3.0": 296.0, "TinyEngine @0363956": 295.0}, _MBV2_035_SRC,
          f"MCUNet model zoo mbv2-w0.35 (r144, 23.5M MACs, 0.75M params; last 1x1 conv scaled to 448 channels). "
          f"TF-Lite Micro and CMSIS-NN: OOM. Clock: {H743_CLOCK}")
    + _h743("mbv2-w0.3-r64", {"TF-Lite Micro @713b6ed": 467.0, "CMSIS-NN @011bf32": 43.0, "X-CUBE-AI 7.3.0": 29.0,
                              "TinyEngine @0363956": 23.0},
            {"TF-Lite Micro @713b6ed": 173.0, "CMSIS-NN @011bf32": 173.0, "X-CUBE-AI 7.3.0": 88.0,
             "TinyEngine @0363956": 61.0}, _MBV2_03_SRC,
            "No MACs/params published for this net; zoo layout assumed like mbv2-w0.35 (last conv scaled, 384 "
            f"channels): 4.54M MACs, 0.634M params. Clock: {H743_CLOCK}")
)

OUT_OF_MEMORY = tuple((m, "cortex-m7", 480.0, col, _MBV2_035_SRC) for m, col in
                      (("mbv2-w0.35-r144", _TE_COLS[0]), ("mbv2-w0.35-r144", _TE_COLS[1])))
"""(model, target, clock_mhz, column, source) of library runs reported as OOM under the 512 KB SRAM limit."""

# ---- Pixel 2 (Snapdragon 835): fixed-point CPU (one large core) and HVX ------------------------------------

PIXEL2_ROWS = (
    PublishedRow("mobilenet_v1-1.0-224", "cortex-a73", 2350.0, 1, 68.0, "Fixed point (CPU)", PIXEL2,
                 PIXEL2_CPU),
    PublishedRow("mobilenet_v2-1.0-224", "cortex-a73", 2350.0, 1, 63.0, "Fixed point (CPU)", PIXEL2,
                 PIXEL2_CPU),
    PublishedRow("mobilenet_v1-1.0-224", "hexagon-hvx", None, 1, 16.0, "Fixed point (HVX, NN-API)", PIXEL2,
                 PIXEL2_HVX),
    PublishedRow("mobilenet_v2-1.0-224", "hexagon-hvx", None, 1, 15.5, "Fixed point (HVX, NN-API)", PIXEL2,
                 PIXEL2_HVX),
    PublishedRow("resnet50-224", "cortex-a73", 2350.0, 1, 440.0, "Fixed point (CPU)", PIXEL2,
                 RESNET50_V1 + " The table's 'ResNet v1 50' names the v1 layout. " + PIXEL2_CPU,
                 exact_model="resnet50_v1-224"),
)

# ---- NVIDIA T4, HAWQ-V3 W8A8 through TVM, batch 8 ----------------------------------------------------------

T4_ROWS = (
    PublishedRow("resnet18-224", "nvidia-t4", 1590.0, 8, 3.3, "HAWQ-V3 W8A8 (TVM)", HAWQ,
                 "Latency of a batch of 8 (FP: 9.7 ms, 3.0x). BOPS agree with the zoo layout: FP 1858 G = "
                 f"1.814 GMACs x 32 x 32. {T4_CLOCK}"),
    PublishedRow("resnet50-224", "nvidia-t4", 1590.0, 8, 8.5, "HAWQ-V3 W8A8 (TVM)", HAWQ,
                 "Latency of a batch of 8 (FP: 26.2 ms, 3.1x). " + RESNET50_V1 + " HAWQ quantizes pytorchcv's "
                 "'resnet50' (ptcv_get_model; pytorchcv's 'resnet50b' is the v1.5 one), and its table's BOPS "
                 "agree: FP 3951 G = 3.858 GMACs x 32 x 32, W8A8 247 G = 3.86 G x 8 x 8. " + T4_CLOCK,
                 exact_model="resnet50_v1-224"),
)

ROWS: tuple[PublishedRow, ...] = STM32H743_ROWS + PIXEL2_ROWS + T4_ROWS


def main() -> int:
    hdr = f"{'model':22s} {'target':26s} {'batch':>5s} {'ms':>8s} {'SRAM kB':>7s}  column"
    print(hdr)
    print("-" * len(hdr))
    for r in ROWS:
        sram = "" if r.measured_sram_kb is None else f"{r.measured_sram_kb:g}"
        print(f"{r.model:22s} {r.target_at:26s} {r.batch:5d} {r.measured_ms:8.1f} {sram:>7s}  {r.column}")
    for model, target, mhz, col, _ in OUT_OF_MEMORY:
        print(f"{model:22s} {f'{target}@{mhz:g}MHz':26s} {1:5d} {'OOM':>8s} {'':>7s}  {col}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
