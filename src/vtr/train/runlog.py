"""The JSONL log of a run: one record per optimiser step (loss terms) and one per epoch (validation metrics)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


class RunLog:
    """Appends JSON records to ``run_dir/log.jsonl``, flushed line by line so that a crash loses at most one line.

    Args:
        path: the log file; created if missing, appended to otherwise (a resumed run continues the same log).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 (kept open for the whole run)

    def write(self, record: dict[str, Any]) -> None:
        """Append one record."""
        self._handle.write(json.dumps(record, sort_keys=False) + "\n")
        self._handle.flush()

    def close(self) -> None:
        """Flush to disk and close."""
        if not self._handle.closed:
            self._handle.flush()
            os.fsync(self._handle.fileno())
            self._handle.close()


def read_log(path: str | Path) -> list[dict[str, Any]]:
    """All records of a run log; a torn last line (from a crash) is ignored."""
    records = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records
