"""Retrieval cases: for a few text queries of a split, the top-k videos and where the right one ranked.

Queries are chosen deterministically from the similarity matrix: some successes (the right video at rank 1) and
some failures, spread over the split and over distinct videos. Ranks follow :mod:`vtr.evaluate.metrics` (ties count
in favour of the right video), so a case's rank is the one that R@k counts.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vtr.errors import VideoDecodeError
from vtr.evaluate.metrics import t2v_ranks
from vtr.viz.figure import hide_ticks, new_figure, plain, save_png
from vtr.viz.frames import middle_frame

CELL = 1.6  # inches per video panel (square)
CAPTION_WIDTH = 2.8  # inches for the caption column
TITLE_HEIGHT = 0.5
SUCCESS_COLOUR, FAILURE_COLOUR = "tab:green", "tab:red"


@dataclass
class Case:
    """One query and what the model returned for it.

    Attributes:
        query: index of the query (caption) in the split's query list.
        caption: the caption.
        video: index of the video it describes (the ground truth).
        rank: 1-based rank of that video (1 + the videos scoring strictly higher).
        score: its similarity.
        top: the top-k ``(video index, score)``, best first; ties put the ground truth first, as the rank does.
    """

    query: int
    caption: str
    video: int
    rank: int
    score: float
    top: list[tuple[int, float]]

    @property
    def success(self) -> bool:
        """The right video came first."""
        return self.rank == 1


def _spread(candidates: np.ndarray, query_video: np.ndarray, count: int) -> list[int]:
    """``count`` of ``candidates`` (query indices, in the order given), evenly spaced from the first to the last,
    preferring one query per video."""
    if count <= 0 or not len(candidates):
        return []
    _, first = np.unique(query_video[candidates], return_index=True)
    distinct = candidates[np.sort(first)]  # the first query of each video, in the order given
    pool = distinct if len(distinct) >= count else candidates
    picks = np.unique(np.linspace(0, len(pool) - 1, min(count, len(pool))).round().astype(int))
    return [int(q) for q in pool[picks]]


def select_cases(
    sim: np.ndarray, query_video: np.ndarray, captions: list[str], successes: int = 3, failures: int = 3, top_k: int = 5
) -> list[Case]:
    """Successes spread evenly over the split, then failures spread evenly from the worst rank to the mildest.

    Args:
        sim: similarity ``[n_queries, n_videos]``.
        query_video: ``[n_queries]`` video index of each query.
        captions: the queries' text.
        successes: how many queries whose video ranked first.
        failures: how many queries whose video did not.
        top_k: videos listed per case (at most ``n_videos``).
    """
    ranks = t2v_ranks(sim, query_video)
    chosen = _spread(np.flatnonzero(ranks == 1), query_video, successes)
    missed = np.flatnonzero(ranks > 1)
    missed = missed[np.lexsort((missed, -ranks[missed]))]  # worst rank first, then query order
    chosen += _spread(missed, query_video, failures)
    top_k = min(top_k, sim.shape[1])
    cases = []
    for q in chosen:
        row, truth = sim[q], int(query_video[q])
        is_truth = np.arange(len(row)) == truth
        order = np.lexsort((np.arange(len(row)), ~is_truth, -row))[:top_k]  # score desc, truth first among ties
        cases.append(
            Case(
                query=q,
                caption=captions[q],
                video=truth,
                rank=int(ranks[q]),
                score=float(row[truth]),
                top=[(int(v), float(row[v])) for v in order],
            )
        )
    return cases


def plot_retrieval_cases(cases: list[Case], thumbnails: dict[int, np.ndarray | None], names: list[str]) -> Any:
    """A grid, one row per case: the caption (labelled success or failure), the top-k videos as thumbnails with
    rank and score, the right video outlined, and, when it ranked below the top k, one more panel with it at its rank.

    Args:
        cases: from :func:`select_cases`.
        thumbnails: video index -> uint8 ``[h, w, 3]`` image (None: undecodable, drawn as a grey panel).
        names: video index -> the name to print (e.g. its path in the data set).

    Returns:
        The ``matplotlib.figure.Figure``: ``CAPTION_WIDTH + CELL * (k + extra)`` inches wide (``extra`` 1 when a
        case ranked below the top k) and ``TITLE_HEIGHT + CELL * len(cases)`` high (at least one row).
    """
    top_k = max((len(case.top) for case in cases), default=0)
    extra = int(any(case.rank > top_k for case in cases))
    rows = max(len(cases), 1)
    figure = new_figure(CAPTION_WIDTH + CELL * (top_k + extra), TITLE_HEIGHT + CELL * rows)
    figure.suptitle("retrieval cases: top videos per query (middle frame), the right video outlined", fontsize="medium")
    ratios = [CAPTION_WIDTH / CELL] + [1.0] * (top_k + extra)
    axes = figure.subplots(rows, 1 + top_k + extra, squeeze=False, gridspec_kw={"width_ratios": ratios})
    if not cases:
        for ax in axes.flat:
            ax.axis("off")
        axes[0, 0].text(0, 0.5, "no queries to show", va="center")
        return figure
    for row, case in zip(axes, cases, strict=True):
        _caption_cell(row[0], case)
        for column, (video, score) in enumerate(case.top, start=1):
            _video_cell(
                row[column], thumbnails.get(video), f"#{column}  {score:.3f}", names[video], video == case.video
            )
        for ax in row[1 + len(case.top) :]:
            ax.axis("off")
        if extra and case.rank > top_k:
            _video_cell(row[-1], thumbnails.get(case.video), f"#{case.rank}  {case.score:.3f}", names[case.video], True)
    return figure


def _caption_cell(ax: Any, case: Case) -> None:
    ax.axis("off")
    verdict = "success: rank 1" if case.success else f"failure: right video at rank {case.rank}"
    colour = SUCCESS_COLOUR if case.success else FAILURE_COLOUR
    ax.text(0.0, 0.95, verdict, color=colour, fontweight="bold", fontsize="small", va="top", transform=ax.transAxes)
    wrapped = "\n".join(textwrap.wrap(plain(case.caption, 200), 34))
    ax.text(0.0, 0.78, wrapped, fontsize="small", va="top", transform=ax.transAxes)


def _video_cell(ax: Any, image: np.ndarray | None, title: str, name: str, is_truth: bool) -> None:
    if image is None:
        ax.imshow(np.full((8, 8, 3), 200, dtype=np.uint8))
        ax.text(0.5, 0.5, "undecodable", ha="center", va="center", transform=ax.transAxes, fontsize="x-small")
    else:
        ax.imshow(image, interpolation="nearest")
    hide_ticks(ax)
    ax.set_title(title, fontsize="x-small", fontweight="bold" if is_truth else "normal")
    ax.set_xlabel(plain(Path(name).name, 22), fontsize="xx-small")
    for spine in ax.spines.values():
        spine.set_visible(is_truth)
        if is_truth:
            spine.set_edgecolor(SUCCESS_COLOUR)
            spine.set_linewidth(4)


def load_thumbnails(paths: dict[int, str | Path]) -> dict[int, np.ndarray | None]:
    """The middle frame of each video (None for one that cannot be decoded)."""
    thumbnails: dict[int, np.ndarray | None] = {}
    for index, path in paths.items():
        try:
            thumbnails[index] = middle_frame(path)
        except VideoDecodeError:
            thumbnails[index] = None
    return thumbnails


def write_retrieval_cases(
    encoded: Any, out: str | Path, successes: int = 3, failures: int = 3, top_k: int = 5
) -> tuple[Path, list[Case]]:
    """Choose cases of an encoded split (:class:`vtr.evaluate.runner.EncodedSplit`), draw them, write the PNG.

    Returns:
        ``out`` and the cases drawn.
    """
    cases = select_cases(encoded.similarity(), encoded.query_video, encoded.captions, successes, failures, top_k)
    shown = {video for case in cases for video, _ in case.top} | {case.video for case in cases}
    thumbnails = load_thumbnails({v: encoded.records[v].path for v in sorted(shown)})
    names = [record.video for record in encoded.records]
    return save_png(plot_retrieval_cases(cases, thumbnails, names), out), cases
