"""Plain-text tables of retrieval metrics, laid out like the field's papers (R@1, R@5, R@10, MdR, MnR)."""

from __future__ import annotations

from typing import Any

COLUMNS = ("R@1", "R@5", "R@10", "MdR", "MnR")
DIRECTIONS = (("t2v", "text-to-video"), ("v2t", "video-to-text"))


def format_metrics_table(metrics: dict[str, Any]) -> str:
    """A small aligned table: one row per direction, then the R-sum."""
    width = max(len(label) for _, label in DIRECTIONS)
    lines = [f"{'':<{width}}  " + "  ".join(f"{c:>6}" for c in COLUMNS)]
    for key, label in DIRECTIONS:
        if key in metrics:
            row = metrics[key]
            lines.append(f"{label:<{width}}  " + "  ".join(f"{row[c]:>6.1f}" for c in COLUMNS))
    if "rsum" in metrics:
        lines.append(f"{'R-sum':<{width}}  {metrics['rsum']:>6.1f}")
    return "\n".join(lines)
