"""Training curves of a run from its ``log.jsonl``: the loss terms against step, validation recall per epoch, lr.

The log is written by :mod:`vtr.train.loop`: a ``start`` record (the config), one ``step`` record per optimiser step
(``lr``, every head's ``<head>_loss`` and ``<head>_count``, and the weighted total ``loss``) and one ``epoch`` record
per epoch (``val`` metrics when there is a validation split, ``best_epoch``). Any of it may be missing: a run with
one head, without validation, or killed mid-epoch (its last line torn) still gets its figure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vtr.errors import CheckpointError
from vtr.viz.figure import new_figure, plain, save_png

LOG_FILE = "log.jsonl"
# The paper's names of the loss terms (Eq. 7: L = L1 + lambda2 L2 + lambda3 L3); other heads go by their own name.
PAPER_TERMS = {"global": "L1", "noun": "L2", "verb": "L3"}
RECALLS = ("R@1", "R@5", "R@10")
SMOOTHING_POINTS = 40  # the smoothed curve averages over about len(steps) / SMOOTHING_POINTS steps
PANEL_SIZE = (5.0, 3.6)  # inches per panel; the figure is three panels side by side
TITLES = ("training loss", "validation text-to-video recall", "learning rate")


@dataclass
class TrainingLog:
    """What a run log holds, as arrays ready to plot.

    Attributes:
        steps: int ``[n]``, the optimiser step of each step record, ascending (a resumed run logs the steps of a
            half-done epoch twice: the later record wins).
        losses: ``"<head>_loss"`` and ``"loss"`` (the total) -> float ``[n]``, NaN where the term was absent
            (not logged, or its head had nothing to align in the batch: ``<head>_count`` 0).
        lr: float ``[n]``, the learning rate of each step (NaN where not logged).
        val_epochs: int ``[m]``, 1-based epochs that have validation metrics.
        val: ``"R@1"``, ``"R@5"``, ``"R@10"`` -> float ``[m]``, text-to-video recall in percent.
        best_epoch: 1-based epoch whose weights are ``best``, or None.
        finished_epochs: epochs with an ``epoch`` record.
        planned_epochs: ``train.epochs`` of the config in the ``start`` record, or None.
    """

    steps: np.ndarray
    losses: dict[str, np.ndarray]
    lr: np.ndarray
    val_epochs: np.ndarray
    val: dict[str, np.ndarray] = field(default_factory=dict)
    best_epoch: int | None = None
    finished_epochs: int = 0
    planned_epochs: int | None = None

    @property
    def cut_short(self) -> bool:
        """The run logged fewer epochs than its config planned (killed, or still running)."""
        return self.planned_epochs is not None and self.finished_epochs < self.planned_epochs


def read_training_log(path: str | Path) -> TrainingLog:
    """Read a run's ``log.jsonl`` (``path`` is the file or the run folder); torn or foreign lines are skipped.

    Raises:
        CheckpointError: there is no log file.
    """
    from vtr.train.runlog import read_log

    path = Path(path)
    if path.is_dir():
        path = path / LOG_FILE
    if not path.is_file():
        raise CheckpointError(f"{path} does not exist: training curves need the log of a vtr train run")
    records = [r for r in read_log(path) if isinstance(r, dict)]
    by_step: dict[int, dict[str, Any]] = {}
    by_epoch: dict[int, dict[str, Any]] = {}
    planned = None
    for record in records:
        event = record.get("event")
        if event == "start":
            planned = _planned_epochs(record)
        elif event == "step" and isinstance(record.get("step"), int):
            by_step[record["step"]] = record  # a resumed run repeats steps: keep the latest
        elif event == "epoch" and isinstance(record.get("epoch"), int):
            by_epoch[record["epoch"]] = record
    step_records = [by_step[s] for s in sorted(by_step)]
    loss_keys = _loss_keys(step_records)
    losses = {key: np.array([_term(r, key) for r in step_records], dtype=float) for key in loss_keys}
    lr = np.array([_number(r.get("lr")) for r in step_records], dtype=float)
    epochs = [by_epoch[e] for e in sorted(by_epoch)]
    validated = [r for r in epochs if isinstance(r.get("val"), dict) and isinstance(r["val"].get("t2v"), dict)]
    val = {k: np.array([_number(r["val"]["t2v"].get(k)) for r in validated], dtype=float) for k in RECALLS}
    best = epochs[-1].get("best_epoch") if epochs else None
    return TrainingLog(
        steps=np.array(sorted(by_step), dtype=np.int64),
        losses=losses,
        lr=lr,
        val_epochs=np.array([r["epoch"] + 1 for r in validated], dtype=np.int64),
        val=val,
        best_epoch=best + 1 if isinstance(best, int) else None,
        finished_epochs=len(epochs),
        planned_epochs=planned,
    )


def _planned_epochs(record: dict[str, Any]) -> int | None:
    epochs = (record.get("config") or {}).get("train", {}).get("epochs")
    return epochs if isinstance(epochs, int) else None


def _loss_keys(records: list[dict[str, Any]]) -> list[str]:
    """Every ``<head>_loss`` in order of first appearance, then the total ``loss``."""
    keys: dict[str, None] = {}
    for record in records:
        for key in record:
            if key.endswith("_loss"):
                keys.setdefault(key)
    total = ["loss"] if any("loss" in r for r in records) else []
    return [*keys, *total]


def _number(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else float("nan")


def _term(record: dict[str, Any], key: str) -> float:
    """A loss term of a step record; NaN when its head had nothing to align (count 0: the logged 0 is no loss)."""
    count = record.get(key.removesuffix("_loss") + "_count") if key != "loss" else None
    if isinstance(count, (int, float)) and count == 0:
        return float("nan")
    return _number(record.get(key))


def term_label(key: str) -> str:
    """The legend label of a loss key: ``"noun_loss"`` -> ``"L2 noun"``, ``"loss"`` -> ``"total"``."""
    if key == "loss":
        return "total"
    head = key.removesuffix("_loss")
    return f"{PAPER_TERMS[head]} {head}" if head in PAPER_TERMS else head


def smooth(values: np.ndarray, span: int) -> np.ndarray:
    """Exponential moving average with the given span (alpha = 2 / (span + 1)), bias-corrected at the start as
    TensorBoard does; NaNs are skipped (they stay NaN and do not reset the average)."""
    alpha = 2.0 / (max(span, 1) + 1.0)
    out = np.full(values.shape, np.nan)
    average, weight = 0.0, 0.0
    for i, value in enumerate(values):
        if np.isnan(value):
            continue
        average = (1 - alpha) * average + alpha * value
        weight = (1 - alpha) * weight + alpha
        out[i] = average / weight
    return out


def plot_training_curves(log: TrainingLog, title: str | None = None) -> Any:
    """Three panels: loss terms against step (smoothed, raw faint), validation R@1/5/10 per epoch, learning rate.

    Each line has its legend label (``"L1 global"``, ..., ``"total"``; ``"R@1"``, ...; ``"lr"``); raw loss lines are
    unlabelled. A panel with nothing to show says so in words.

    Returns:
        The ``matplotlib.figure.Figure``.
    """
    figure = new_figure(PANEL_SIZE[0] * 3, PANEL_SIZE[1])
    loss_axes, val_axes, lr_axes = figure.subplots(1, 3)
    for axes, panel_title in zip((loss_axes, val_axes, lr_axes), TITLES, strict=True):
        axes.set_title(panel_title)
    _plot_losses(loss_axes, log)
    _plot_validation(val_axes, log)
    _plot_lr(lr_axes, log)
    heading = plain(title) if title else ""
    if log.cut_short:
        heading += f"{' - ' if heading else ''}{log.finished_epochs} of {log.planned_epochs} epochs logged"
    if heading:
        figure.suptitle(heading)
    return figure


def _say(axes: Any, text: str) -> None:
    axes.text(0.5, 0.5, text, ha="center", va="center", transform=axes.transAxes, color="0.4")


def _plot_losses(axes: Any, log: TrainingLog) -> None:
    axes.set_xlabel("step")
    plotted = {key: values for key, values in log.losses.items() if np.isfinite(values).any()}
    if not plotted:
        _say(axes, "no training steps logged")
        return
    span = max(1, len(log.steps) // SMOOTHING_POINTS)
    for index, (key, values) in enumerate(plotted.items()):
        colour = "black" if key == "loss" else f"C{index}"
        axes.plot(log.steps, values, color=colour, alpha=0.25, linewidth=0.8)
        axes.plot(log.steps, smooth(values, span), color=colour, linewidth=1.6, label=term_label(key))
    axes.set_ylabel("loss")
    axes.legend(fontsize="small")


def _plot_validation(axes: Any, log: TrainingLog) -> None:
    axes.set_xlabel("epoch")
    if not len(log.val_epochs):
        _say(axes, "no validation metrics logged\n(no validation split, or no epoch finished)")
        return
    for name in RECALLS:
        axes.plot(log.val_epochs, log.val[name], marker="o", markersize=3, label=name)
    if log.best_epoch is not None:
        axes.axvline(log.best_epoch, color="0.5", linestyle=":", linewidth=1, label=f"best (epoch {log.best_epoch})")
    last = log.planned_epochs or int(log.val_epochs.max())
    axes.set_xlim(0.5, max(last, 1) + 0.5)
    axes.set_ylim(0, 100)
    axes.set_ylabel("recall (%)")
    axes.legend(fontsize="small")


def _plot_lr(axes: Any, log: TrainingLog) -> None:
    axes.set_xlabel("step")
    finite = np.isfinite(log.lr)
    if not finite.any():
        _say(axes, "no learning rate logged")
        return
    axes.plot(log.steps, log.lr, color="C3", label="lr")
    if (log.lr[finite] > 0).all():
        axes.set_yscale("log")
    axes.set_ylabel("learning rate")


def write_training_curves(run_dir: str | Path, out: str | Path, title: str | None = None) -> Path:
    """Read ``run_dir/log.jsonl`` and write its curves to the PNG ``out`` (atomically); returns ``out``."""
    log = read_training_log(run_dir)
    return save_png(plot_training_curves(log, title), out)
