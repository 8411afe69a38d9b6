"""Importers from the field's official annotation files to vtr's data set format (``vtr data import``).

Each importer reads one data set's own files (MSR-VTT's JSON and split CSVs, MSVD's pickle and split
lists, DiDeMo's and ActivityNet Captions' JSON, LSMDC's tab-separated files), leaves the videos where they
are, and writes ``annotations.jsonl`` into a folder from which every video is reachable by a relative path.
DiDeMo and ActivityNet Captions are imported for paragraph-to-video retrieval: one caption a video.

    >>> from vtr.data.importers import import_msrvtt
    >>> import_msrvtt("data/msrvtt", split="9k").format_text()  # doctest: +SKIP
"""

from __future__ import annotations

from vtr.data.importers.activitynet import import_activitynet
from vtr.data.importers.common import Entry, ImportSummary, holdout, join_paragraph, write_dataset
from vtr.data.importers.didemo import import_didemo
from vtr.data.importers.lsmdc import import_lsmdc
from vtr.data.importers.msrvtt import import_msrvtt
from vtr.data.importers.msvd import import_msvd
from vtr.data.importers.safe_pickle import load_plain_pickle

__all__ = [
    "Entry",
    "ImportSummary",
    "holdout",
    "import_activitynet",
    "import_didemo",
    "import_lsmdc",
    "import_msrvtt",
    "import_msvd",
    "join_paragraph",
    "load_plain_pickle",
    "write_dataset",
]
