"""C template families: which SIMD kernels exist, the C condition they compile under, and example flags.

A family is a directory ``templates/<family>/``; a kernel whose op has no template there, or whose family template
declines its element types (it sets ``specialised = false`` and renders the generic body), is the generic C99 one.
Every family kernel computes exactly the generic kernel's bits (docs/codegen-families.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

TEMPLATES = Path(__file__).resolve().parent / "templates"  # templates/<family>/, generic/, project/


@dataclass(frozen=True)
class Family:
    name: str
    isa: str        # what the specialised kernels use
    guard: str      # C preprocessor condition for the SIMD bodies; otherwise each kernel compiles the generic body
    cflags: str     # flags that switch the SIMD bodies on (added to the usual -std=c99 -O2 -Wall -Wextra -Werror)
    compiler: str   # the compiler those flags are for


FAMILIES: dict[str, Family] = {f.name: f for f in (
    Family("generic", "portable C99", "1", "", "gcc"),
    Family("x86", "AVX2 (_mm256_madd_epi16); AVX-512 VNNI (_mm512_dpbusd_epi32) under __AVX512VNNI__",
           "defined(__AVX2__)", "-mavx2 -mfma", "gcc"),
    Family("neon", "AArch64 NEON: vdotq_s32 under __ARM_FEATURE_DOTPROD, else vmlal_s16",
           "defined(__aarch64__) && defined(__ARM_NEON)", "-march=armv8.2-a+dotprod", "aarch64-linux-gnu-gcc"),
    Family("cortex-m-dsp", "ACLE __smlad / __sxtab16 / __sxtb16 (Cortex-M4/M7/M33 DSP extension)",
           "defined(__ARM_FEATURE_DSP)", "-mcpu=cortex-m4 -mthumb", "arm-none-eabi-gcc"),
    Family("cortex-m-mve", "Helium (arm_mve.h): vmladavaq_s8, vaddvaq_s8, tail predication with vctp8q",
           "defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 1)", "-mcpu=cortex-m55 -mthumb -mfloat-abi=hard",
           "arm-none-eabi-gcc"),
)}


def get_family(name: str) -> Family:
    """The family ``name``; a name without a template directory (a target may name a family that does not exist
    yet) is a family whose every kernel is generic, as the template lookup makes it."""
    if name in FAMILIES:
        return FAMILIES[name]
    return Family(name, f"none (no templates/{name}/: every kernel is the generic one)", "0", "", "")


def specialising_families(kernel: str) -> list[str]:
    """The families (other than generic) with their own template for ``kernel``, in :data:`FAMILIES` order."""
    return [name for name in FAMILIES if name != "generic" and (TEMPLATES / name / f"{kernel}.c.j2").is_file()]
