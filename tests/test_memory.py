"""The cross-batch memory of the global head: the ring buffer, the loss against a brute-force reference, positives
among remembered pairs, no gradient into the memory, evaluation untouched (a training run
that reads it is in test_train)."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from vtr.errors import ConfigError
from vtr.losses import contrastive_loss
from vtr.models.heads import GlobalHead, HeadContext, HeadInputs
from vtr.models.heads.memory import EmbeddingMemory
from vtr.models.outputs import EncodedText, EncodedVideo

DIM, TAU = 8, 0.1


def head(**params: Any) -> GlobalHead:
    context = HeadContext("global", video_dim=4, text_dim=4, embed_dim=DIM, temperature=TAU, learn_temperature=False)
    return GlobalHead(context, **params).train()


def inputs(
    video: torch.Tensor,
    text: torch.Tensor,
    video_index: list[int],
    groups: list[int],
    concepts: tuple[list[list[int]], list[list[int]]] | None = None,
) -> HeadInputs:
    batch = {"video_index": torch.tensor(video_index), "caption_group": torch.tensor(groups)}
    if concepts is not None:
        batch["video_concepts"] = torch.tensor(concepts[0], dtype=torch.bool)
        batch["caption_concepts"] = torch.tensor(concepts[1], dtype=torch.bool)
    empty = torch.zeros(video.shape[0], 1, 4)
    mask = torch.ones(video.shape[0], 1, dtype=torch.bool)
    return HeadInputs(
        batch,
        EncodedVideo(tokens=empty, token_mask=mask, pooled=F.normalize(video, dim=-1)),
        EncodedText(tokens=empty, token_mask=mask, pooled=F.normalize(text, dim=-1)),
        encode_text_tokens=lambda ids, mask: None,  # type: ignore[arg-type,return-value]
    )


def brute_force(rows: torch.Tensor, cols: torch.Tensor, positives: list[list[bool]]) -> float:
    """Mode "each" by hand: each positive against the row's negatives, averaged per row, then over rows."""
    rows, cols = F.normalize(rows, dim=-1), F.normalize(cols, dim=-1)
    total = 0.0
    for i, row in enumerate(rows):
        logits = [float(row @ col) / TAU for col in cols]
        negatives = [math.exp(v) for v, p in zip(logits, positives[i]) if not p]
        terms = [-math.log(math.exp(v) / (math.exp(v) + sum(negatives))) for v, p in zip(logits, positives[i]) if p]
        total += sum(terms) / len(terms)
    return total / len(rows)


def test_ring_buffer_keeps_the_newest_pairs_and_waits_for_its_start() -> None:
    memory = EmbeddingMemory(size=5, dim=2, start_step=2)
    for step in range(3):
        values = torch.full((2, 2), float(step))
        ids = torch.tensor([10 * step, 10 * step + 1])
        memory.push(values, -values, ids, ids + 100)
        if step == 0:
            assert memory.entries() is None  # filled, but before its start step
    entries = memory.entries()
    assert entries is not None
    video, text, index, group = entries
    # Six pairs pushed into five rows: the oldest (step 0, id 0) was overwritten by the newest.
    assert sorted(index.tolist()) == [1, 10, 11, 20, 21]
    assert torch.equal(group, index + 100)
    for row, video_index in enumerate(index.tolist()):
        step = video_index // 10
        assert torch.equal(video[row], torch.full((2,), float(step)))
        assert torch.equal(text[row], torch.full((2,), -float(step)))
    # A batch larger than the memory keeps its last rows.
    memory.push(torch.zeros(7, 2), torch.zeros(7, 2), torch.arange(7), torch.arange(7))
    assert sorted(memory.entries()[2].tolist()) == [2, 3, 4, 5, 6]  # type: ignore[index]


def test_bad_memory_settings_are_refused() -> None:
    with pytest.raises(ConfigError, match="memory_size"):
        head(memory_size=-1)
    with pytest.raises(ValueError, match="start_step"):
        head(memory_size=4, memory_start_step=-1)
    with pytest.raises(ConfigError, match="memory_start_epoch"):
        head(memory_size=4, memory_start_epoch=-1)
    with pytest.raises(ConfigError, match="memory_start_epoch needs memory_size"):
        head(memory_start_epoch=2)


def test_memory_is_read_from_its_start_epoch_and_filled_before() -> None:
    torch.manual_seed(2)
    loss_head = head(memory_size=8, memory_start_epoch=2)
    for epoch, expected_rows in ((0, 0), (1, 0), (2, 4), (3, 6)):
        loss_head.set_epoch(epoch)
        video, text = torch.randn(2, DIM), torch.randn(2, DIM)
        out = loss_head(inputs(video, text, [2 * epoch, 2 * epoch + 1], [2 * epoch, 2 * epoch + 1]))
        assert out["memory"].item() == expected_rows  # what was pushed in the epochs before is read from epoch 2
        if expected_rows == 0:
            plain = contrastive_loss(video, text, 1 / TAU)["loss"]
            assert out["loss"].item() == pytest.approx(plain.item(), rel=1e-5)


def test_loss_against_the_remembered_pairs_matches_brute_force() -> None:
    torch.manual_seed(0)
    loss_head = head(memory_size=8)
    first_video, first_text = torch.randn(3, DIM), torch.randn(3, DIM)
    # The first batch meets an empty memory: the plain batch loss.
    first = loss_head(inputs(first_video, first_text, [0, 1, 2], [50, 51, 52]))
    plain = contrastive_loss(first_video, first_text, 1 / TAU)["loss"]
    assert first["loss"].item() == pytest.approx(plain.item(), rel=1e-5)
    assert first["memory"].item() == 0
    # The second batch: video 1 again (another caption), video 7 new, and a caption equal to one of video 2's.
    video, text = torch.randn(3, DIM), torch.randn(3, DIM)
    out = loss_head(inputs(video, text, [1, 7, 9], [61, 62, 52]))
    assert out["memory"].item() == 3
    index, groups = [1, 7, 9, 0, 1, 2], [61, 62, 52, 50, 51, 52]
    positives = [[index[i] == index[j] or groups[i] == groups[j] for j in range(6)] for i in range(3)]
    v2t = brute_force(video, torch.cat([text, first_text]), positives)
    t2v = brute_force(text, torch.cat([video, first_video]), positives)
    assert out["loss"].item() == pytest.approx((v2t + t2v) / 2, rel=1e-5)
    # The one-directional loss (Eq. 4) keeps videos -> captions only.
    one_way = head(memory_size=8, symmetric=False)
    one_way(inputs(first_video, first_text, [0, 1, 2], [50, 51, 52]))
    assert one_way(inputs(video, text, [1, 7, 9], [61, 62, 52]))["loss"].item() == pytest.approx(v2t, rel=1e-5)


def test_concepts_make_described_videos_positives_in_the_batch_and_in_the_memory() -> None:
    torch.manual_seed(3)
    # Concepts a, b, c. Batch 1: video 0 shows {a, b}, its caption says {a, b} (videos 0 and 2); video 1 shows
    # {a, c}, its caption says {c} (videos 1 and 3). Batch 2: video 2 shows {a, b}, its caption says {a} (videos
    # 0, 1 and 2); video 3 shows {c}, its caption says {c} (videos 1 and 3).
    first = torch.randn(2, DIM), torch.randn(2, DIM)
    first_concepts = ([[1, 1, 0], [1, 0, 1]], [[1, 1, 0], [0, 0, 1]])
    second = torch.randn(2, DIM), torch.randn(2, DIM)
    second_concepts = ([[1, 1, 0], [0, 0, 1]], [[1, 0, 0], [0, 0, 1]])
    loss_head = head(memory_size=8)
    out = loss_head(inputs(*first, [0, 1], [10, 11], first_concepts))
    # Alone in its batch: caption 1 ({c}) describes video 1 only, caption 0 ({a, b}) video 0 only.
    assert out["loss"].item() == pytest.approx(contrastive_loss(*first, 1 / TAU)["loss"].item(), rel=1e-5)
    out = loss_head(inputs(*second, [2, 3], [12, 13], second_concepts))
    assert out["memory"].item() == 2
    # Columns: the batch's captions (videos) 2, 3, then the remembered ones 0, 1.
    describes = {(0, 0), (0, 2), (1, 1), (1, 3), (2, 0), (2, 1), (2, 2), (3, 1), (3, 3)}  # (caption of, video)
    order = [2, 3, 0, 1]
    v2t = brute_force(
        second[0], torch.cat([second[1], first[1]]), [[(c, v) in describes for c in order] for v in (2, 3)]
    )
    t2v = brute_force(
        second[1], torch.cat([second[0], first[0]]), [[(c, v) in describes for v in order] for c in (2, 3)]
    )
    assert out["loss"].item() == pytest.approx((v2t + t2v) / 2, rel=1e-5)
    # A memory takes concepts on every push or on none.
    with pytest.raises(ValueError, match="every push or on none"):
        loss_head(inputs(*second, [2, 3], [12, 13]))


def test_no_gradient_reaches_the_memory_and_evaluation_ignores_it() -> None:
    torch.manual_seed(1)
    loss_head = head(memory_size=4)
    remembered = torch.randn(2, DIM, requires_grad=True)
    loss_head(inputs(remembered, remembered * 2, [0, 1], [0, 1]))
    assert loss_head.memory is not None and not loss_head.memory.video.requires_grad
    video = torch.randn(2, DIM, requires_grad=True)
    loss_head(inputs(video, torch.randn(2, DIM), [2, 3], [2, 3]))["loss"].backward()
    assert video.grad is not None and remembered.grad is None
    # In eval mode the memory is neither read nor filled.
    loss_head.eval()
    before = loss_head.memory.steps
    pair = torch.randn(2, DIM), torch.randn(2, DIM)
    out = loss_head(inputs(*pair, [4, 5], [4, 5]))
    assert out["loss"].item() == pytest.approx(contrastive_loss(*pair, 1 / TAU)["loss"].item(), rel=1e-5)
    assert loss_head.memory.steps == before


def test_memory_needs_the_video_index() -> None:
    loss_head = head(memory_size=4)
    bare = inputs(torch.randn(2, DIM), torch.randn(2, DIM), [0, 1], [0, 1])
    del bare.batch["video_index"]
    with pytest.raises(ValueError, match="video_index"):
        loss_head(bare)
