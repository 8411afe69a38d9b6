"""Training precision: the config values, the hardware check, the autocast context (a bf16 run: test_train.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from vtr.errors import ConfigError
from vtr.train.precision import autocast, cpu_has_native_bf16, resolve_precision

CPU = torch.device("cpu")


def test_cpu_flags_decide_native_bf16(tmp_path: Path) -> None:
    zen4 = tmp_path / "zen4"
    zen4.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16 avx_vnni\n")
    skylake = tmp_path / "skylake"
    skylake.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512bw\n")
    sapphire = tmp_path / "sapphire"
    sapphire.write_text("flags\t\t: avx512f amx_bf16 amx_tile\n")
    assert cpu_has_native_bf16(zen4) and cpu_has_native_bf16(sapphire)
    assert not cpu_has_native_bf16(skylake)
    assert not cpu_has_native_bf16(tmp_path / "missing")


def test_resolve_precision() -> None:
    assert resolve_precision("fp32", CPU) == "fp32"
    assert resolve_precision("bf16", CPU) == "bf16"
    assert resolve_precision("auto", CPU) == ("bf16" if cpu_has_native_bf16() else "fp32")
    with pytest.raises(ConfigError, match="train.precision 'fp16'"):
        resolve_precision("fp16", CPU)


def test_autocast_context() -> None:
    x = torch.randn(4, 8)
    with autocast("bf16", CPU):
        assert (x @ x.t()).dtype == torch.bfloat16
    with autocast("fp32", CPU):
        assert (x @ x.t()).dtype == torch.float32
