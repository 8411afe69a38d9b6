"""FCA-Net's segment-phrase graphs: windows and segments, the graph convolution against a dense adjacency, link
targets, the loss as alignment plus balanced link prediction, masks, gathering, gradients and config errors."""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torch.nn.functional as F
from test_models import CAPTIONS, make_batch, tiny_config

from vtr.errors import ConfigError
from vtr.losses import multi_positive_info_nce
from vtr.models import build_model
from vtr.models.heads import HeadInputs
from vtr.models.heads.graph_alignment import (
    PairGraphEncoder,
    chain_adjacency,
    link_targets,
    segments,
    window_means,
)
from vtr.models.heads.hierarchical import max_mean_similarity


def test_window_means_average_the_real_units_of_each_window() -> None:
    units = torch.arange(2 * 5 * 2, dtype=torch.float32).reshape(2, 5, 2)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 0, 0, 0, 0]], dtype=torch.bool)
    got, got_mask = window_means(units, mask, length=3, stride=2)  # windows [0, 3) and [2, 5)
    assert got.shape == (2, 2, 2)
    assert torch.allclose(got[0, 0], units[0, :3].mean(0)) and torch.allclose(got[0, 1], units[0, 2:5].mean(0))
    assert torch.allclose(got[1, 0], units[1, 0]) and got_mask.tolist() == [[True, True], [True, False]]
    short, short_mask = window_means(units[:, :4], mask[:, :4], length=3, stride=2)  # [0, 3) and [2, 4)
    assert torch.allclose(short[0, 1], units[0, 2:4].mean(0)) and short_mask.shape == (2, 2)
    one, _ = window_means(units[:, :2], mask[:, :2], length=3, stride=2)  # shorter than a window: one window
    assert one.shape == (2, 1, 2) and torch.allclose(one[0, 0], units[0, :2].mean(0))


def test_segments_are_equal_runs_of_frames() -> None:
    frames = torch.randn(1, 8, 3)
    mask = torch.ones(1, 8, dtype=torch.bool)
    seg, seg_mask = segments(frames, mask, 4)
    assert torch.allclose(seg[0], frames[0].reshape(4, 2, 3).mean(1), atol=1e-6) and seg_mask.all()
    mask[0, 6:] = False  # a clip padded after 6 frames: its last segment is empty
    assert segments(frames, mask, 4)[1].tolist() == [[True, True, True, False]]
    assert segments(frames[:, :3], mask[:, :3], 4)[0].shape == (1, 3, 3)  # 3 frames: 3 segments of one frame


def test_chain_adjacency_links_consecutive_real_units() -> None:
    mask = torch.tensor([[1, 1, 1, 0]], dtype=torch.bool)
    expected = torch.tensor([[0, 1, 0, 0], [1, 0, 1, 0], [0, 1, 0, 0], [0, 0, 0, 0]], dtype=torch.float32)
    assert torch.equal(chain_adjacency(mask)[0], expected)


def dense_graph_convolution(encoder: PairGraphEncoder, seg, seg_mask, phr, phr_mask, t: int, v: int):
    """The pair (t, v) as one graph with a dense (n + m) x (n + m) adjacency, GCN written out."""
    s, p = seg[v], phr[t]
    n, m = s.shape[0], p.shape[0]
    adjacency = torch.zeros(n + m, n + m)
    adjacency[:n, :n] = chain_adjacency(seg_mask[v : v + 1])[0]
    adjacency[n:, n:] = chain_adjacency(phr_mask[t : t + 1])[0]
    relation = (p @ s.T).clamp(min=0) * (phr_mask[t][:, None] & seg_mask[v][None, :])  # [m, n]
    adjacency[n:, :n], adjacency[:n, n:] = relation, relation.T
    with_loops = adjacency + torch.eye(n + m)
    scale = with_loops.sum(1).rsqrt()
    normalised = scale[:, None] * with_loops * scale[None, :]
    nodes = torch.cat([s, p])
    out = F.normalize(nodes + encoder.weight(normalised @ nodes), dim=-1)
    return out[:n], out[n:], relation


def test_graph_convolution_matches_a_dense_adjacency_per_pair() -> None:
    torch.manual_seed(0)
    encoder = PairGraphEncoder(6)
    with torch.no_grad():
        encoder.weight.weight.normal_()
    seg = F.normalize(torch.randn(3, 4, 6), dim=-1)
    phr = F.normalize(torch.randn(2, 5, 6), dim=-1)
    seg_mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0], [1, 0, 0, 0]], dtype=torch.bool)
    phr_mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]], dtype=torch.bool)
    with torch.no_grad():
        seg_out, phr_out, relation = encoder(seg, seg_mask, phr, phr_mask)
        for t in range(2):
            for v in range(3):
                want_seg, want_phr, want_rel = dense_graph_convolution(encoder, seg, seg_mask, phr, phr_mask, t, v)
                assert torch.allclose(seg_out[t, v], want_seg, atol=1e-5)
                assert torch.allclose(phr_out[t, v], want_phr, atol=1e-5)
                assert torch.allclose(relation[t, v], want_rel, atol=1e-6)


def test_link_targets_are_each_real_phrases_strongest_real_segment() -> None:
    relation = torch.tensor([[[[0.1, 0.9, 0.0], [0.5, 0.2, 0.8], [0.3, 0.3, 0.1]]]])  # [1, 1, m=3, n=3]
    seg_mask = torch.tensor([[1, 1, 0]], dtype=torch.bool)  # segment 2 is padding
    phr_mask = torch.tensor([[1, 1, 0]], dtype=torch.bool)  # phrase 2 is padding
    targets = link_targets(relation, phr_mask, seg_mask)[0, 0]
    assert targets.tolist() == [[False, True, False], [True, False, False], [False, False, False]]


def head_inputs(model: Any, batch: dict[str, Any]) -> HeadInputs:
    video = model.encode_video(batch["frames"], batch["frame_mask"])
    text = model.encode_text(batch["input_ids"], batch["attention_mask"])
    return HeadInputs(batch, video, text, model.text_encoder)


def test_forward_is_alignment_plus_balanced_link_prediction() -> None:
    torch.manual_seed(3)
    model = build_model(tiny_config([{"name": "fcanet", "params": {"link_weight": 0.5}}])).eval()
    head = model.head("fcanet")
    with torch.no_grad():
        head.graph.weight.weight.normal_(std=0.1)
    batch = make_batch(model, CAPTIONS)
    out = model(batch)
    with torch.no_grad():
        seg, seg_mask, phr, phr_mask = head.units(head_inputs(model, batch))
        similarity, links, targets = head.pair_scores(seg, seg_mask, phr, phr_mask)
    logits = similarity / 0.05
    align = (multi_positive_info_nce(logits) + multi_positive_info_nce(logits.T)) / 2
    matched, others = [], []
    for t, v, i, j in targets.nonzero().tolist():
        term = F.binary_cross_entropy_with_logits(links[t, v, i, j] / 0.05, torch.tensor(float(t == v)))
        (matched if t == v else others).append(term)
    link = (torch.stack(matched).mean() + torch.stack(others).mean()) / 2
    assert out["fcanet_align_loss"].item() == pytest.approx(align.item(), rel=1e-4)
    assert out["fcanet_link_loss"].item() == pytest.approx(link.item(), rel=1e-4)
    assert out["fcanet_loss"].item() == pytest.approx(align.item() + 0.5 * link.item(), rel=1e-4)
    assert int(targets.sum()) == 5 * int(phr_mask.sum())  # one target a real phrase, in each of the 5 videos' pairs


def test_the_untrained_graph_starts_from_the_plain_max_mean_similarity() -> None:
    torch.manual_seed(4)
    model = build_model(tiny_config([{"name": "fcanet"}])).eval()
    head = model.head("fcanet")
    with torch.no_grad():
        seg, seg_mask, phr, phr_mask = head.units(head_inputs(model, make_batch(model, CAPTIONS)))
        similarity, _, _ = head.pair_scores(seg, seg_mask, phr, phr_mask)
    assert torch.allclose(similarity, max_mean_similarity(seg, seg_mask, phr, phr_mask), atol=1e-6)


def test_padded_frames_take_no_part() -> None:
    torch.manual_seed(5)
    model = build_model(tiny_config([{"name": "fcanet", "params": {"num_segments": 4}}])).eval()
    head = model.head("fcanet")
    with torch.no_grad():
        head.graph.weight.weight.normal_(std=0.1)
    batch = make_batch(model, CAPTIONS)  # clip 0 has one padded frame (frame 3 of 4)
    with torch.no_grad():
        inputs = head_inputs(model, batch)
        before = head(inputs)
        inputs.video.frame_features[0, 3] = 50.0
        after = head(inputs)
    assert after["loss"].item() == pytest.approx(before["loss"].item(), rel=1e-6)


def test_gather_of_one_process_changes_nothing_and_training_reaches_every_part() -> None:
    torch.manual_seed(6)
    model = build_model(tiny_config([{"name": "global"}, {"name": "fcanet"}])).train()
    batch = make_batch(model, CAPTIONS)
    plain = model(batch)
    gathered = model(batch, gather=lambda tensor: tensor)
    for key in ("fcanet_align_loss", "fcanet_link_loss", "fcanet_loss"):
        assert gathered[key].item() == pytest.approx(plain[key].item(), rel=1e-5), key
    model.zero_grad()
    model(batch)["fcanet_loss"].backward()
    head = model.head("fcanet")
    for part in (head.segment_proj, head.phrase_proj, head.graph):
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in part.parameters()), part
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.video_encoder.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.text_encoder.parameters())
    assert model.retrieval_dim == model.embed_dim  # retrieval stays on the global embeddings


@pytest.mark.parametrize(
    "params, message",
    [
        ({"num_segments": 0}, "at least 1"),
        ({"phrase_stride": 0}, "at least 1"),
        ({"link_weight": -1.0}, "link_weight"),
        ({"positive_mode": "any"}, "positive_mode"),
    ],
)
def test_config_errors(params: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build_model(tiny_config([{"name": "fcanet", "params": params}]))
