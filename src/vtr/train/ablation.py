"""The loss ablation of the paper (Tables III and IV): L1, L1+L2, L1+L3, L1+L2+L3 on identical data, budget and seeds
(and variants with other heads of the registry, to compare methods).

Each (variant, seed) is a full run in ``DIR/runs/``, evaluated on the test split with its best checkpoint. A
finished run leaves ``test_metrics.json`` and is skipped when the ablation is started again, so an interrupted
ablation resumes where it stopped.
"""

from __future__ import annotations

import copy
import json
import math
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from vtr.config import HeadConfig, RunConfig
from vtr.errors import ConfigError
from vtr.fileio import atomic_write_json, atomic_write_text

# Loss terms of Eq. 7 and the heads that compute them.
LOSS_HEADS = {"L1": "global", "L2": "noun", "L3": "verb"}
VARIANTS = ("L1", "L1+L2", "L1+L3", "L1+L2+L3")
TABLE_COLUMNS = ("R@1", "R@5", "R@10", "MdR", "MnR")


def variant_config(config: RunConfig, variant: str, seed: int) -> RunConfig:
    """``config`` with only the heads of ``variant`` and the given seed.

    A variant joins loss terms of Eq. 7 (``"L1+L3"``) and names of other registered heads (``"L1+L2+L3+mcsan"``,
    to compare methods of the family on the same budget). A head's settings (weight, params) come from ``config``
    when it lists that head, else the defaults.
    """
    from vtr.models.registry import HEADS

    names = []
    for term in variant.split("+"):
        if term in LOSS_HEADS:
            names.append(LOSS_HEADS[term])
        elif term in HEADS.names():
            names.append(term)
        else:
            known = ", ".join([*LOSS_HEADS, *(n for n in HEADS.names() if n not in LOSS_HEADS.values())])
            raise ConfigError(f"unknown loss term or head {term!r} in variant {variant!r}; known: {known}")
    if len(set(names)) != len(names):
        raise ConfigError(f"variant {variant!r} names a head twice")
    configured = {head.name: head for head in config.model.heads}
    result = copy.deepcopy(config)
    result.model.heads = [copy.deepcopy(configured.get(name, HeadConfig(name))) for name in names]
    result.train.seed = seed
    return result


def run_ablation(
    config: RunConfig,
    seeds: int,
    out_dir: str | Path,
    variants: Sequence[str] = VARIANTS,
    split: str = "test",
    progress: bool = True,
    echo: Callable[[str], None] = print,
) -> list[dict[str, Any]]:
    """Train and evaluate every variant with seeds ``0 .. seeds-1``; write ``ablation.json`` and ``ablation.md``.

    Returns:
        One record per run: ``{"losses": "L1+L2", "seed": 0, "t2v": {...}, "v2t": {...}, "rsum": ..}``.
    """
    from vtr.evaluate.runner import evaluate_run
    from vtr.train.loop import fit

    if seeds < 1:
        raise ConfigError("--seeds must be at least 1")
    out = Path(out_dir)
    records = []
    for variant in variants:
        for seed in range(seeds):
            run_dir = out / "runs" / f"{variant.replace('+', '_')}-seed{seed}"
            result_file = run_dir / "test_metrics.json"
            if result_file.is_file():
                echo(f"{variant} seed {seed}: done earlier, reusing {result_file}")
                records.append(json.loads(result_file.read_text()))
                continue
            echo(f"{variant} seed {seed}: training into {run_dir}")
            resume = (run_dir / "checkpoint.pt").is_file()
            if run_dir.exists() and not resume:
                shutil.rmtree(run_dir)  # a run that died before its first epoch: start it again
            fit(variant_config(config, variant, seed), run_dir, resume=resume, progress=progress, echo=echo)
            metrics, _ = evaluate_run(str(run_dir), split=split, progress=progress)
            record = {"losses": variant, "seed": seed, **metrics}
            atomic_write_json(result_file, record)
            records.append(record)
    atomic_write_json(out / "ablation.json", records)
    atomic_write_text(out / "ablation.md", ablation_table(records, seeds))
    return records


def _mean_std(values: list[float]) -> tuple[float, float]:
    mean = sum(values) / len(values)
    # Sample standard deviation (n - 1): the spread of a new seed's result, not of these seeds alone.
    var = sum((v - mean) ** 2 for v in values) / (len(values) - 1) if len(values) > 1 else 0.0
    return mean, math.sqrt(var)


def ablation_table(records: list[dict[str, Any]], seeds: int | None = None) -> str:
    """Markdown tables laid out like the paper's Tables III and IV, mean +- std over seeds, one per direction."""
    variants = list(dict.fromkeys(r["losses"] for r in records))
    n_seeds = seeds or len({r["seed"] for r in records})
    lines = []
    for key, title in (("t2v", "Text-to-video"), ("v2t", "Video-to-text")):
        lines += [
            f"### {title} (mean ± std over {n_seeds} seeds)",
            "",
            "| Method | " + " | ".join(TABLE_COLUMNS) + " |",
            "|---|" + "---:|" * len(TABLE_COLUMNS),
        ]
        for variant in variants:
            rows = [r[key] for r in records if r["losses"] == variant]
            cells = []
            for column in TABLE_COLUMNS:
                mean, std = _mean_std([row[column] for row in rows])
                cells.append(f"{mean:.1f} ± {std:.1f}")
            lines.append(f"| {variant} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)
