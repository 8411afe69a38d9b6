"""Plain-text tables of retrieval metrics, laid out like the field's papers (R@1, R@5, R@10, MdR, MnR)."""

from __future__ import annotations

from typing import Any

COLUMNS = ("R@1", "R@5", "R@10", "MdR", "MnR")
DIRECTIONS = (("t2v", "text-to-video"), ("v2t", "video-to-text"))
POSTPROCESSED_HEADING = (
    "post-processed (not comparable with the plain numbers above; 'uses' says what each method needs):"
)


def format_metrics_table(metrics: dict[str, Any]) -> str:
    """A small aligned table: one row per direction, then the R-sum.

    A ``"postprocessed"`` section (:func:`vtr.evaluate.postprocess_report.postprocessed_metrics`) follows the plain table,
    one labelled table per method, each row prefixed with the method's name so no number can be read as plain.
    """
    lines = _table_lines(metrics)
    postprocessed = metrics.get("postprocessed") or {}
    if postprocessed:
        lines += ["", POSTPROCESSED_HEADING]
    for name, section in postprocessed.items():
        params = ", ".join(f"{key}={_format_value(value)}" for key, value in section.get("params", {}).items())
        lines += ["", f"{name}: {section['method']}", f"{name}: {params}", f"{name}: uses {section['uses']}"]
        lines += _table_lines(section, prefix=f"{name} ")
    return "\n".join(lines)


def _table_lines(metrics: dict[str, Any], prefix: str = "") -> list[str]:
    width = max(len(prefix + label) for _, label in DIRECTIONS)
    lines = [f"{'':<{width}}  " + "  ".join(f"{c:>6}" for c in COLUMNS)]
    for key, label in DIRECTIONS:
        if key in metrics:
            row = metrics[key]
            lines.append(f"{prefix + label:<{width}}  " + "  ".join(f"{row[c]:>6.1f}" for c in COLUMNS))
    if "rsum" in metrics:
        lines.append(f"{prefix + 'R-sum':<{width}}  {metrics['rsum']:>6.1f}")
    return lines


def _format_value(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)
