"""mnist_cnn.cpu: native bf16 from the CPU's features, and the limits a user sets on oneDNN and ATen."""

from __future__ import annotations

import pytest
import torch

from mnist_cnn.cpu import bf16_is_emulated, cpu_bf16_support


@pytest.fixture
def cpu_with(monkeypatch):
    """Pretend this CPU has exactly `features` (as torch.cpu.get_capabilities reports them)."""
    def pretend(architecture: str, *features: str) -> None:
        capabilities = {"architecture": architecture, **{name: True for name in features}}
        monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: capabilities)
        monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
        monkeypatch.delenv("ATEN_CPU_CAPABILITY", raising=False)

    return pretend


@pytest.mark.parametrize("architecture, features, native", [
    ("x86_64", ("avx2", "fma3"), False),  # the common laptop and cloud CPU
    ("x86_64", ("avx2", "avx512_f", "avx512_vnni"), False),  # AVX-512 without its bf16 part
    ("x86_64", ("avx2", "avx512_f", "avx512_bf16"), True),  # Zen 4, Cooper Lake
    ("x86_64", ("avx2", "amx_tile", "amx_bf16"), True),  # Sapphire Rapids
    ("aarch64", ("neon",), False),
    ("aarch64", ("neon", "bf16"), True),  # Graviton 3, Apple M2
])
def test_native_bf16_follows_the_cpu_features(cpu_with, architecture, features, native):
    cpu_with(architecture, *features)
    support = cpu_bf16_support()
    assert support.native is native
    assert bf16_is_emulated(torch.device("cpu")) is not native
    if not native:
        assert support.reason.startswith(f"this {architecture} has no ")


@pytest.mark.parametrize("variable, value", [("ONEDNN_MAX_CPU_ISA", "AVX2"),
                                             ("ONEDNN_MAX_CPU_ISA", "avx512_core"),
                                             ("ATEN_CPU_CAPABILITY", "avx2"),
                                             ("ATEN_CPU_CAPABILITY", "default")])
def test_a_limit_the_user_sets_makes_bf16_emulated(cpu_with, monkeypatch, variable, value):
    cpu_with("x86_64", "avx2", "avx512_f", "avx512_bf16")
    monkeypatch.setenv(variable, value)
    support = cpu_bf16_support()
    assert not support.native and f"{variable}={value}" in support.reason


@pytest.mark.parametrize("variable, value", [("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_AMX"),
                                             ("ONEDNN_MAX_CPU_ISA", "DEFAULT"),
                                             ("ATEN_CPU_CAPABILITY", "avx512")])
def test_a_limit_at_or_above_bf16_keeps_it_native(cpu_with, monkeypatch, variable, value):
    cpu_with("x86_64", "avx2", "amx_bf16")
    monkeypatch.setenv(variable, value)
    assert cpu_bf16_support().native


def test_cuda_is_not_judged_by_the_cpu(cpu_with):
    cpu_with("x86_64", "avx2")
    assert not bf16_is_emulated(torch.device("cuda"))
