"""The main job end to end: make the synthetic benchmark, train the dual alignment model, evaluate, search.

``vtr demo --out DIR`` writes ``DIR/data`` (the data set), ``DIR/run`` and ``DIR/run-2`` (two trained runs, each
with its test metrics in ``test_metrics.json``), ``DIR/metrics.json`` (the test metrics of the two together, same
JSON as ``vtr eval``), ``DIR/index`` (the test videos, searchable with ``vtr search`` and ``vtr serve``),
``DIR/search_check.json`` (every test caption searched through that index) and ``DIR/report`` (``vtr report``'s
page of ``DIR/run``: its metrics, training curves, retrieval cases, attention maps).

The two runs are the same recipe with training seeds 0 and 1, the second with the other kind of stem
normalisation (:func:`member_config`); the metrics and the index rank by their mean similarity (joined
embeddings, :mod:`vtr.index.ensemble`). ``models=1`` trains ``DIR/run`` alone, in half the time. Every stage that
finished is reused when the command is run again.
"""

from __future__ import annotations

import os
import shlex
import shutil
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from vtr.config import load_config
from vtr.errors import ConfigError
from vtr.fileio import atomic_write_json

DEMO_CONFIG = "synthetic-dual-align"


def _make_data(
    data_dir: Path, videos: int, seed: int, config: Any, progress: bool, echo: Callable[[str], None]
) -> bool:
    """Make the data set unless ``data_dir`` holds one of ``videos`` clips already; returns whether it made one."""
    annotations = data_dir / "annotations.jsonl"
    if annotations.is_file():
        with annotations.open(encoding="utf-8") as lines:
            count = sum(1 for line in lines if line.strip())
        if count == videos:
            echo(f"data: reusing {data_dir}")
            return False
        echo(f"data: {data_dir} holds {count} clips, not {videos}: making it again")
        shutil.rmtree(data_dir)
    from vtr.data.synth import generate_dataset

    echo(f"data: making {videos} synthetic clips in {data_dir}")
    generate_dataset(
        data_dir,
        num_videos=videos,
        seed=seed,
        num_frames=config.data.num_frames * 2,
        size=config.data.image_size,
        progress=progress,
    )
    return True


def _same_config(run_dir: Path, config: Any) -> bool:
    """Whether ``run_dir`` holds a checkpoint of a run with this config (so it can be reused or resumed)."""
    from vtr.config import load_config, to_dict
    from vtr.errors import ConfigError
    from vtr.train.checkpoint import CHECKPOINT_NAME

    if not (run_dir / CHECKPOINT_NAME).is_file():
        return False
    try:
        return to_dict(load_config(run_dir / "config.yaml")) == to_dict(config)
    except (ConfigError, OSError):
        return False  # written by an older vtr, or damaged


def _train(run_dir: Path, config: Any, progress: bool, echo: Callable[[str], None]) -> bool:
    """Train, resume or reuse the demo's run; returns whether its weights changed."""
    from vtr.train import fit

    if _same_config(run_dir, config) and (run_dir / "best.safetensors").is_file():
        import torch

        from vtr.train.checkpoint import CHECKPOINT_NAME

        state = torch.load(run_dir / CHECKPOINT_NAME, map_location="cpu", weights_only=False)["state"]
        if state["epoch"] >= config.train.epochs:
            echo(f"train: reusing {run_dir}")
            return False
        fit(config, run_dir, resume=True, progress=progress, echo=echo)
        return True
    if run_dir.exists():
        echo(f"train: {run_dir} was trained with another config or did not finish its first epoch; training again")
        shutil.rmtree(run_dir)
    echo(f"train: {config.train.epochs} epochs into {run_dir}")
    fit(config, run_dir, progress=progress, echo=echo)
    return True


# Every second model of the demo (run-2, run-4, ...) has the other kind of stem normalisation. GroupNorm divides
# out an object's contrast with a plain background and one group keeps it; their errors differ, and a pair of one
# of each missed fewer test captions than any single model or pair of one kind (benchmarks/RESULTS.md, "Two stems").
_PARTNER_STEM_NORM = {"group": "layer", "layer": "group", "batch": "group"}


def member_config(config: Any, i: int) -> Any:
    """The config of the demo's model ``i`` (0 first): training seed ``train.seed + i``, and for every second one
    (``i`` odd) the other kind of stem normalisation, when the video tower has a convolutional stem trained from
    scratch."""
    video = config.model.video
    if i % 2 and video.stem != "patch" and not video.pretrained:
        video = replace(video, stem_norm=_PARTNER_STEM_NORM.get(video.stem_norm, video.stem_norm))
    return replace(
        config,
        model=replace(config.model, video=video),
        train=replace(config.train, seed=config.train.seed + i),
    )


def _run_dirs(out: Path, models: int) -> list[Path]:
    return [out / ("run" if i == 0 else f"run-{i + 1}") for i in range(models)]


def _joined(encoded: list[Any]) -> Any:
    """One split whose similarity is the mean of the members' (their embeddings joined, as the index holds them)."""
    if len(encoded) == 1:
        return encoded[0]
    from vtr.index.ensemble import join_embeddings

    first = encoded[0]
    return replace(
        first,
        text=join_embeddings([e.text for e in encoded]),
        video=join_embeddings([e.video for e in encoded]),
        failures=sorted({name for e in encoded for name in e.failures}),
    )


def _example_queries(encoded: Any, echo: Callable[[str], None], n_queries: int = 3, k: int = 5) -> list[dict]:
    """Answer a few test captions and print their top-k videos, marking the one the caption was written for."""
    sim = encoded.similarity()  # [n_queries, n_videos]
    picks = np.linspace(0, len(encoded.captions) - 1, n_queries).round().astype(int)
    answers = []
    for q in picks:
        top = np.argsort(-sim[q], kind="stable")[:k]
        echo(f'\nquery: "{encoded.captions[q]}"')
        hits = []
        for rank, v in enumerate(top, 1):
            record = encoded.records[v]
            mark = "*" if v == encoded.query_video[q] else " "
            echo(f"  {rank}. {mark} {sim[q, v]:.3f}  {record.video}  ({record.captions[0]})")
            hits.append({"rank": rank, "video": record.video, "score": float(sim[q, v]), "correct": bool(mark == "*")})
        answers.append({"query": encoded.captions[q], "results": hits})
    echo("  (* = the video the caption was written for)")
    return answers


def _index_test_videos(
    out: Path, run_dirs: list[Path], encoded: Any, progress: bool, echo: Callable[[str], None]
) -> None:
    """Link the test videos into ``DIR/test-videos`` and index them into ``DIR/index`` with the trained models."""
    from vtr.errors import ModelMismatchError
    from vtr.index import build_index

    folder = out / "test-videos"
    folder.mkdir(exist_ok=True)
    for record in encoded.records:
        target = folder / Path(record.video).name
        if not target.exists():
            try:
                os.link(record.path, target)  # a hard link: the files stay inside the indexed collection
            except OSError:
                shutil.copy2(record.path, target)
    model = [str(d) for d in run_dirs] if len(run_dirs) > 1 else str(run_dirs[0])
    try:
        report = build_index(folder, out / "index", model, progress=progress)
    except ModelMismatchError:  # an index of another number of models
        shutil.rmtree(out / "index")
        report = build_index(folder, out / "index", model, progress=progress)
    echo(f"\nindex: {report.videos} test videos searchable in {out / 'index'} ({len(report.indexed)} encoded now)")


def run_demo(
    out_dir: str | Path = "vtr-demo",
    videos: int = 2000,
    seed: int = 0,
    overrides: tuple[str, ...] = (),
    progress: bool = True,
    echo: Callable[[str], None] = print,
    models: int = 2,
) -> dict[str, Any]:
    """Run the whole demo; returns the test metrics (of the models together when there are several).

    Args:
        out_dir: the demo folder.
        videos: synthetic clips to make.
        seed: seed of the synthetic data set.
        overrides: ``key=value`` changes to the demo config.
        progress: show progress bars.
        echo: where the demo's lines go.
        models: runs to train (:func:`member_config`: training seeds ``train.seed`` + 0, 1, ..., every second
            one with the other stem normalisation); the index and the metrics use them together.
    """
    from vtr.evaluate.report import format_metrics_table
    from vtr.evaluate.runner import evaluate_run, evaluate_split
    from vtr.evaluate.search_check import check_search, summary_line
    from vtr.viz.report import write_evaluated_report

    if models < 1:
        raise ConfigError(f"the demo trains at least one model, not {models}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data_dir, run_dirs = out / "data", _run_dirs(out, models)
    config = load_config(DEMO_CONFIG, [f"data.root={data_dir}", *overrides])
    if _make_data(data_dir, videos, seed, config, progress, echo):
        for stale in (*out.glob("run*"), out / "test-videos", out / "index"):  # made from other data
            if stale.is_dir():
                shutil.rmtree(stale, ignore_errors=True)
    encoded, alone = [], []
    for i, run_dir in enumerate(run_dirs):
        member = member_config(config, i)
        if _train(run_dir, member, progress, echo):
            shutil.rmtree(out / "index", ignore_errors=True)  # made with the previous weights
        run_metrics, run_encoded = evaluate_run(str(run_dir), split="test", progress=progress)
        atomic_write_json(run_dir / "test_metrics.json", run_metrics)  # this model alone
        if models > 1:
            norm = member.model.video.stem_norm
            echo(f"\n{run_dir.name} alone (training seed {member.train.seed}, stem_norm {norm}):")
            echo(format_metrics_table(run_metrics))
        encoded.append(run_encoded)
        alone.append(run_metrics)
    together = _joined(encoded)
    metrics = alone[0]
    if models > 1:
        metrics = evaluate_split(together)
        if together.failures:
            metrics["failures"] = together.failures
    atomic_write_json(out / "metrics.json", metrics)
    n_videos, n_queries = len(together.records), len(together.captions)
    echo(f"\ntest split: {n_videos} videos, {n_queries} caption queries (chance R@1 = {100 / n_videos:.1f}%)")
    if models > 1:
        echo(f"the {models} models together (mean similarity, as the index ranks):")
    echo(format_metrics_table(metrics))
    examples = _example_queries(together, echo)
    _index_test_videos(out, run_dirs, together, progress, echo)
    check = check_search(out / "index", together.records)
    atomic_write_json(out / "search_check.json", check)
    echo(summary_line(check))
    # The report is of one run (its config, curves and attention maps), so it shows that run's own retrieval.
    report = write_evaluated_report(run_dirs[0], out / "report", alone[0], encoded[0], str(data_dir))
    of = f" of {run_dirs[0].name}" if models > 1 else ""
    echo(f"\nreport{of} (metrics, training curves, retrieval cases, attention maps): {report}")
    echo(f"\nwritten: {out / 'metrics.json'}; search the test videos with, for example, the first query above:")
    index = shlex.quote(str(out / "index"))
    echo(f"  vtr search {shlex.quote(examples[0]['query'])} --db {index}")
    echo(f"  vtr serve --db {index}   # then open http://127.0.0.1:8000/")
    return metrics
