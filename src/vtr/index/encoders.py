"""The model behind an index: a small protocol that turns texts and clips into normalised embeddings.

Two kinds of model satisfy it: a trained vtr run folder (:func:`vtr.models.load_run`) and a Hugging Face
image-text or video-text model (CLIP: per-frame image features mean-pooled over frames; X-CLIP: its video
features). :func:`load_encoder` picks the adapter from what the path or hub id holds. Each adapter has a
``model_id`` that names the model *and its weights* (a hash of the loaded tensors), so an index can refuse
queries embedded by any other model, including the same run after more training.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from torch import nn

from vtr.errors import CheckpointError

# Texts are embedded in chunks of this many: bounds memory for a long list of queries.
_TEXT_CHUNK = 256
# OpenAI CLIP's pixel statistics, used when a CLIP folder has no preprocessor_config.json.
_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@runtime_checkable
class VideoTextEncoder(Protocol):
    """What the index needs from a model.

    Attributes:
        model_id: names the model and its weights; two encoders with equal ids embed identically.
        model_spec: what :func:`load_encoder` needs to load this model again (absolute folder or hub id).
        dim: embedding size E.
        num_frames: frames per clip T.
        image_size: side S of the square frames the model takes.
        mean: per-channel pixel mean used to normalise frames.
        std: per-channel pixel standard deviation used to normalise frames.
    """

    model_id: str
    model_spec: str
    dim: int
    num_frames: int
    image_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Embed texts: float32 [N, E], each row of unit length."""
        ...

    def embed_clips(self, frames: torch.Tensor, frame_mask: torch.Tensor) -> np.ndarray:
        """Embed clips ``frames`` float [B, T, 3, S, S] (normalised) with ``frame_mask`` bool [B, T]: float32 [B, E]."""
        ...


def weights_hash(module: nn.Module) -> str:
    """A 16-hex-digit BLAKE2b hash of a module's state dict (names, dtypes, shapes and bytes), in key order."""
    digest = hashlib.blake2b(digest_size=8)
    for name, tensor in sorted(module.state_dict().items()):
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)};".encode())
        # Viewing as bytes works for every dtype, bfloat16 included, which numpy cannot hold.
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def resolve_device(device: str) -> torch.device:
    """``"auto"`` is CUDA when available, else CPU; anything else is passed to :class:`torch.device`."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


@contextmanager
def _quiet_loading() -> Iterator[None]:
    # transformers draws a "Loading weights" bar on every from_pretrained; a search prints results, not that.
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def _normalise(x: torch.Tensor) -> np.ndarray:
    # float32 on the CPU with unit rows: FAISS inner product is then cosine similarity.
    return torch.nn.functional.normalize(x.float(), dim=-1).cpu().numpy().astype(np.float32, copy=False)


def _features(output: Any) -> torch.Tensor:
    # transformers 4.x returns the projected features as a tensor; 5.x returns a model output whose
    # pooler_output holds them.
    return output if isinstance(output, torch.Tensor) else output.pooler_output


class VtrRunEncoder:
    """A trained vtr run folder (``config.yaml`` plus safetensors checkpoints), loaded by :func:`vtr.models.load_run`.

    Args:
        run_dir: the run folder.
        checkpoint: ``"best"`` or ``"last"``.
        device: torch device, or ``"auto"``.
    """

    def __init__(self, run_dir: str | Path, checkpoint: str = "best", device: str = "cpu") -> None:
        from vtr.models import load_run

        self.run_dir = Path(run_dir).expanduser().resolve()
        self.device = resolve_device(device)
        with _quiet_loading():
            self.model = load_run(self.run_dir, checkpoint=checkpoint, device=str(self.device))
        self.model.eval()
        data = self.model.config.data
        self.model_spec = str(self.run_dir)
        self.model_id = f"vtr-run:{checkpoint}@{weights_hash(self.model)}"
        self.dim = int(self.model.retrieval_dim)
        self.num_frames = int(data.num_frames)
        self.image_size = int(data.image_size)
        self.mean = tuple(float(v) for v in data.mean)
        self.std = tuple(float(v) for v in data.std)

    @torch.no_grad()
    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Embed texts with the run's text tower: float32 [N, E], unit rows."""
        chunks = [self.model.embed_texts(list(texts[i : i + _TEXT_CHUNK])) for i in range(0, len(texts), _TEXT_CHUNK)]
        return _normalise(torch.cat(chunks)) if chunks else np.zeros((0, self.dim), np.float32)

    @torch.no_grad()
    def embed_clips(self, frames: torch.Tensor, frame_mask: torch.Tensor) -> np.ndarray:
        """Embed clips [B, T, 3, S, S] with the run's video tower: float32 [B, E], unit rows."""
        pooled = self.model.embed_videos(frames.to(self.device), frame_mask.to(self.device))
        return _normalise(pooled)


class HFClipEncoder:
    """A Hugging Face CLIP model: each frame through ``get_image_features``, mean-pooled over real frames.

    Frame features are normalised before pooling and the mean normalised again (CLIP4Clip's parameter-free
    "meanP"), so that no single bright frame dominates the clip.

    Args:
        name_or_path: hub id or local folder holding the model, its tokenizer (any tokenizer ``AutoTokenizer``
            can load) and optionally ``preprocessor_config.json`` (pixel mean, std and crop size).
        num_frames: frames sampled per clip.
        device: torch device, or ``"auto"``.
    """

    model_type = "clip"

    def __init__(self, name_or_path: str | Path, num_frames: int = 8, device: str = "cpu") -> None:
        from transformers import AutoTokenizer

        local = Path(name_or_path).expanduser()
        self.model_spec = str(local.resolve()) if local.is_dir() else str(name_or_path)
        self.device = resolve_device(device)
        try:
            with _quiet_loading():
                self.model = self._load_model(self.model_spec).to(self.device).eval()
                self.tokenizer = AutoTokenizer.from_pretrained(self.model_spec)
        except OSError as error:
            raise CheckpointError(f"cannot load {self.model_type} model {name_or_path}: {error}") from None
        vision = self.model.config.vision_config
        processor = _read_preprocessor_config(self.model_spec)
        self.image_size = int(_crop_size(processor) or vision.image_size)
        self.mean = tuple(float(v) for v in processor.get("image_mean", _CLIP_MEAN))
        self.std = tuple(float(v) for v in processor.get("image_std", _CLIP_STD))
        self.num_frames = int(num_frames)
        self.dim = int(self.model.config.projection_dim)
        self.max_length = int(self.model.config.text_config.max_position_embeddings)
        name = Path(self.model_spec).name if local.is_dir() else self.model_spec
        self.model_id = f"hf-{self.model_type}:{name}@{weights_hash(self.model)}"

    def _load_model(self, spec: str) -> nn.Module:
        from transformers import CLIPModel

        return CLIPModel.from_pretrained(spec)

    @torch.no_grad()
    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Embed texts with ``get_text_features``: float32 [N, E], unit rows."""
        out = []
        for i in range(0, len(texts), _TEXT_CHUNK):
            batch = self.tokenizer(
                list(texts[i : i + _TEXT_CHUNK]),
                padding=True,
                truncation=True,
                max_length=self.max_length,
                return_tensors="pt",
            )
            out.append(
                _features(
                    self.model.get_text_features(
                        input_ids=batch["input_ids"].to(self.device),
                        attention_mask=batch["attention_mask"].to(self.device),
                    )
                )
            )
        return _normalise(torch.cat(out)) if out else np.zeros((0, self.dim), np.float32)

    @torch.no_grad()
    def embed_clips(self, frames: torch.Tensor, frame_mask: torch.Tensor) -> np.ndarray:
        """Embed clips [B, T, 3, S, S]: per-frame image features, masked mean over T; float32 [B, E]."""
        b, t = frames.shape[:2]
        flat = frames.to(self.device).reshape(b * t, *frames.shape[2:])  # [B*T, 3, S, S]
        feats = _features(self.model.get_image_features(pixel_values=flat)).reshape(b, t, -1)  # [B, T, E]
        feats = torch.nn.functional.normalize(feats.float(), dim=-1)
        weights = frame_mask.to(self.device).float().unsqueeze(-1)  # [B, T, 1]
        pooled = (feats * weights).sum(1) / weights.sum(1).clamp_min(1.0)  # [B, E]
        return _normalise(pooled)


class HFXClipEncoder(HFClipEncoder):
    """A Hugging Face X-CLIP model: clips through ``get_video_features`` (its own temporal layers).

    X-CLIP's video tower takes exactly the number of frames it was trained with and has no frame mask, so
    padded frames (repeats of the last real one) take part.
    """

    model_type = "xclip"

    def __init__(self, name_or_path: str | Path, num_frames: int | None = None, device: str = "cpu") -> None:
        super().__init__(name_or_path, num_frames=num_frames or 8, device=device)
        self.num_frames = int(getattr(self.model.config.vision_config, "num_frames", None) or self.num_frames)

    def _load_model(self, spec: str) -> nn.Module:
        from transformers import XCLIPModel

        return XCLIPModel.from_pretrained(spec)

    @torch.no_grad()
    def embed_clips(self, frames: torch.Tensor, frame_mask: torch.Tensor) -> np.ndarray:
        """Embed clips [B, T, 3, S, S] with ``get_video_features``: float32 [B, E]."""
        return _normalise(_features(self.model.get_video_features(pixel_values=frames.to(self.device))))


_HF_ADAPTERS: dict[str, type[HFClipEncoder]] = {"clip": HFClipEncoder, "xclip": HFXClipEncoder}


def _read_preprocessor_config(spec: str) -> dict[str, Any]:
    # Read as JSON, not through AutoImageProcessor: the fast image processors need torchvision.
    from transformers.utils import cached_file

    try:
        path = cached_file(spec, "preprocessor_config.json", _raise_exceptions_for_missing_entries=False)
    except OSError:
        path = None
    if not path:
        return {}
    return json.loads(Path(path).read_text())


def _crop_size(processor: dict[str, Any]) -> int | None:
    crop = processor.get("crop_size")
    if isinstance(crop, dict):
        crop = crop.get("height") or crop.get("shortest_edge")
    return int(crop) if crop else None


def _hf_model_type(spec: str) -> str | None:
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(spec).model_type
    except (OSError, ValueError):
        return None


def load_encoder(
    model: str | Path | Sequence[str | Path],
    *,
    device: str = "cpu",
    num_frames: int | None = None,
    checkpoint: str = "best",
) -> VideoTextEncoder:
    """Load the model an index is built or searched with.

    Args:
        model: a vtr run folder (holds ``config.yaml``), or a Hugging Face CLIP / X-CLIP model: a local folder
            or a hub id (downloaded by ``transformers`` when the network allows it). Several of them (a list,
            or the JSON list an index records for them) load as one :class:`~vtr.index.ensemble.EnsembleEncoder`.
        device: torch device, or ``"auto"``.
        num_frames: frames per clip for Hugging Face models (a vtr run fixes its own); default 8.
        checkpoint: which checkpoint of a vtr run, ``"best"`` or ``"last"``.

    Returns:
        An encoder that satisfies :class:`VideoTextEncoder`.

    Raises:
        CheckpointError: ``model`` is neither a vtr run nor a loadable CLIP / X-CLIP model.
    """
    from vtr.index.ensemble import EnsembleEncoder, parse_ensemble_spec

    members = model if isinstance(model, (list, tuple)) else parse_ensemble_spec(str(model))
    if members is not None:
        if len(members) == 1:
            return load_encoder(members[0], device=device, num_frames=num_frames, checkpoint=checkpoint)
        return EnsembleEncoder(
            [load_encoder(m, device=device, num_frames=num_frames, checkpoint=checkpoint) for m in members]
        )
    path = Path(model).expanduser()
    if path.is_dir() and (path / "config.yaml").is_file():
        return VtrRunEncoder(path, checkpoint=checkpoint, device=device)
    model_type = _hf_model_type(str(path) if path.is_dir() else str(model))
    if model_type in _HF_ADAPTERS:
        return _HF_ADAPTERS[model_type](model, num_frames=num_frames or 8, device=device)
    if model_type is not None:
        raise CheckpointError(
            f"model {model} is a Hugging Face {model_type!r} model; supported: {', '.join(sorted(_HF_ADAPTERS))}"
        )
    raise CheckpointError(
        f"model {model} is neither a vtr run folder (with config.yaml) nor a CLIP / X-CLIP model that "
        "transformers can load (a local folder, or a hub id when downloads are possible)"
    )
