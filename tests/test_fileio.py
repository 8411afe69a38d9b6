"""Atomic writes: the target is either the old file or the whole new one, never a torn one."""

from __future__ import annotations

import os
import stat

import pytest

from vtr.fileio import atomic_write, atomic_write_json, atomic_write_text


def test_write_replaces_whole_file_with_usual_mode(tmp_path):
    target = tmp_path / "sub" / "a.json"
    atomic_write_json(target, {"a": 1})
    atomic_write_json(target, {"b": 2})
    assert target.read_text() == '{\n  "b": 2\n}\n'
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask
    assert [p.name for p in target.parent.iterdir()] == ["a.json"]  # no temporary left behind


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "a.txt"
    atomic_write_text(target, "old")

    def half_then_crash(tmp):
        tmp.write_text("half of the new conte")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(target, half_then_crash)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]
