"""Re-ranking by the fine-grained heads (``vtr eval --rerank``): the heads' pair scores, the shortlist, the reranked
order, the batched second pass against pairs scored one by one, and the CLI section next to unchanged plain metrics.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from test_models import CAPTIONS, make_batch, tiny_config
from tiny_configs import TINY_MODEL

from vtr.cli import main
from vtr.config import load_config
from vtr.data import EvalVideoDataset, eval_queries, read_annotations
from vtr.errors import ConfigError
from vtr.evaluate.metrics import t2v_ranks
from vtr.evaluate.rerank import (
    RerankOptions,
    rerank_heads,
    rerank_pair_scores,
    reranked_similarity,
    shortlist,
)
from vtr.models import build_model, load_run, save_model
from vtr.train.tagging import CaptionPartsLookup


def encoded_inputs(model: Any, batch: dict[str, Any]) -> Any:
    video = model.encode_video(batch["frames"], batch["frame_mask"])
    text = model.encode_text(batch["input_ids"], batch["attention_mask"])
    return model.head_inputs(batch, video, text)


@torch.no_grad()
def test_word_heads_score_a_pair_by_the_removed_words_recovered_from_the_video() -> None:
    torch.manual_seed(0)
    model = build_model(tiny_config()).eval()
    inputs = encoded_inputs(model, make_batch(model, CAPTIONS))
    for name in ("noun", "verb"):
        head = model.head(name)
        scores = head.pair_similarity(inputs)
        valid = inputs.batch[f"{name}_valid"]
        rows = valid.nonzero().squeeze(1)
        x, y = head.embed_pairs(inputs, rows)
        assert scores.shape == (len(CAPTIONS),)
        assert torch.allclose(scores[rows], (x * y).sum(-1), atol=1e-6)
        assert scores[~valid].tolist() == [0.0]  # "very red and blue": nothing to recover
        # A pair's score depends on its own video: pairing caption 0 with another clip changes it.
        swapped = make_batch(model, CAPTIONS)
        swapped["frames"] = swapped["frames"].flip(0)
        assert not torch.allclose(head.pair_similarity(encoded_inputs(model, swapped))[rows], scores[rows])


@torch.no_grad()
def test_the_graph_head_scores_each_pair_as_its_diagonal_of_the_batch_grid() -> None:
    torch.manual_seed(0)
    model = build_model(tiny_config([{"name": "global"}, {"name": "fcanet"}])).eval()
    head = model.head("fcanet")
    torch.nn.init.normal_(head.graph.weight.weight, std=0.3)  # a trained-looking graph, not the identity
    inputs = encoded_inputs(model, make_batch(model, CAPTIONS))
    seg, seg_mask, phr, phr_mask = head.units(inputs)
    grid, _, _ = head.pair_scores(seg, seg_mask, phr, phr_mask)
    for chunk in (2, 16):  # chunks that split the batch and one that holds it
        assert torch.allclose(head.pair_similarity(inputs, chunk=chunk), grid.diagonal(), atol=1e-6)


def test_shortlist_takes_the_best_videos_first_and_breaks_ties_by_index() -> None:
    sim = np.array([[0.1, 0.5, 0.5, 0.9], [0.3, 0.2, 0.1, 0.0]])
    assert shortlist(sim, 3).tolist() == [[3, 1, 2], [0, 1, 2]]
    assert shortlist(sim, 10).shape == (2, 4)  # deeper than the split: every video


def test_reranking_reorders_the_shortlist_and_keeps_the_rest_in_order() -> None:
    sim = np.array([[0.9, 0.8, 0.7, 0.6, 0.5]])
    candidates = shortlist(sim, 3)  # videos 0, 1, 2
    heads = {"noun": np.array([[0.0, 0.0, 1.0]]), "verb": np.array([[0.0, 0.5, 0.0]])}
    scores = reranked_similarity(sim, candidates, heads, weight=0.3)
    # Combined: 0.9, 0.8 + 0.15 = 0.95, 0.7 + 0.3 = 1.0; then videos 3 and 4 as before.
    assert np.argsort(-scores[0]).tolist() == [2, 1, 0, 3, 4]
    # However large a head's score, a video outside the shortlist never overtakes one inside it.
    far = reranked_similarity(sim, candidates, {"noun": np.array([[-50.0, -50.0, -50.0]])}, weight=1.0)
    assert np.argsort(-far[0]).tolist() == [0, 1, 2, 3, 4]
    # Weight 0: the plain ranking, query by query.
    rng = np.random.default_rng(0)
    sim = rng.standard_normal((6, 9))
    query_video = rng.integers(0, 9, size=6)
    candidates = shortlist(sim, 4)
    zero = reranked_similarity(sim, candidates, {"noun": rng.standard_normal((6, 4))}, weight=0.0)
    assert t2v_ranks(zero, query_video).tolist() == t2v_ranks(sim, query_video).tolist()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"depth": 0}, "depth must be a positive integer"),
        ({"depth": True}, "depth must be a positive integer"),
        ({"weight": -0.1}, "weight must be a finite number >= 0"),
        ({"weight": float("nan")}, "weight must be a finite number >= 0"),
        ({"heads": ()}, "at least one head"),
    ],
)
def test_bad_options_are_refused(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        RerankOptions(**kwargs)


def test_the_heads_that_rerank_are_checked() -> None:
    torch.manual_seed(0)
    model = build_model(tiny_config())
    assert rerank_heads(model) == ["noun", "verb"]
    assert rerank_heads(model, ["verb", "verb"]) == ["verb"]
    with pytest.raises(ConfigError, match="'global' cannot score a caption against a video"):
        rerank_heads(model, ["global"])
    with pytest.raises(ConfigError, match="'fcanet' is not in this run"):
        rerank_heads(model, ["fcanet"])
    with pytest.raises(ConfigError, match="no head of this run can re-rank"):
        rerank_heads(build_model(tiny_config([{"name": "global"}])))


@pytest.fixture(scope="module")
def tiny_run(tiny_eval_data, tmp_path_factory) -> Path:
    """A randomly initialised run of the paper's heads plus fcanet: the wiring is checked, not the quality."""
    folder = tmp_path_factory.mktemp("run")
    torch.manual_seed(0)
    heads = "model.heads=[{name: global}, {name: noun, params: {depth: 1}}, {name: verb}, {name: fcanet}]"
    config = load_config(None, [*TINY_MODEL, f"data.root={tiny_eval_data}", heads])
    model = build_model(config)
    torch.nn.init.normal_(model.head("fcanet").graph.weight.weight, std=0.3)
    save_model(model, folder, "best")
    return folder


@torch.no_grad()
def test_the_batched_second_pass_gives_each_pair_its_own_score(tiny_run, tiny_eval_data) -> None:
    model = load_run(tiny_run).eval()
    trains = [param.requires_grad for param in model.text_encoder.parameters()]
    data = model.config.data
    records = read_annotations(tiny_eval_data, split="test")
    captions, _ = eval_queries(records)
    rng = np.random.default_rng(0)
    candidates = np.stack([rng.permutation(len(records))[:3] for _ in captions])  # any video, any order
    parts = CaptionPartsLookup.for_dataset(model, records, tiny_eval_data, tiny_run, progress=False)
    heads = ["noun", "verb", "fcanet"]
    texts_read: list[int] = []
    hook = model.text_encoder.register_forward_hook(lambda module, args, out: texts_read.append(args[0].shape[0]))
    got = rerank_pair_scores(model, records, data, captions, candidates, heads, parts, batch_size=2, progress=False)
    hook.remove()
    # Five texts a pair (the caption, the caption without its nouns and the nouns, likewise verbs), read about once
    # per query (rows missing from the memo in one call are all read), not once for each of its 3 candidates.
    assert 0 < sum(texts_read) < 5 * candidates.size / 2
    assert [param.requires_grad for param in model.text_encoder.parameters()] == trains  # restored after the memo
    dataset = EvalVideoDataset(records, data.num_frames, data.image_size, data.mean, data.std)
    for query, video in [(0, 0), (1, 2), (len(captions) - 1, 1)]:
        clip = dataset[int(candidates[query, video])]
        batch = dict(model.tokenize([captions[query]]))
        for name in heads:
            batch.update(model.head(name).text_batch([captions[query]], parts([captions[query]]), model.tokenize))
        batch.update(frames=clip["frames"][None], frame_mask=clip["frame_mask"][None])
        inputs = encoded_inputs(model, batch)
        for name in heads:
            expected = model.head(name).pair_similarity(inputs).item()
            assert got[name][query, video] == pytest.approx(expected, abs=1e-5)


def _eval(run: Path, *extra: str) -> list[str]:
    return ["eval", str(run), "--split", "test", "--no-progress", "--json", *extra]


def test_eval_rerank_adds_a_labelled_section_and_leaves_the_plain_metrics(tiny_run, capsys) -> None:
    assert main(_eval(tiny_run)) == 0
    plain = json.loads(capsys.readouterr().out)
    assert main(_eval(tiny_run, "--rerank", "3", "--rerank-heads", "noun,fcanet", "--rerank-weight", "2")) == 0
    out = json.loads(capsys.readouterr().out)
    assert {key: value for key, value in out.items() if key != "postprocessed"} == plain
    section = out["postprocessed"]["rerank"]
    assert set(section) == {"method", "uses", "params", "t2v"}
    assert section["params"]["depth"] == 3 and section["params"]["weight"] == 2.0
    assert section["params"]["heads"] == "noun,fcanet"
    # R@1 and R@3 can only move within the shortlist of 3: R@5 and R@10 stay as they were.
    assert section["t2v"]["R@5"] == plain["t2v"]["R@5"] and section["t2v"]["R@10"] == plain["t2v"]["R@10"]
    # Weight 0 re-ranks nothing.
    assert main(_eval(tiny_run, "--rerank", "3", "--rerank-weight", "0")) == 0
    zero = json.loads(capsys.readouterr().out)["postprocessed"]["rerank"]
    assert zero["t2v"] == plain["t2v"] and zero["params"]["heads"] == "noun,verb,fcanet"


def test_eval_rerank_errors_are_one_line_and_come_before_encoding(tiny_run, tmp_path, capsys) -> None:
    assert main(_eval(tiny_run, "--rerank", "3", "--rerank-heads", "global")) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("vtr: error:") and "\n" not in err and "cannot score a caption" in err
    assert main(_eval(tmp_path / "missing-run", "--rerank", "-2")) == 1
    assert "depth must be a positive integer" in capsys.readouterr().err
