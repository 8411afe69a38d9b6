"""CLI conventions: every subcommand has --help, usage errors exit 2, the parser loads without torch."""

from __future__ import annotations

import subprocess
import sys

import pytest

from vtr.cli import _SUBCOMMAND_MODULES, main

SUBCOMMANDS = [
    "demo",
    "data",
    "data check",
    "data synth",
    "data import",
    "data import msrvtt",
    "data import msvd",
    "data import didemo",
    "data import activitynet",
    "data import lsmdc",
    "train",
    "eval",
    "ablate",
    "metrics",
    "index",
    "search",
    "serve",
    "explain",
    "report",
]


def test_top_level_help_lists_every_subcommand(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for name in _SUBCOMMAND_MODULES:
        assert name in out


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_every_subcommand_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([*command.split(), "--help"])
    assert exit_info.value.code == 0
    assert "usage: vtr " + command in capsys.readouterr().out


def test_no_subcommand_prints_help_and_exits_2(capsys):
    assert main([]) == 2
    assert "usage: vtr" in capsys.readouterr().out


def test_building_the_parser_imports_neither_torch_nor_faiss():
    code = "import sys, vtr.cli; vtr.cli.build_parser(); print('torch' in sys.modules, 'faiss' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_search_cli_bound_matches_the_searcher():
    from vtr.cli.search import MAX_K as CLI_MAX_K
    from vtr.index.searcher import MAX_K

    assert CLI_MAX_K == MAX_K
