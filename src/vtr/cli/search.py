"""``vtr search "TEXT" --db INDEX``: the videos of an index that best match a text, with the matching moment."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the index pulls in torch and FAISS: import it when the command runs, not for `vtr --help`
    from vtr.index.searcher import SearchResult

MAX_K = 100  # the same bound as vtr.index.searcher.MAX_K, which a test keeps in step

# The fields of one result in the JSON output, in order.
JSON_FIELDS = ("rank", "score", "path", "start", "end", "thumbnail")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``search`` subcommand."""
    parser = subparsers.add_parser(
        "search",
        help="search an index by text",
        description=(
            "The videos that best match TEXT, best first, with the best-matching moment (start and end in "
            "seconds) and its thumbnail. A video scores the best similarity of its whole-video and moment "
            "embeddings. The index remembers its model, so --model is needed only to use a copy of it elsewhere."
        ),
    )
    parser.add_argument("text", metavar="TEXT", help="what to look for, in words")
    parser.add_argument("--db", required=True, type=Path, metavar="INDEX", help="index folder built by `vtr index`")
    parser.add_argument("-k", type=int, default=10, help=f"number of results, 1 to {MAX_K} (default 10)")
    parser.add_argument(
        "--model",
        action="append",
        help="the model that built the index, if it has moved (default: as recorded); once per model of an index "
        "built with several",
    )
    parser.add_argument("--device", default="cpu", help="torch device for the text model (default cpu)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Open the index, search, print the results."""
    from vtr.cli.index import model_argument
    from vtr.index.searcher import Searcher

    with Searcher(args.db, model=model_argument(args.model), device=args.device) as searcher:
        results = searcher.search(args.text, k=args.k)
    if args.json:
        print(json.dumps(results_json(args.text, results), indent=2))
    else:
        print(format_results(results))
    return 0


def results_json(query: str, results: list[SearchResult]) -> dict:
    """``{"query": ..., "results": [{"rank", "score", "path", "start", "end", "thumbnail"}, ...]}``."""
    return {
        "query": query,
        "results": [{key: getattr(result, key) for key in JSON_FIELDS} for result in results],
    }


def format_results(results: list[SearchResult]) -> str:
    """One line per result: rank, score, moment, path, thumbnail."""
    if not results:
        return "no results: the index is empty"
    lines = []
    for r in results:
        moment = f"{_clock(r.start)}-{_clock(r.end)}"
        lines.append(f"{r.rank:>3}  {r.score:6.3f}  {moment:>15}  {r.path}")
        if r.thumbnail:
            lines.append(f"{'':>3}  {'':>6}  {'':>15}  thumbnail: {r.thumbnail}")
    return "\n".join(lines)


def _clock(seconds: float) -> str:
    minutes, secs = divmod(max(0.0, seconds), 60.0)
    hours, minutes = divmod(int(minutes), 60)
    return f"{hours}:{minutes:02d}:{secs:04.1f}" if hours else f"{minutes}:{secs:04.1f}"
