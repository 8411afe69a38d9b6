"""The retrieval model on tiny random towers: heads, gradients, exclusion, positives, encode vs forward, save/load."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from vtr.config import HeadConfig, RunConfig, from_dict
from vtr.errors import CheckpointError, ConfigError
from vtr.losses import contrastive_loss
from vtr.models import (
    HEADS,
    EncodedVideo,
    VideoEncoder,
    VideoEncoderOutput,
    build_model,
    list_heads,
    load_run,
    register_video_encoder,
    save_model,
)
from vtr.text import CaptionParts

NUM_FRAMES, IMAGE_SIZE = 4, 32


def tiny_config(heads: list[dict[str, Any]] | None = None, **model: Any) -> RunConfig:
    """TimeSformer 32px / patch 8 / 4 frames / width 32 / 2 layers; random BERT width 32 with the MiniLM tokenizer."""
    values = {
        "data": {"num_frames": NUM_FRAMES, "image_size": IMAGE_SIZE},
        "model": {
            "embed_dim": 16,
            "video": {
                "patch_size": 8,
                "hidden_size": 32,
                "num_hidden_layers": 2,
                "num_attention_heads": 4,
                "intermediate_size": 64,
            },
            "text": {
                "pretrained": None,
                "tokenizer": "minilm-offline",
                "hidden_size": 32,
                "num_hidden_layers": 2,
                "num_attention_heads": 4,
                "intermediate_size": 64,
                "dropout": 0.0,
            },
            "heads": heads
            or [{"name": "global"}, {"name": "noun", "params": {"depth": 1}}, {"name": "verb", "params": {"depth": 1}}],
            **model,
        },
    }
    return from_dict(RunConfig, values)


def parts(caption: str, nouns: tuple[str, ...], verbs: tuple[str, ...]) -> CaptionParts:
    """CaptionParts made by hand: removal by word, masking with [MASK]."""
    words = caption.split()

    def delete(targets: tuple[str, ...]) -> str:
        return " ".join(w for w in words if w not in targets)

    def masked(targets: tuple[str, ...]) -> str:
        return " ".join("[MASK]" if w in targets else w for w in words)

    return CaptionParts(
        caption=caption,
        nouns=nouns,
        verbs=verbs,
        noun_phrases=(),
        without_nouns=delete(nouns),
        without_verbs=delete(verbs),
        masked_nouns=masked(nouns),
        masked_verbs=masked(verbs),
        has_nouns=bool(nouns),
        has_verbs=bool(verbs),
        is_empty=not caption.strip(),
    )


CAPTIONS = [
    parts("a red circle moves left", ("circle",), ("moves",)),
    parts("a dog runs on grass", ("dog", "grass"), ("runs",)),
    parts("very red and blue", (), ()),  # neither nouns nor verbs
    parts("a big dog jumps", ("dog",), ("jumps",)),
    parts("the square spins", ("square",), ("spins",)),
]


def make_batch(model: Any, items: list[CaptionParts], seed: int = 0) -> dict[str, Any]:
    generator = torch.Generator().manual_seed(seed)
    size = len(items)
    frame_mask = torch.ones(size, NUM_FRAMES, dtype=torch.bool)
    frame_mask[0, 3:] = False  # one padded clip
    batch: dict[str, Any] = {
        "frames": torch.randn(size, NUM_FRAMES, 3, IMAGE_SIZE, IMAGE_SIZE, generator=generator),
        "frame_mask": frame_mask,
        "video_index": torch.arange(size),
    }
    captions = [p.caption for p in items]
    batch.update(model.text_batch(captions, items if model.required_parts else None))
    return batch


def subset(batch: dict[str, Any], model: Any, items: list[CaptionParts], rows: list[int]) -> dict[str, Any]:
    """The batch restricted to ``rows`` (frames of those rows, text tensors recomputed)."""
    picked = [items[i] for i in rows]
    out = {k: batch[k][rows] for k in ("frames", "frame_mask", "video_index")}
    out.update(model.text_batch([p.caption for p in picked], picked))
    return out


@pytest.fixture(scope="module")
def dual_model() -> Any:
    torch.manual_seed(0)
    return build_model(tiny_config()).eval()


# Params that make each head small, or complete (a vocabulary that training would build from the captions).
HEAD_PARAMS: dict[str, dict[str, Any]] = {
    "noun": {"depth": 1},
    "verb": {"depth": 1},
    "mcsan": {"vocabulary": {"entity": ["circle", "dog", "grass", "square"], "action": ["moves", "runs", "jumps"]}},
}


@pytest.mark.parametrize("head_name", list_heads())
def test_every_head_forward_backward(head_name: str) -> None:
    torch.manual_seed(1)
    params = HEAD_PARAMS.get(head_name, {})
    model = build_model(tiny_config([{"name": head_name, "weight": 0.5, "params": params}])).train()
    out = model(make_batch(model, CAPTIONS))
    loss = out[f"{head_name}_loss"]
    assert torch.isfinite(loss) and loss.item() > 0
    assert out["loss"].item() == pytest.approx(0.5 * loss.item())
    assert out[f"{head_name}_count"].item() > 0
    out["loss"].backward()
    grads = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
    assert all(torch.isfinite(g).all() for g in grads.values())
    head_grads = [g for n, g in grads.items() if n.startswith(f"heads.{head_name}.")]
    assert any(g.abs().sum() > 0 for g in head_grads) or not list(model.heads[head_name].parameters())


def test_all_three_heads_sum_with_weights(dual_model: Any) -> None:
    out = dual_model(make_batch(dual_model, CAPTIONS))
    expected = out["global_loss"] + out["noun_loss"] + out["verb_loss"]  # Eq. 7, weights 1
    assert torch.allclose(out["loss"], expected)
    assert out["noun_count"].item() == 4 and out["verb_count"].item() == 4 and out["global_count"].item() == 5


def test_encode_calls_agree_with_training_forward(dual_model: Any) -> None:
    batch = make_batch(dual_model, CAPTIONS)
    out = dual_model(batch, return_embeddings=True)
    videos = dual_model.embed_videos(batch["frames"], batch["frame_mask"])
    texts = dual_model.embed_texts([p.caption for p in CAPTIONS])
    assert torch.allclose(out["video_embeds"], videos, atol=1e-5)
    assert torch.allclose(out["text_embeds"], texts, atol=1e-5)
    assert torch.allclose(videos.norm(dim=-1), torch.ones(5), atol=1e-5)
    # The global term of forward is symmetric InfoNCE on exactly these embeddings at tau = 0.05.
    by_hand = contrastive_loss(videos, texts, 1 / 0.05)["loss"]
    assert out["global_loss"].item() == pytest.approx(by_hand.item(), rel=1e-5)


def test_video_pooling_is_mean_of_projected_valid_frames(dual_model: Any) -> None:
    batch = make_batch(dual_model, CAPTIONS)
    with torch.no_grad():
        encoded: EncodedVideo = dual_model.encode_video(batch["frames"], batch["frame_mask"])
        frames = dual_model.video_proj(encoded.frame_features)  # [B, T, E]
    assert torch.allclose(encoded.pooled[0], F.normalize(frames[0, :3].mean(0), dim=-1), atol=1e-5)  # 3 real frames
    assert not torch.allclose(encoded.pooled[0], F.normalize(frames[0].mean(0), dim=-1), atol=1e-3)
    assert torch.allclose(encoded.pooled[1], F.normalize(frames[1].mean(0), dim=-1), atol=1e-5)
    patches = (IMAGE_SIZE // 8) ** 2
    assert encoded.tokens.shape == (5, 1 + NUM_FRAMES * patches, 32)
    assert encoded.token_mask[0].sum().item() == 1 + 3 * patches  # [CLS] + the patches of 3 real frames


def test_max_patch_pooling_takes_each_channels_largest_patch(tmp_path: Any) -> None:
    torch.manual_seed(5)
    config = tiny_config([{"name": "global"}])
    config.model.video.patch_pooling = "max"
    model = build_model(config).eval()
    frames = torch.randn(2, NUM_FRAMES, 3, IMAGE_SIZE, IMAGE_SIZE, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        encoded = model.encode_video(frames)
    patches = encoded.tokens[:, 1:].unflatten(1, (NUM_FRAMES, -1))  # [B, T, P, D], frame-major
    assert torch.equal(encoded.frame_features, patches.amax(dim=2))
    assert not torch.allclose(encoded.frame_features, patches.mean(dim=2))
    save_model(model, tmp_path, "best")
    assert torch.equal(load_run(tmp_path).embed_videos(frames), model.embed_videos(frames))
    config.model.video.patch_pooling = "median"
    with pytest.raises(ConfigError, match="patch_pooling must be one of mean, max"):
        build_model(config)


def test_cls_pooling_projects_the_cls_token() -> None:
    model = build_model(tiny_config([{"name": "global"}], video_pooling="cls")).eval()
    batch = make_batch(model, CAPTIONS)
    with torch.no_grad():
        encoded = model.encode_video(batch["frames"], batch["frame_mask"])
        raw = model.video_encoder.model(pixel_values=batch["frames"]).last_hidden_state[:, 0]
    assert torch.allclose(encoded.pooled, F.normalize(model.video_proj(raw), dim=-1), atol=1e-5)


@pytest.mark.parametrize("head_name", ["noun", "verb"])
def test_fine_grained_heads_train_the_video_encoder(head_name: str) -> None:
    torch.manual_seed(2)
    model = build_model(tiny_config([{"name": head_name, "params": {"depth": 1}}])).train()
    model(make_batch(model, CAPTIONS))["loss"].backward()
    video_weight = model.video_encoder.model.encoder.layer[0].attention.attention.qkv.weight
    assert video_weight.grad is not None and video_weight.grad.abs().sum() > 0
    # The global projection is not on this path: the gradient went through cross-attention to the video tokens.
    assert model.video_proj.weight.grad is None


def test_captions_without_nouns_are_left_out(dual_model: Any) -> None:
    batch = make_batch(dual_model, CAPTIONS)
    out = dual_model(batch)
    with_nouns = [0, 1, 3, 4]
    sub = dual_model(subset(batch, dual_model, CAPTIONS, with_nouns))
    assert out["noun_count"].item() == 4
    assert out["noun_loss"].item() == pytest.approx(sub["noun_loss"].item(), rel=1e-4)


def test_batch_without_any_noun_gives_zero_loss_and_valid_graph() -> None:
    torch.manual_seed(3)
    model = build_model(tiny_config()).train()
    items = [parts("very red", (), ()), parts("so blue and green", (), ())]
    out = model(make_batch(model, items))
    assert out["noun_loss"].item() == 0.0 and out["noun_count"].item() == 0
    assert out["verb_loss"].item() == 0.0 and out["verb_count"].item() == 0
    out["loss"].backward()
    noun_params = list(model.heads["noun"].parameters())
    assert all(p.grad is not None and torch.equal(p.grad, torch.zeros_like(p)) for p in noun_params)


def test_identical_nouns_are_positives(dual_model: Any) -> None:
    items = [CAPTIONS[1], CAPTIONS[3], CAPTIONS[4]]  # "dog grass", "dog", "square": distinct strings
    twins = [parts("a dog runs", ("dog",), ("runs",)), CAPTIONS[3], CAPTIONS[4]]  # "dog" twice
    batch = make_batch(dual_model, twins)
    assert batch["noun_group"][0] == batch["noun_group"][1] != batch["noun_group"][2]
    head = dual_model.heads["noun"]
    out = dual_model(batch)
    from vtr.models.heads import HeadInputs

    with torch.no_grad():
        video = dual_model.encode_video(batch["frames"], batch["frame_mask"])
        text = dual_model.encode_text(batch["input_ids"], batch["attention_mask"])
        inputs = HeadInputs(batch, video, text, dual_model.text_encoder)
        x, y = head.embed_pairs(inputs, torch.arange(3))
    sim = (x @ y.t() / 0.05).tolist()
    # Hand-computed Eq. 5 with rows 0 and 1 as each other's positives (never negatives); column 2 is their negative.
    e = math.exp

    def twin_row(i: int) -> float:
        return sum(-math.log(e(sim[i][p]) / (e(sim[i][p]) + e(sim[i][2]))) for p in (0, 1)) / 2

    row0, row1 = twin_row(0), twin_row(1)
    row2 = -math.log(e(sim[2][2]) / sum(e(v) for v in sim[2]))
    assert out["noun_loss"].item() == pytest.approx((row0 + row1 + row2) / 3, rel=1e-4)
    batch["noun_group"] = torch.arange(3)  # pretend the twins differ: they become negatives
    assert abs(dual_model(batch)["noun_loss"].item() - out["noun_loss"].item()) > 1e-3
    assert make_batch(dual_model, items)["noun_group"].unique().numel() == 3


def test_mask_removal_puts_mask_tokens_in_the_query() -> None:
    model = build_model(tiny_config([{"name": "noun", "params": {"depth": 1, "removal": "mask"}}]))
    batch = make_batch(model, CAPTIONS)
    mask_id = model.tokenizer.mask_token_id
    assert (batch["noun_query_ids"][0] == mask_id).sum() == 1
    assert (batch["noun_query_ids"][1] == mask_id).sum() == 2  # "dog" and "grass"
    delete = build_model(tiny_config([{"name": "noun", "params": {"depth": 1}}]))
    assert not (make_batch(delete, CAPTIONS)["noun_query_ids"] == mask_id).any()
    target = model.tokenizer.decode(batch["noun_target_ids"][1], skip_special_tokens=True)
    assert target == "dog grass"


def test_required_parts_and_text_batch() -> None:
    global_only = build_model(tiny_config([{"name": "global"}]))
    assert not global_only.required_parts
    batch = global_only.text_batch(["a dog", "a cat", "a dog"])
    assert set(batch) == {"input_ids", "attention_mask", "caption_group"}
    assert batch["caption_group"][0] == batch["caption_group"][2] != batch["caption_group"][1]
    noun = build_model(tiny_config([{"name": "noun", "params": {"depth": 1}}]))
    assert noun.required_parts
    with pytest.raises(ValueError, match="CaptionParts"):
        noun.text_batch(["a dog"])


def test_identical_captions_are_global_positives(dual_model: Any) -> None:
    items = [CAPTIONS[0], CAPTIONS[1], CAPTIONS[0]]
    batch = make_batch(dual_model, items)
    out = dual_model(batch, return_embeddings=True)
    v, t = out["video_embeds"], out["text_embeds"]
    positives = torch.eye(3, dtype=torch.bool)
    positives[0, 2] = positives[2, 0] = True
    expected = contrastive_loss(v, t, 1 / 0.05, positives)["loss"]
    assert out["global_loss"].item() == pytest.approx(expected.item(), rel=1e-5)


def test_learnable_temperature_gets_gradient_and_is_clamped() -> None:
    heads = [{"name": "global", "params": {"temperature": 0.2, "learn_temperature": True, "min_temperature": 0.1}}]
    model = build_model(tiny_config(heads)).train()
    out = model(make_batch(model, CAPTIONS))
    assert out["global_temperature"].item() == pytest.approx(0.2)
    out["loss"].backward()
    log_scale = model.heads["global"].temperature.log_scale
    assert log_scale.grad is not None and log_scale.grad.abs() > 0
    with torch.no_grad():
        log_scale.fill_(math.log(1000.0))
    assert model.heads["global"].temperature().item() == pytest.approx(10.0)  # 1 / min_temperature


def test_save_then_load_run_gives_identical_model(tmp_path: Any) -> None:
    torch.manual_seed(4)
    heads = [{"name": "global", "params": {"learn_temperature": True}}, {"name": "noun", "params": {"depth": 1}}]
    model = build_model(tiny_config(heads)).eval()
    with torch.no_grad():
        model.heads["global"].temperature.log_scale.fill_(2.5)
    path = save_model(model, tmp_path, "best")
    assert path == tmp_path / "best.safetensors"
    for name in ("config.yaml", "towers/video_config.json", "towers/text_config.json", "tokenizer"):
        assert (tmp_path / name).exists(), name
    loaded = load_run(tmp_path)
    assert not loaded.training
    batch = make_batch(model, CAPTIONS)
    texts = [p.caption for p in CAPTIONS]
    assert torch.equal(model.embed_texts(texts), loaded.embed_texts(texts))
    assert torch.equal(model.embed_videos(batch["frames"]), loaded.embed_videos(batch["frames"]))
    original, reloaded = model(batch), loaded(batch)
    for key in ("global_loss", "noun_loss", "global_temperature"):
        assert torch.equal(original[key], reloaded[key]), key
    assert loaded.config == model.config


def test_load_run_errors_name_the_file(tmp_path: Any) -> None:
    with pytest.raises(CheckpointError, match="does not exist"):
        load_run(tmp_path / "nowhere")
    model = build_model(tiny_config([{"name": "global"}]))
    save_model(model, tmp_path, "last")
    with pytest.raises(CheckpointError, match=r"best\.safetensors is missing .*last"):
        load_run(tmp_path)
    (tmp_path / "broken.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match="broken.safetensors"):
        load_run(tmp_path, checkpoint="broken")
    (tmp_path / "towers" / "video_config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="video_config.json"):
        load_run(tmp_path, checkpoint="last")
    (tmp_path / "towers" / "video_config.json").unlink()
    with pytest.raises(CheckpointError, match="video_config.json is missing"):
        load_run(tmp_path, checkpoint="last")


def test_load_run_refuses_weights_of_another_model(tmp_path: Any) -> None:
    save_model(build_model(tiny_config([{"name": "global"}])), tmp_path / "a", "best")
    save_model(build_model(tiny_config([{"name": "global"}], embed_dim=8)), tmp_path / "b", "best")
    with pytest.raises(CheckpointError, match="does not fit"):
        load_run(tmp_path / "a", checkpoint=str(tmp_path / "b" / "best.safetensors"))


@pytest.mark.parametrize(
    ("heads", "model", "message"),
    [
        ([{"name": "nope"}], {}, "unknown alignment head 'nope'"),
        ([{"name": "noun", "params": {"depht": 2}}], {}, "bad params"),
        ([{"name": "noun", "params": {"removal": "blank"}}], {}, "removal"),
        ([{"name": "global"}, {"name": "global"}], {}, "twice"),
        ([{"name": "global", "params": {"positive_mode": "max"}}], {}, "positive_mode"),
        ([{"name": "global"}], {"video_pooling": "max"}, "video_pooling"),
        ([{"name": "global"}], {"video": {"name": "c3d"}}, "unknown video encoder"),
        ([{"name": "global"}], {"text": {"pretrained": None, "tokenizer": None}}, "needs model.text.tokenizer"),
        ([{"name": "global"}], {"text": {"pretrained": "/no/such/folder"}}, "cannot load"),
        ([{"name": "global"}], {"video": {"patch_size": 7}}, "multiple"),
    ],
)
def test_config_errors(heads: list[dict[str, Any]], model: dict[str, Any], message: str) -> None:
    config = tiny_config(heads)
    for section, values in model.items():
        if isinstance(values, dict):
            for key, value in values.items():
                setattr(getattr(config.model, section), key, value)
        else:
            setattr(config.model, section, values)
    with pytest.raises(ConfigError, match=message):
        build_model(config)


def test_empty_head_list_is_a_config_error() -> None:
    config = tiny_config()
    config.model.heads = []
    with pytest.raises(ConfigError, match="empty"):
        build_model(config)


class MeanFrameEncoder(VideoEncoder):
    """A per-frame linear image encoder with a temporal mean: the CLIP-style shape of a later issue."""

    def __init__(self, width: int, num_frames: int) -> None:
        super().__init__()
        self.hidden_size, self.num_frames = width, num_frames
        self.frame = torch.nn.Linear(3 * 4 * 4, width)

    @classmethod
    def from_run_config(cls, config: RunConfig) -> MeanFrameEncoder:
        return cls(24, config.data.num_frames)

    @classmethod
    def from_tower_config(cls, config: RunConfig, tower_config: dict[str, Any]) -> MeanFrameEncoder:
        return cls(tower_config["width"], config.data.num_frames)

    def tower_config(self) -> dict[str, Any]:
        return {"width": self.hidden_size}

    def forward(self, frames: torch.Tensor, frame_mask: torch.Tensor | None = None) -> VideoEncoderOutput:
        small = F.adaptive_avg_pool2d(frames.flatten(0, 1), 4).flatten(1)  # [B*T, 48]
        features = self.frame(small).unflatten(0, frames.shape[:2])  # [B, T, D]
        mask = torch.ones(frames.shape[:2], dtype=torch.bool) if frame_mask is None else frame_mask
        return VideoEncoderOutput(tokens=features, token_mask=mask, frame_features=features)


def test_a_registered_video_encoder_plugs_in(tmp_path: Any) -> None:
    register_video_encoder("test-mean-frames")(MeanFrameEncoder)
    config = tiny_config(video={"name": "test-mean-frames"})
    model = build_model(config).train()
    out = model(make_batch(model, CAPTIONS))
    out["loss"].backward()
    assert model.video_encoder.frame.weight.grad.abs().sum() > 0
    save_model(model.eval(), tmp_path, "best")
    loaded = load_run(tmp_path)
    frames = torch.randn(2, NUM_FRAMES, 3, IMAGE_SIZE, IMAGE_SIZE)
    assert torch.equal(model.embed_videos(frames), loaded.embed_videos(frames))


def test_registry_lists_the_paper_heads() -> None:
    assert {"global", "noun", "verb"} <= set(HEADS.names())
    assert HeadConfig().name == "global"


def test_real_tagger_and_real_video(sample_videos: dict, dual_model: Any) -> None:
    from vtr.text import PartOfSpeechTagger
    from vtr.video import load_clip

    captions = ["a man rides a bike down the street", "people are walking", "red and blue"]
    tagged = PartOfSpeechTagger(mask_token=dual_model.tokenizer.mask_token).parse(captions)
    frames, mask = load_clip(next(iter(sample_videos.values())), NUM_FRAMES, IMAGE_SIZE)
    batch = {"frames": frames[None].repeat(3, 1, 1, 1, 1), "frame_mask": mask[None].repeat(3, 1)}
    batch.update(dual_model.text_batch(captions, tagged))
    out = dual_model(batch)
    assert torch.isfinite(out["loss"])
    assert out["noun_count"].item() == 2 and out["verb_count"].item() == 2


def test_gather_hook_of_one_process_changes_nothing(dual_model: Any) -> None:
    # Multi-process training passes an all-gather; with one process it is the identity and must give the same losses.
    batch = make_batch(dual_model, CAPTIONS)
    plain = dual_model(batch)
    gathered = dual_model(batch, gather=lambda tensor: tensor)
    for key in ("global_loss", "noun_loss", "verb_loss", "noun_count"):
        assert gathered[key].item() == pytest.approx(plain[key].item(), rel=1e-5), key


def test_gather_hook_brings_in_negatives_of_other_processes() -> None:
    # Two processes simulated in one: batch ``a`` is rank 0, ``b`` rank 1. Gathering rank 1's embeddings into
    # rank 0's loss must give the loss of one batch holding both.
    from vtr.models.heads import HeadInputs

    torch.manual_seed(5)
    model = build_model(tiny_config([{"name": "global"}, {"name": "noun", "params": {"depth": 1}}])).eval()
    items_a, items_b = CAPTIONS[:3], CAPTIONS[3:] + CAPTIONS[:1]
    a, b = make_batch(model, items_a, seed=1), make_batch(model, items_b, seed=2)
    b["video_index"] = b["video_index"] + 3
    with torch.no_grad():
        remote_video = model.encode_video(b["frames"], b["frame_mask"])
        remote_text = model.encode_text(b["input_ids"], b["attention_mask"])
        remote_rows = b["noun_valid"].nonzero().squeeze(1)
        x_b, y_b = model.heads["noun"].embed_pairs(
            HeadInputs(b, remote_video, remote_text, model.text_encoder), remote_rows
        )
    # Rank 1's part of each gathered tensor, in the order the heads gather them.
    queue = [
        remote_video.pooled,
        remote_text.pooled,
        b["video_index"],
        b["caption_group"],
        b["noun_valid"],
        b["noun_group"],
        torch.zeros(3, 16).index_copy(0, remote_rows, x_b),
        torch.zeros(3, 16).index_copy(0, remote_rows, y_b),
    ]

    def gather(tensor: torch.Tensor) -> torch.Tensor:
        return torch.cat([tensor, queue.pop(0).to(tensor.dtype)])

    gathered = model(a, gather=gather)
    assert not queue
    joint = make_batch(model, items_a + items_b)
    joint["frames"] = torch.cat([a["frames"], b["frames"]])
    joint["frame_mask"] = torch.cat([a["frame_mask"], b["frame_mask"]])
    expected = model(joint)
    for key in ("global_loss", "noun_loss", "noun_count"):
        assert gathered[key].item() == pytest.approx(expected[key].item(), rel=1e-4), key


def test_attention_maps_ignore_padded_frames(dual_model: Any) -> None:
    batch = make_batch(dual_model, CAPTIONS)
    head = dual_model.heads["noun"]
    with torch.no_grad():
        video = dual_model.encode_video(batch["frames"], batch["frame_mask"])
        query = dual_model.text_encoder(batch["noun_query_ids"], batch["noun_query_mask"])
        maps = head.attention_maps(video, query)
    assert len(maps) == 1  # depth 1
    weights = maps[0]  # [B, heads, Lq, Lv]
    assert weights.shape == (5, 8, batch["noun_query_ids"].shape[1], video.tokens.shape[1])
    assert torch.allclose(weights.sum(-1), torch.ones(weights.shape[:3]), atol=1e-5)
    padded = ~video.token_mask[0]  # the last frame of clip 0 is padding
    assert padded.sum() > 0 and weights[0][..., padded].abs().max() == 0
