"""``vtr report``: one HTML page about a run: its config, its metrics on a split, its training curves, retrieval cases
and cross-attention maps of a test query or two.

The folder holds ``index.html``, the PNGs it shows and ``metrics.json`` (the numbers of ``vtr eval --json``). The page
needs nothing else: no script, no web font, no network; every caption, path and config value in it is escaped.
"""

from __future__ import annotations

import datetime
import html
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vtr.errors import CheckpointError, TaggerUnavailableError
from vtr.fileio import atomic_write_json, atomic_write_text
from vtr.viz.cases import Case

logger = logging.getLogger(__name__)

REPORT_FILE = "index.html"
CURVES_FILE = "curves.png"
CASES_FILE = "cases.png"
METRICS_FILE = "metrics.json"
METRIC_COLUMNS = ("R@1", "R@5", "R@10", "MdR", "MnR")
DIRECTIONS = (("t2v", "text-to-video"), ("v2t", "video-to-text"))

_STYLE = """
body { font-family: sans-serif; max-width: 1200px; margin: 2em auto; padding: 0 1em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 0.5em 0; } td, th { padding: 0.2em 0.8em; border: 1px solid #ddd; }
th { background: #f4f4f4; text-align: left; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
img { max-width: 100%; border: 1px solid #eee; } pre { background: #f8f8f8; padding: 0.8em; overflow-x: auto; }
.note { color: #666; } .success { color: #187a2f; } .failure { color: #b3261e; }
"""


@dataclass
class ExplainedQuery:
    """An explain figure of the report: the query, its video, and what the heads removed."""

    image: str  # file name of the PNG, next to index.html
    caption: str
    video: str
    similarity: float
    heads: list[dict[str, Any]]  # HeadAttention.to_json() of each head
    note: str | None = None


@dataclass
class ReportContent:
    """Everything the page shows; :func:`render_report` turns it into HTML (pure, so that it can be tested alone).

    Attributes:
        run: the run folder.
        data_root: the data set folder evaluated.
        split: the split evaluated.
        checkpoint: which weights.
        config: the run's resolved config as a nested dict.
        metrics: the metrics of :func:`vtr.evaluate.runner.evaluate_run`.
        curves: file name of the training curves PNG, or None (and ``curves_note`` says why).
        cases: the retrieval cases drawn, with ``cases_image`` and the video names.
        explained: the explain figures.
    """

    run: str
    data_root: str
    split: str
    checkpoint: str
    config: dict[str, Any]
    metrics: dict[str, Any]
    curves: str | None = None
    curves_note: str | None = None
    cases: list[Case] = field(default_factory=list)
    cases_image: str | None = None
    video_names: list[str] = field(default_factory=list)
    explained: list[ExplainedQuery] = field(default_factory=list)
    explain_note: str | None = None
    created: str = ""


def _e(value: Any) -> str:
    """``value`` as HTML-escaped text (quotes too: it may land in an attribute)."""
    return html.escape(str(value), quote=True)


def _config_rows(config: dict[str, Any]) -> list[tuple[str, str]]:
    model, data, train = config.get("model", {}), config.get("data", {}), config.get("train", {})
    video, text = model.get("video", {}), model.get("text", {})
    heads = ", ".join(
        f"{h.get('name')} (weight {h.get('weight')}{', ' + json.dumps(h['params']) if h.get('params') else ''})"
        for h in model.get("heads", [])
    )
    video_desc = (
        f"{video.get('name')}: pretrained {video.get('pretrained')}"
        if video.get("pretrained")
        else f"{video.get('name')}: {video.get('num_hidden_layers')} layers x {video.get('hidden_size')}, "
        f"patch {video.get('patch_size')}, stem {video.get('stem', 'patch')}"
    )
    text_desc = text.get("pretrained") or f"{text.get('model_type')}, {text.get('num_hidden_layers')} layers (random)"
    return [
        ("video tower", video_desc),
        ("text tower", f"{text_desc}, pooling {text.get('pooling')}, freeze_layers {text.get('freeze_layers')}"),
        ("embedding", f"{model.get('embed_dim')}-d, video pooling {model.get('video_pooling')}"),
        ("heads", heads),
        ("frames", f"{data.get('num_frames')} of {data.get('image_size')} px"),
        ("training", f"{train.get('epochs')} epochs, batch {train.get('batch_size')}, lr {train.get('lr')}"),
        ("data set", str(data.get("root"))),
    ]


def _metrics_table(metrics: dict[str, Any]) -> str:
    header = "".join(f"<th>{_e(c)}</th>" for c in METRIC_COLUMNS)
    rows = [f"<tr><th></th>{header}</tr>"]
    for key, label in DIRECTIONS:
        if key in metrics:
            cells = "".join(f'<td class="num">{metrics[key][c]:.1f}</td>' for c in METRIC_COLUMNS)
            rows.append(f"<tr><th>{_e(label)}</th>{cells}</tr>")
    if "rsum" in metrics:
        rows.append(f'<tr><th>R-sum</th><td class="num">{metrics["rsum"]:.1f}</td></tr>')
    table = "<table>" + "".join(rows) + "</table>"
    failures = metrics.get("failures") or []
    if failures:
        items = "".join(f"<li>{_e(f)}</li>" for f in failures)
        note = f"{len(failures)} video(s) could not be decoded and were scored as blank:"
        table += f'<p class="note">{note}</p><ul>{items}</ul>'
    return table


def _cases_table(content: ReportContent) -> str:
    rows = ["<tr><th>query</th><th>caption</th><th>right video</th><th>rank</th><th>score</th><th>top video</th></tr>"]
    names = content.video_names
    for case in content.cases:
        verdict = "success" if case.success else "failure"
        top_video, top_score = case.top[0] if case.top else (case.video, case.score)
        rows.append(
            f'<tr><td class="num">{case.query}</td><td class="{verdict}">{_e(case.caption)}</td>'
            f'<td>{_e(names[case.video])}</td><td class="num">{case.rank}</td><td class="num">{case.score:.3f}</td>'
            f"<td>{_e(names[top_video])} ({top_score:.3f})</td></tr>"
        )
    return "<table>" + "".join(rows) + "</table>"


def _explained_html(item: ExplainedQuery) -> str:
    parts = [
        f"<h3>&ldquo;{_e(item.caption)}&rdquo;</h3>",
        f"<p>video {_e(item.video)}; similarity {item.similarity:.3f}</p>",
    ]
    if item.heads:
        rows = "".join(
            f"<tr><td>{_e(h['head'])}</td><td>{_e(', '.join(h['words_removed']) or '(none)')}</td>"
            f"<td>{_e(h['query'])}</td>"
            f'<td class="num">{"" if h["word_score"] is None else format(h["word_score"], ".3f")}</td></tr>'
            for h in item.heads
        )
        parts.append(
            f"<table><tr><th>head</th><th>words removed</th><th>query</th><th>recovery cosine</th></tr>{rows}</table>"
        )
    if item.note:
        parts.append(f'<p class="note">{_e(item.note)}</p>')
    parts.append(f'<img src="{_e(item.image)}" alt="cross-attention of the heads for {_e(item.caption)}">')
    return "\n".join(parts)


def render_report(content: ReportContent) -> str:
    """The HTML page of a report (a complete document; every value from the run or the data is escaped)."""
    import yaml

    run_name = Path(content.run).name or content.run
    config_rows = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in _config_rows(content.config))
    config_yaml = yaml.safe_dump(content.config, sort_keys=False)
    sections = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>vtr report: {_e(run_name)}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>vtr report: {_e(run_name)}</h1>",
        (
            f'<p class="note">run {_e(content.run)}; weights {_e(content.checkpoint)}; evaluated on split '
            f"{_e(content.split)} of {_e(content.data_root)}; written {_e(content.created)}</p>"
        ),
        "<h2>Configuration</h2>",
        f"<table>{config_rows}</table>",
        f"<details><summary>full config</summary><pre>{_e(config_yaml)}</pre></details>",
        f"<h2>Metrics ({_e(content.split)})</h2>",
        (
            '<p class="note">Global embeddings, cosine similarity; ties count for the right item; the same numbers '
            f"as <code>vtr eval --split {_e(content.split)}</code> (also in {METRICS_FILE}).</p>"
        ),
        _metrics_table(content.metrics),
        "<h2>Training curves</h2>",
    ]
    if content.curves:
        sections.append(f'<img src="{_e(content.curves)}" alt="training curves">')
    else:
        sections.append(f'<p class="note">{_e(content.curves_note or "no training log")}</p>')
    sections.append("<h2>Retrieval cases</h2>")
    if content.cases_image:
        sections.append(
            '<p class="note">Queries chosen deterministically: successes (right video first) spread over the split, '
            "then failures. Each panel is the middle frame of a video, with its rank and score.</p>"
        )
        sections.append(f'<img src="{_e(content.cases_image)}" alt="retrieval cases">')
        sections.append(_cases_table(content))
    sections.append("<h2>Cross-attention of the fine-grained heads</h2>")
    sections.append(
        '<p class="note">For a query and its right video: the words each head removes from the caption, and where '
        "its query (the caption without them) attends over each frame, last layer, averaged over attention heads "
        "and query tokens.</p>"
    )
    if content.explain_note:
        sections.append(f'<p class="note">{_e(content.explain_note)}</p>')
    sections.extend(_explained_html(item) for item in content.explained)
    sections.append("</body></html>")
    return "\n".join(sections) + "\n"


def write_report(
    run_dir: str | Path,
    out_dir: str | Path,
    data_root: str | None = None,
    split: str = "test",
    checkpoint: str = "best",
    device: str = "auto",
    top_k: int = 5,
    cases: int = 3,
    explained: int = 2,
    progress: bool = True,
) -> Path:
    """Evaluate a run on a split and write the report folder; returns the path of ``index.html``.

    Args:
        run_dir: a run folder written by ``vtr train`` (or :func:`vtr.models.save_model`).
        out_dir: the report folder (created; files of an earlier report there are replaced).
        data_root: the data set (default: the run's ``data.root``).
        split: the split to evaluate and draw cases from.
        checkpoint: ``"best"`` or ``"last"`` (or a ``.safetensors`` name).
        device: ``auto``, ``cpu``, ``cuda``, ...
        top_k: videos shown per retrieval case.
        cases: successes and, as many again, failures to show (fewer when the split has fewer).
        explained: explain figures: the first success and the first failure, up to this many.
        progress: progress bars while encoding.

    Raises:
        CheckpointError: the run folder is missing or incomplete; DataFormatError for a bad data set or split.
    """
    from vtr.evaluate.runner import evaluate_run

    run = Path(run_dir)
    if not run.is_dir():
        raise CheckpointError(f"run folder {run} does not exist")
    metrics, encoded = evaluate_run(
        str(run), data_root=data_root, split=split, checkpoint=checkpoint, device=device, progress=progress
    )
    return write_evaluated_report(
        run, out_dir, metrics, encoded, data_root, split, checkpoint, device, top_k, cases, explained
    )


def write_evaluated_report(
    run_dir: str | Path,
    out_dir: str | Path,
    metrics: dict[str, Any],
    encoded: Any,
    data_root: str | None = None,
    split: str = "test",
    checkpoint: str = "best",
    device: str = "auto",
    top_k: int = 5,
    cases: int = 3,
    explained: int = 2,
) -> Path:
    """:func:`write_report` for a split that is evaluated already (``vtr demo`` has the metrics and embeddings).

    Args:
        metrics: what :func:`vtr.evaluate.runner.evaluate_run` returned for ``run_dir`` on ``split``.
        encoded: the :class:`vtr.evaluate.runner.EncodedSplit` it returned with them.
        The rest: as :func:`write_report`.
    """
    from vtr.config import to_dict
    from vtr.models import load_run
    from vtr.train.loop import resolve_device
    from vtr.viz.cases import write_retrieval_cases
    from vtr.viz.curves import write_training_curves

    run = Path(run_dir)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / METRICS_FILE, metrics)
    model = load_run(run, checkpoint=checkpoint, device=str(resolve_device(device)))
    content = ReportContent(
        run=str(run),
        data_root=str(data_root or model.config.data.root),
        split=split,
        checkpoint=checkpoint,
        config=to_dict(model.config),
        metrics=metrics,
        video_names=[record.video for record in encoded.records],
        created=datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
    )
    try:
        write_training_curves(run, out / CURVES_FILE, title=run.name)
        content.curves = CURVES_FILE
    except CheckpointError as error:
        content.curves_note = f"no training curves: {error}"
    _, content.cases = write_retrieval_cases(encoded, out / CASES_FILE, cases, cases, top_k)
    content.cases_image = CASES_FILE
    content.explained, content.explain_note = _explain_cases(model, encoded, content.cases, explained, out)
    return atomic_write_text(out / REPORT_FILE, render_report(content))


def _explain_cases(
    model: Any, encoded: Any, cases: Sequence[Case], count: int, out: Path
) -> tuple[list[ExplainedQuery], str | None]:
    """Explain figures for the first success and the first failure (then further cases), up to ``count``."""
    from vtr.errors import VideoDecodeError
    from vtr.viz.explain import explain, write_explanation

    ordered = [c for c in cases if c.success][:1] + [c for c in cases if not c.success][:1]
    ordered += [c for c in cases if c not in ordered]
    items: list[ExplainedQuery] = []
    for case in ordered[:count]:
        record = encoded.records[case.video]
        try:
            explanation = explain(model, record.path, case.caption)
        except VideoDecodeError as error:
            logger.warning("no explain figure for %s: %s", record.video, error)
            continue
        except TaggerUnavailableError as error:
            return items, f"no cross-attention maps: {error}"
        image = f"explain-{len(items) + 1}.png"
        write_explanation(explanation, out / image)
        items.append(
            ExplainedQuery(
                image=image,
                caption=case.caption,
                video=record.video,
                similarity=explanation.similarity,
                heads=[head.to_json() for head in explanation.heads],
                note=explanation.note,
            )
        )
    return items, None
