"""What this CPU runs natively. bf16 is the reason: with AVX512-BF16 or AMX (x86) or the bf16
extensions (ARM) it trains the faq networks 1.4-1.8x faster than float32; without them oneDNN and
ATen emulate it, and it measured 12-22x slower (a 2-core AMD EPYC with AVX2 only: a training step, and
the training loop of `speed`, 2026-11-30).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

# The CPU features that give bf16 dot products in hardware, by architecture
# (names as torch.cpu.get_capabilities reports them).
NATIVE_BF16_FEATURES = {"x86_64": ("avx512_bf16", "amx_bf16"), "aarch64": ("bf16", "sve_bf16"),
                        "arm64": ("bf16", "sve_bf16")}
# oneDNN ISA caps (ONEDNN_MAX_CPU_ISA) below the first one with bf16 instructions: a user who sets
# one of these asks for convolutions without native bf16.
ONEDNN_ISAS_WITHOUT_BF16 = ("SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2", "AVX512_CORE",
                            "AVX512_CORE_VNNI")
# ATen CPU capabilities (ATEN_CPU_CAPABILITY) whose vectorized kernels have no native bf16.
ATEN_CAPABILITIES_WITHOUT_BF16 = ("default", "avx2")


@dataclass(frozen=True)
class Bf16Support:
    """Whether bf16 runs natively here, and the one-line reason."""

    native: bool
    reason: str


def cpu_bf16_support() -> Bf16Support:
    """Whether this CPU runs bf16 natively, honouring the limits a user sets on oneDNN
    (ONEDNN_MAX_CPU_ISA) and ATen (ATEN_CPU_CAPABILITY)."""
    capabilities = torch.cpu.get_capabilities()
    architecture = str(capabilities.get("architecture", "")).lower()
    wanted = NATIVE_BF16_FEATURES.get(architecture, ())
    present = [name for name in wanted if capabilities.get(name)]
    if not present:
        features = " or ".join(name.upper().replace("_", "-") for name in wanted)
        return Bf16Support(False, f"this {architecture or 'CPU'} has no {features or 'bf16 unit'}")
    isa_cap = os.environ.get("ONEDNN_MAX_CPU_ISA", "").strip()
    if isa_cap.upper() in ONEDNN_ISAS_WITHOUT_BF16:
        return Bf16Support(False, f"ONEDNN_MAX_CPU_ISA={isa_cap} keeps oneDNN below its bf16 "
                                  f"instructions (the CPU has {', '.join(present)})")
    aten_cap = os.environ.get("ATEN_CPU_CAPABILITY", "").strip()
    if aten_cap.lower() in ATEN_CAPABILITIES_WITHOUT_BF16:
        return Bf16Support(False, f"ATEN_CPU_CAPABILITY={aten_cap} keeps ATen below its bf16 "
                                  f"kernels (the CPU has {', '.join(present)})")
    return Bf16Support(True, f"this CPU has {', '.join(present)}")


def bf16_is_emulated(device: torch.device) -> bool:
    """True on a CPU that would emulate bf16; CUDA devices are not judged here."""
    return device.type == "cpu" and not cpu_bf16_support().native
