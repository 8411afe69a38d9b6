"""Training precision: fp32, or bfloat16 autocast where the hardware computes it natively.

``train.precision``:

- ``fp32``: every operation in float32 (the default; what the tests' exact-equality checks rely on).
- ``bf16``: the forward pass under ``torch.autocast(dtype=torch.bfloat16)``: matrix products and attention in
  bfloat16, weights, gradients and the optimiser state in float32 (no loss scaling is needed: bfloat16 has
  float32's range). The contrastive losses and the frozen text tower's cached outputs stay in float32.
- ``auto``: ``bf16`` where the device has native bfloat16 arithmetic (a CUDA GPU that supports it, or a CPU with
  AVX512-BF16 or AMX), ``fp32`` elsewhere, where bfloat16 is emulated (and usually slower than float32).

Evaluation and indexing always run in float32.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import torch

from vtr.errors import ConfigError

PRECISIONS = ("fp32", "bf16", "auto")
_CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_has_native_bf16(cpuinfo: str | Path = "/proc/cpuinfo") -> bool:
    """Whether the CPU has bfloat16 instructions (AVX512-BF16 or AMX); False where this cannot be read."""
    try:
        text = Path(cpuinfo).read_text(errors="replace")
    except OSError:
        return False
    for line in text.splitlines():
        if line.startswith("flags"):
            flags = set(line.partition(":")[2].split())
            return any(flag in flags for flag in _CPU_BF16_FLAGS)
    return False


def resolve_precision(name: str, device: torch.device) -> str:
    """``fp32`` or ``bf16`` for the config value ``name`` on ``device``; ConfigError for an unknown value."""
    if name not in PRECISIONS:
        raise ConfigError(f"train.precision {name!r}; choose one of {', '.join(PRECISIONS)}")
    if name != "auto":
        return name
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    if device.type == "cpu":
        return "bf16" if cpu_has_native_bf16() else "fp32"
    return "fp32"


@contextlib.contextmanager
def autocast(precision: str, device: torch.device) -> Iterator[None]:
    """The forward pass's context: bfloat16 autocast for ``bf16``, nothing for ``fp32``."""
    if precision == "bf16":
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16):
            yield
    else:
        yield
