"""Helpers shared by the benchmarks: hardware line, bf16 matmul peak, data slices by length."""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def hardware() -> str:
    import torch

    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    fp32, bf16 = matmul_gflops(torch.float32), matmul_gflops(torch.bfloat16)
    return (f"{cpu}, {os.cpu_count()} cores, {cpu_class()}, {gpu}; matmul 1024² fp32 {fp32:.0f} GFLOP/s, "
            f"bf16 {bf16:.0f} GFLOP/s; torch {torch.__version__} ({torch.get_num_threads()} threads); "
            f"python {platform.python_version()}")


_MATMUL: dict = {}


def matmul_gflops(dtype, size: int = 1024, seconds: float = 1.0) -> float:
    """Best observed GFLOP/s of a square matmul in `dtype` (measured once per process)."""
    import torch

    if dtype not in _MATMUL:
        a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
        a @ b
        best, deadline = 0.0, time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            a @ b
            best = max(best, 2 * size ** 3 / (time.perf_counter() - start))
        _MATMUL[dtype] = best / 1e9
    return _MATMUL[dtype]


def cpu_class() -> str:
    """Which kind of CPU this is for our purposes: native bf16 (avx512_bf16 / AMX) or AVX2-only,
    where bf16 matmul is ~100x slower than fp32 and everything runs in fp32."""
    try:
        flags = set(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        return "CPU flags unknown"
    native = [f for f in ("avx512_bf16", "amx_bf16") if f in flags]
    if native:
        return "native bf16 (" + ", ".join(native) + ")"
    if "avx512f" in flags:  # the fp32 class all the same; VNNI speeds up int8 kernels
        return "no native bf16 (AVX-512F" + (", VNNI" if "avx512_vnni" in flags else "") + "; fp32 path)"
    return "AVX2-only, no native bf16" if "avx2" in flags else "no AVX2"


def bf16_matmul_peak(size: int = 2048, seconds: float = 3.0) -> float:
    """Best observed bf16 FLOP/s of a square matmul on this device: the roofline we compare to."""
    import torch

    a = torch.randn(size, size, dtype=torch.bfloat16)
    b = torch.randn(size, size, dtype=torch.bfloat16)
    a @ b  # warm-up
    best, deadline = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        start = time.perf_counter()
        a @ b
        best = max(best, 2 * size**3 / (time.perf_counter() - start))
    return best


def forward_flops(config, tokens_per_sequence: list[int], prefix_tokens_saved: int = 0) -> float:
    """Approximate forward FLOPs of a decoder over the given sequences, without the LM head:
    2·params·tokens for the dense layers plus 2·layers·T²·d for causal attention."""
    d, layers = config.hidden_size, config.num_hidden_layers
    inter = config.intermediate_size
    kv = getattr(config, "num_key_value_heads", config.num_attention_heads) * (d // config.num_attention_heads)
    per_token = layers * (2 * (d * d + 2 * d * kv + d * d) + 2 * 3 * d * inter)
    total = 0.0
    for t in tokens_per_sequence:
        total += per_token * t + 2 * layers * t * t * d
    return total


def training_source(name: str) -> list:
    """The pairs of one training source in ../shared/data (quality_study.TRAINING_SOURCES)."""
    from quality_study import load_training_source

    return load_training_source(SHARED_DATA, name)
