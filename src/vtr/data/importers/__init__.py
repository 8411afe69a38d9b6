"""Importers from the field's official annotation files to vtr's data set format (``vtr data import``).

Each importer reads one data set's own files (MSR-VTT's JSON and split CSVs, MSVD's pickle and split
lists), leaves the videos where they are, and writes ``annotations.jsonl`` into a folder from which every
video is reachable by a relative path.

    >>> from vtr.data.importers import import_msrvtt
    >>> import_msrvtt("data/msrvtt", split="9k").format_text()  # doctest: +SKIP
"""

from __future__ import annotations

from vtr.data.importers.common import Entry, ImportSummary, holdout, write_dataset
from vtr.data.importers.msrvtt import import_msrvtt
from vtr.data.importers.msvd import import_msvd
from vtr.data.importers.safe_pickle import load_plain_pickle

__all__ = ["Entry", "ImportSummary", "holdout", "import_msrvtt", "import_msvd", "load_plain_pickle", "write_dataset"]
