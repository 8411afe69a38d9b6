"""Save a model's weights into a run folder and rebuild it from that folder alone (no network, no hub ids).

A run folder holds ``config.yaml`` (the resolved config), ``tokenizer/``, ``towers/video_config.json`` and
``towers/text_config.json`` (the Hugging Face configs of both towers, written once), and ``<name>.safetensors``
weights (``best``, ``last``), each written atomically.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from vtr.config import load_config, save_config
from vtr.errors import CheckpointError, VtrError
from vtr.fileio import atomic_write, atomic_write_json
from vtr.models.registry import TEXT_ENCODERS, VIDEO_ENCODERS
from vtr.models.retrieval import RetrievalModel

CONFIG_FILE = "config.yaml"
TOKENIZER_DIR = "tokenizer"
VIDEO_TOWER_FILE = "towers/video_config.json"
TEXT_TOWER_FILE = "towers/text_config.json"


def _write_tokenizer(tokenizer: object, target: Path) -> None:
    # save_pretrained writes several files; write them into a temporary folder and rename it into place.
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        tokenizer.save_pretrained(str(staging))  # type: ignore[attr-defined]
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def save_model(model: RetrievalModel, run_dir: str | Path, name: str) -> Path:
    """Write ``run_dir/{name}.safetensors`` atomically, and the files needed to rebuild the model once per folder.

    Args:
        model: the retrieval model.
        run_dir: the run folder (created if needed).
        name: the checkpoint name, e.g. ``"best"`` or ``"last"``.

    Returns:
        The path of the weights file.
    """
    run = Path(run_dir)
    run.mkdir(parents=True, exist_ok=True)
    if not (run / CONFIG_FILE).is_file():
        save_config(model.config, run / CONFIG_FILE)
    if not (run / TOKENIZER_DIR).is_dir():
        _write_tokenizer(model.tokenizer, run / TOKENIZER_DIR)
    if not (run / VIDEO_TOWER_FILE).is_file():
        atomic_write_json(run / VIDEO_TOWER_FILE, model.video_encoder.tower_config())
    if not (run / TEXT_TOWER_FILE).is_file():
        atomic_write_json(run / TEXT_TOWER_FILE, model.text_encoder.tower_config())
    state = {key: value.detach().cpu().contiguous() for key, value in model.state_dict().items()}
    path = run / f"{name}.safetensors"
    atomic_write(path, lambda tmp: save_file(state, str(tmp), metadata={"format": "pt", "writer": "vtr"}))
    return path


def _read_json(path: Path) -> dict:
    if not path.is_file():
        raise CheckpointError(f"{path} is missing: the run folder is incomplete")
    try:
        value = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{path} is not valid JSON ({error})") from None
    if not isinstance(value, dict):
        raise CheckpointError(f"{path} does not hold a JSON object")
    return value


def _weights_path(run: Path, checkpoint: str) -> Path:
    candidate = Path(checkpoint)
    if candidate.suffix == ".safetensors":
        return candidate if candidate.is_absolute() or candidate.exists() else run / candidate
    return run / f"{checkpoint}.safetensors"


def load_run(run_dir: str | Path, checkpoint: str = "best", device: str | torch.device = "cpu") -> RetrievalModel:
    """Rebuild a saved model from its run folder and load its weights; the model is returned in eval mode.

    Args:
        run_dir: the run folder written by training (:func:`save_model`).
        checkpoint: ``"best"``, ``"last"``, or the name or path of a ``.safetensors`` file.
        device: where to put the model.

    Raises:
        vtr.errors.CheckpointError: a file of the run folder is missing, corrupt or does not fit the config.
    """
    from transformers import AutoTokenizer

    run = Path(run_dir)
    if not run.is_dir():
        raise CheckpointError(f"run folder {run} does not exist")
    config_path = run / CONFIG_FILE
    if not config_path.is_file():
        raise CheckpointError(f"{config_path} is missing: {run} is not a run folder")
    weights = _weights_path(run, checkpoint)
    if not weights.is_file():
        available = ", ".join(sorted(p.stem for p in run.glob("*.safetensors"))) or "none"
        raise CheckpointError(f"{weights} is missing (checkpoints in {run}: {available})")
    try:
        config = load_config(config_path)
    except VtrError as error:
        raise CheckpointError(f"{config_path}: {error}") from None
    video_tower, text_tower = _read_json(run / VIDEO_TOWER_FILE), _read_json(run / TEXT_TOWER_FILE)
    tokenizer_dir = run / TOKENIZER_DIR
    if not tokenizer_dir.is_dir():
        raise CheckpointError(f"{tokenizer_dir} is missing: the run folder is incomplete")
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir), local_files_only=True)
    except (OSError, ValueError) as error:
        raise CheckpointError(f"{tokenizer_dir} does not hold a readable tokenizer ({error})") from None
    try:
        video = VIDEO_ENCODERS.get(config.model.video.name).from_tower_config(config, video_tower)
    except (ValueError, TypeError, KeyError) as error:
        raise CheckpointError(
            f"{run / VIDEO_TOWER_FILE} does not describe a {config.model.video.name} ({error})"
        ) from None
    try:
        text = TEXT_ENCODERS.get(config.model.text.name).from_tower_config(config, text_tower)
    except (ValueError, TypeError, KeyError) as error:
        raise CheckpointError(f"{run / TEXT_TOWER_FILE} does not describe a text model ({error})") from None
    model = RetrievalModel(config, video, text, tokenizer)
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as error:
        raise CheckpointError(f"{weights} is not a readable safetensors file ({error})") from None
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as error:
        raise CheckpointError(f"{weights} does not fit the model of {config_path}: {error}") from None
    return model.to(device).eval()
