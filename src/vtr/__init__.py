"""vtr: text-to-video retrieval.

The library (models, losses, data, metrics, index) is importable without the command-line app; the
``vtr`` console script in :mod:`vtr.cli` is a thin layer over it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:  # pragma: no cover
    from vtr.index.searcher import Searcher

__all__ = ["Searcher", "__version__"]


def __getattr__(name: str) -> Any:
    # Lazy: importing vtr must not pull in FAISS, torch or transformers.
    if name == "Searcher":
        from vtr.index.searcher import Searcher

        return Searcher
    raise AttributeError(f"module 'vtr' has no attribute {name!r}")
