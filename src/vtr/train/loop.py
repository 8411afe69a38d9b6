"""The training loop: AdamW, the paper's multi-step schedule, clipping, validation each epoch, checkpoints.

A run folder holds the resolved config, the weights of the last and the best epoch (by validation R-sum), the
resumable state (``checkpoint.pt``) and ``log.jsonl`` with every step's loss terms and every epoch's metrics.
"""

from __future__ import annotations

import dataclasses
import math
import random
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, Sampler
from tqdm.auto import tqdm

from vtr.config import DataConfig, RunConfig, save_config, to_dict
from vtr.data import TrainClipDataset, collate_clips, read_annotations
from vtr.data.clip_cache import DecodedClipCache, cache_folder
from vtr.data.concept_positives import ConceptTable
from vtr.data.sampling import BATCH_SAMPLERS, HardNegativeBatchSampler, hard_negative_groups
from vtr.errors import CheckpointError, ConfigError, DataFormatError
from vtr.evaluate.runner import encode_split, evaluate_split
from vtr.train import distributed
from vtr.train.checkpoint import CHECKPOINT_NAME, TrainState, load_checkpoint, save_checkpoint
from vtr.train.distributed import Processes, ShardedBatchSampler, processes_from_environment
from vtr.train.precision import autocast, resolve_precision
from vtr.train.runlog import RunLog
from vtr.train.schedule import build_scheduler
from vtr.train.tagging import CaptionPartsLookup
from vtr.video.augment import CropJitter


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when available, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _lr_scale_for(name: str, lr_scale: Mapping[str, float]) -> float:
    """The multiplier of the longest ``lr_scale`` prefix that names ``name``'s module (1.0 if none)."""
    best, scale = -1, 1.0
    for prefix, value in lr_scale.items():
        if (name == prefix or name.startswith(prefix + ".")) and len(prefix) > best:
            best, scale = len(prefix), value
    return scale


def build_optimizer(
    model: torch.nn.Module, lr: float, weight_decay: float, lr_scale: Mapping[str, float] | None = None
) -> torch.optim.AdamW:
    """AdamW (Sec. IV.B); biases, norms and scalars (the temperature) get no weight decay.

    ``lr_scale`` maps a module prefix (``"text_encoder"``, ``"heads.noun"``) to a multiplier of ``lr`` for its
    parameters, as CLIP4Clip's ``coef_lr`` gives pretrained towers a smaller rate than new layers.
    """
    lr_scale = dict(lr_scale or {})
    names = {name for name, _ in model.named_parameters()}
    for prefix in lr_scale:
        if not any(n == prefix or n.startswith(prefix + ".") for n in names):
            raise ConfigError(f"train.lr_scale: {prefix!r} names no parameter of the model")
    groups: dict[tuple[float, bool], list[torch.nn.Parameter]] = {}
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        key = (_lr_scale_for(name, lr_scale), parameter.ndim >= 2)
        groups.setdefault(key, []).append(parameter)
    param_groups = [
        {"params": params, "lr": lr * scale, "weight_decay": weight_decay if decays else 0.0}
        for (scale, decays), params in sorted(groups.items(), key=lambda item: (-item[0][0], not item[0][1]))
    ]
    return torch.optim.AdamW(param_groups, lr=lr)


def _check_sampler(data_cfg: DataConfig) -> None:
    """Refuse an unknown ``data.batch_sampler`` or a negative ``data.hard_negatives_from_epoch`` before any work."""
    if data_cfg.batch_sampler not in BATCH_SAMPLERS:
        raise ConfigError(f"data.batch_sampler {data_cfg.batch_sampler!r}; choose one of {', '.join(BATCH_SAMPLERS)}")
    switch = data_cfg.hard_negatives_from_epoch
    if switch is not None and switch < 0:
        raise ConfigError(f"data.hard_negatives_from_epoch must be an epoch (0 or more), got {switch}")


def _augmentation(data_cfg: DataConfig) -> CropJitter | None:
    """The training clips' augmentation from ``data.augment``, or None when it changes nothing."""
    low, high = data_cfg.augment.crop_area
    if (low, high) == (1.0, 1.0):
        return None  # whole frames: no draw, so runs without augmentation stay as they were
    try:
        return CropJitter(low, high)
    except ValueError as error:
        raise ConfigError(f"data.augment.crop_area: {error}") from None


def _sampler_kind(data_cfg: DataConfig, epoch: int) -> str:
    """``data.batch_sampler``, or ``hard_negatives`` from epoch ``data.hard_negatives_from_epoch`` on."""
    switch = data_cfg.hard_negatives_from_epoch
    return "hard_negatives" if switch is not None and epoch >= switch else data_cfg.batch_sampler


def _batch_sampler(dataset: TrainClipDataset, kind: str, batch_size: int, seed: int, epoch: int) -> Sampler[list[int]]:
    """The epoch's batches (incomplete last batch dropped: contrastive batches keep their size)."""
    if kind == "hard_negatives":
        sampler = HardNegativeBatchSampler(hard_negative_groups(dataset.item_records), batch_size, seed)
        sampler.set_epoch(epoch)
        return sampler
    generator = torch.Generator().manual_seed(seed * 100_003 + epoch)
    return BatchSampler(RandomSampler(dataset, generator=generator), batch_size, drop_last=True)


def _to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    return {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}


def _scalar_terms(outputs: dict[str, torch.Tensor]) -> dict[str, float]:
    """Loss terms and counts of a forward pass, as plain floats for the log and the progress bar."""
    terms = {}
    for key, value in outputs.items():
        if torch.is_tensor(value) and value.numel() == 1:
            terms[key] = float(value.detach())
    return terms


def fit(
    config: RunConfig,
    out_dir: str | Path,
    resume: bool = False,
    progress: bool = True,
    echo: Callable[[str], None] = print,
) -> Path:
    """Train a retrieval model as ``config`` says and write the run folder ``out_dir``.

    Under ``torchrun`` (``WORLD_SIZE`` > 1) every process trains on its share of each global batch of
    ``train.batch_size`` (see :mod:`vtr.train.distributed`) and process 0 alone writes, logs and evaluates.

    Args:
        config: the resolved run configuration.
        out_dir: the run folder; must not hold a run already unless ``resume``.
        resume: continue a run from its last finished epoch (the saved config is used, not ``config``).
        progress: show progress bars.
        echo: where one-line epoch summaries go.

    Returns:
        The run folder.
    """
    from vtr.models import build_model  # heavy import, kept out of module import time

    out = Path(out_dir)
    if resume:
        if not (out / CHECKPOINT_NAME).is_file():
            raise CheckpointError(f"cannot resume: {out / CHECKPOINT_NAME} does not exist")
        from vtr.config import load_config

        config = load_config(out / "config.yaml")
    elif (out / CHECKPOINT_NAME).exists() or (out / "last.safetensors").exists():
        raise CheckpointError(f"{out} already holds a run: pass --resume to continue it, or choose another --out")

    train_cfg, data_cfg = config.train, config.data
    _check_sampler(data_cfg)
    augment = _augmentation(data_cfg)
    processes = processes_from_environment()
    main = processes.is_main
    if not main:
        progress, echo = False, _silent
    seed_everything(train_cfg.seed)
    device = distributed.start(processes, resolve_device(train_cfg.device))
    try:
        precision = resolve_precision(train_cfg.precision, device)
        train_records = read_annotations(data_cfg.root, split=data_cfg.train_split)
        val_records = read_annotations(data_cfg.root, split=data_cfg.val_split) if data_cfg.val_split else []
        if not train_records:
            raise DataFormatError(f"{data_cfg.root}: split {data_cfg.train_split!r} has no videos")
        batch_size = min(train_cfg.batch_size, len(train_records))
        # Before anything is written: data that does not say what its clips show stops the run here.
        concepts = ConceptTable(train_records) if data_cfg.concept_positives else None
        distributed.barrier(processes)  # every process has checked the folder before process 0 writes into it
        if main:
            out.mkdir(parents=True, exist_ok=True)

        model = build_model(config).to(device)
        parts_lookup = _parts_lookup(model, train_records, data_cfg.root, out, progress, processes)
        prepared = _prepare_heads(config, train_records, parts_lookup)
        if prepared is not config:  # a head completed its params from the captions (a vocabulary): build again
            config = prepared
            seed_everything(train_cfg.seed)  # the same initial weights as a run given the completed config (tested)
            model = build_model(config).to(device)
        if model.use_text_cache():
            echo("the text tower is frozen: its outputs are computed once per text and cached")
        if precision == "bf16":
            echo(f"training in bfloat16 autocast on {device} (train.precision: {train_cfg.precision})")
        if main:
            save_config(config, out / "config.yaml")
        clip_cache = DecodedClipCache(cache_folder(data_cfg.root, out, "decoded")) if data_cfg.decoded_cache else None

        dataset = TrainClipDataset(
            train_records,
            data_cfg.num_frames,
            data_cfg.image_size,
            data_cfg.mean,
            data_cfg.std,
            seed=train_cfg.seed,
            keyframes=data_cfg.keyframes,
            cache=clip_cache,
            augment=augment,
            concepts=concepts,
        )
        steps_per_epoch = len(dataset) // batch_size  # drop_last: contrastive batches keep their size
        optimizer = build_optimizer(model, train_cfg.lr, train_cfg.weight_decay, train_cfg.lr_scale)
        scheduler = build_scheduler(
            optimizer, steps_per_epoch, train_cfg.milestones, train_cfg.gamma, train_cfg.warmup_steps
        )
        state = TrainState()
        if resume:
            state = load_checkpoint(out, model, optimizer, scheduler)
            echo(f"resuming {out} after epoch {state.epoch} (step {state.step})")
        trained, gather = model, None
        if processes.distributed:
            from torch.nn.parallel import DistributedDataParallel

            trained = DistributedDataParallel(model, find_unused_parameters=True)
            gather = distributed.all_gather_cat
        log = RunLog(out / "log.jsonl") if main else None
        if log is not None and not resume:
            log.write(
                {
                    "event": "start",
                    "config": to_dict(config),
                    "train_videos": len(train_records),
                    "val_videos": len(val_records),
                    "device": str(device),
                    "precision": precision,
                    "processes": processes.world_size,
                }
            )
        try:
            for epoch in range(state.epoch, train_cfg.epochs):
                dataset.set_epoch(epoch)
                model.set_epoch(epoch)
                sampler_kind = _sampler_kind(data_cfg, epoch)
                batches = _batch_sampler(dataset, sampler_kind, batch_size, train_cfg.seed, epoch)
                if processes.distributed:
                    batches = ShardedBatchSampler(batches, batch_size, processes)
                loader = DataLoader(
                    dataset,
                    batch_sampler=batches,
                    collate_fn=collate_clips,
                    num_workers=data_cfg.num_workers,
                    persistent_workers=False,
                )
                started = time.perf_counter()
                bar = tqdm(loader, desc=f"epoch {epoch + 1}/{train_cfg.epochs}", unit="batch", disable=not progress)
                step = _Step(
                    model, trained, optimizer, scheduler, train_cfg.grad_clip, device, gather, parts_lookup, precision
                )
                epoch_terms: dict[str, list[float]] = {}
                model.train()
                for batch in bar:
                    terms = step(batch, state)
                    for key, value in terms.items():
                        epoch_terms.setdefault(key, []).append(value)
                    if log is not None:
                        lr = scheduler.get_last_lr()[0]
                        log.write({"event": "step", "epoch": epoch, "step": state.step, "lr": lr, **terms})
                    bar.set_postfix(
                        {k.removesuffix("_loss"): f"{v:.3f}" for k, v in terms.items() if k.endswith("loss")}
                    )
                bar.close()
                state.epoch = epoch + 1
                if log is not None:
                    record: dict[str, Any] = {
                        "event": "epoch",
                        "epoch": epoch,
                        "step": state.step,
                        "seconds": round(time.perf_counter() - started, 2),
                        "batch_sampler": sampler_kind,
                        "train": {k: float(np.mean(v)) for k, v in epoch_terms.items()},
                    }
                    record.update(
                        _validate_and_save(model, val_records, config, device, progress, state, out, clip_cache)
                    )
                    save_checkpoint(out, model, optimizer, scheduler, state)
                    log.write(record)
                    echo(_epoch_line(record, train_cfg.epochs))
                distributed.barrier(processes)  # the others wait while process 0 evaluates and saves
        finally:
            if log is not None:
                log.close()
    except BaseException:
        distributed.stop(processes, clean=False)  # no last barrier: the others may never reach it
        raise
    distributed.stop(processes)
    return out


class _Step:
    """One optimiser step on a batch: text inputs, forward (all-gathering across processes), backward, update."""

    def __init__(
        self,
        model: Any,
        trained: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        scheduler: Any,
        grad_clip: float,
        device: torch.device,
        gather: Any,
        parts_lookup: CaptionPartsLookup | None,
        precision: str = "fp32",
    ) -> None:
        self.model, self.trained, self.optimizer, self.scheduler = model, trained, optimizer, scheduler
        self.grad_clip, self.device, self.gather, self.parts_lookup = grad_clip, device, gather, parts_lookup
        self.precision = precision

    def __call__(self, batch: dict[str, Any], state: TrainState) -> dict[str, float]:
        captions = batch["captions"]
        parts = self.parts_lookup(captions) if self.parts_lookup else None
        batch.update(self.model.text_batch(captions, parts))
        with autocast(self.precision, self.device):
            outputs = self.trained(_to_device(batch, self.device), gather=self.gather)
        loss = outputs["loss"]
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss is {float(loss)} at step {state.step}: lower the learning rate")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        state.step += 1
        return _scalar_terms(outputs)


def _validate_and_save(
    model: Any,
    val_records: list[Any],
    config: RunConfig,
    device: torch.device,
    progress: bool,
    state: TrainState,
    out: Path,
    clip_cache: DecodedClipCache | None = None,
) -> dict[str, Any]:
    """Evaluate on the validation split (if any), save ``last`` and, when it is the best so far, ``best``."""
    from vtr.models import save_model

    record: dict[str, Any] = {}
    rsum = -float(state.epoch)  # without a validation split the latest epoch counts as the best
    if val_records:
        encoded = encode_split(
            model, val_records, config.data, config.train.eval_batch_size, device, progress, clip_cache
        )
        record["val"] = evaluate_split(encoded)
        rsum = record["val"]["rsum"]
        model.train()
    save_model(model, out, "last")
    if not val_records or rsum > state.best_rsum:
        state.best_rsum, state.best_epoch = rsum, state.epoch - 1
        save_model(model, out, "best")
    record["best_epoch"] = state.best_epoch
    return record


def _silent(line: str) -> None:
    """The echo of processes other than 0."""


def _parts_lookup(
    model: Any, records: list[Any], data_root: str, out: Path, progress: bool, processes: Processes
) -> CaptionPartsLookup | None:
    """Part-of-speech results for the heads that need them; process 0 tags (and fills the cache) first."""
    if not model.required_parts:
        return None
    lookup = None
    if processes.is_main:
        lookup = CaptionPartsLookup.for_dataset(model, records, data_root, out, progress)
    distributed.barrier(processes)
    if lookup is None:
        lookup = CaptionPartsLookup.for_dataset(model, records, data_root, out, progress=False)
    return lookup


def _prepare_heads(config: RunConfig, records: list[Any], parts_lookup: CaptionPartsLookup | None) -> RunConfig:
    """``config`` with every head's params completed from the training captions (``AlignmentHead.prepare_params``);
    the same object when no head changed anything."""
    from vtr.models.registry import HEADS

    if parts_lookup is None:
        return config
    heads, changed = [], False
    parts = None
    for spec in config.model.heads:
        head_class = HEADS.get(spec.name)
        params = spec.params
        if head_class.needs_parts:
            if parts is None:
                parts = parts_lookup(sorted({caption for record in records for caption in record.captions}))
            params = head_class.prepare_params(dict(spec.params), parts)
        changed |= params != spec.params
        heads.append(dataclasses.replace(spec, params=params))
    if not changed:
        return config
    return dataclasses.replace(config, model=dataclasses.replace(config.model, heads=heads))


def _epoch_line(record: dict[str, Any], epochs: int) -> str:
    loss = record["train"].get("loss", math.nan)
    line = f"epoch {record['epoch'] + 1}/{epochs}: loss {loss:.4f}"
    if "val" in record:
        t2v = record["val"]["t2v"]
        line += f" | val t2v R@1 {t2v['R@1']:.1f} R@5 {t2v['R@5']:.1f} R@10 {t2v['R@10']:.1f} rsum {record['val']['rsum']:.1f}"
    return line + f" | {record['seconds']:.0f}s"
