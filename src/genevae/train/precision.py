"""Which precision the training-mode matrix products run in (``--precision``).

bfloat16 products with float32 accumulation are 3-4x faster than float32 ones where
the hardware multiplies bfloat16 natively: x86 CPUs with AVX512-BF16 or AMX, and CUDA
GPUs. Elsewhere torch emulates them, slower than float32, so ``auto`` keeps float32.
"""

from __future__ import annotations

import functools
from pathlib import Path

import torch

__all__ = ["resolve_precision", "matmul_dtype", "cpu_has_native_bfloat16", "flush_denormals"]

#: CPU flags (Linux /proc/cpuinfo) of native bfloat16 dot products.
BFLOAT16_CPU_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


def cpu_has_native_bfloat16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether this CPU multiplies bfloat16 natively (False where that cannot be read)."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return False
    for line in text.splitlines():
        if line.startswith("flags"):
            return not BFLOAT16_CPU_FLAGS.isdisjoint(line.split(":", 1)[-1].split())
    return False


@functools.cache
def _this_cpu_has_native_bfloat16() -> bool:
    return cpu_has_native_bfloat16()


def resolve_precision(precision: str, device: torch.device) -> str:
    """``"fp32"`` or ``"bf16"`` for ``--precision`` (``auto``: bf16 where native) on ``device``."""
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    if device.type == "cpu":
        return "bf16" if _this_cpu_has_native_bfloat16() else "fp32"
    return "fp32"  # MPS


def matmul_dtype(precision: str) -> torch.dtype:
    """The torch dtype of a resolved precision."""
    return torch.bfloat16 if precision == "bf16" else torch.float32


def flush_denormals() -> bool:
    """Make the CPU treat subnormal floats as zero (FTZ/DAZ) in this thread and in the
    threads it starts later; returns whether the CPU supports it.

    AdamW's first moment of a weight whose gradient stays exactly zero for hundreds of
    steps (the encoder weights of a gene that no cell of the recent batches expresses)
    decays by 0.9 a step into the subnormal range, below 1.2e-38, where x86 arithmetic
    is up to 100x slower: on the 1M-cell benchmark file (2,000 genes, some of them rare)
    the optimiser step went from 0.3 to 1.6 ms after about 800 steps (issue 19). Call it
    before torch starts its OpenMP threads, which inherit the mode; afterwards only the
    calling thread changes. A value that would have been subnormal becomes 0: far below
    anything the loss or the weights can resolve.
    """
    return torch.set_flush_denormal(True)
