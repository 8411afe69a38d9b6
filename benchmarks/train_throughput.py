"""Training throughput and peak memory of the demo config: L1 alone against L1+L2+L3 (what the fine-grained branch costs).

Each variant runs in its own process (so the peak RSS is its own): real synthetic clips decoded by the real dataset,
the real text batching with part-of-speech parts, forward, backward and the AdamW step, as in ``vtr train``.

Usage: python benchmarks/train_throughput.py [--config synthetic-dual-align] [--steps 10] [--variants L1,L1+L2+L3]
       [--set model.video.stem=patch ...] [--set train.precision=bf16]

``train.precision`` is honoured as ``vtr train`` does (bfloat16 autocast around the forward pass).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def measure(config_name: str, overrides: list[str], variant: str, data_root: str, steps: int, warmup: int) -> dict:
    """Time ``steps`` optimiser steps (after ``warmup``) of one variant; runs inside the child process."""
    import torch
    from torch.utils.data import DataLoader

    from vtr.config import load_config
    from vtr.data import TrainClipDataset, collate_clips, read_annotations
    from vtr.models import build_model
    from vtr.train.ablation import variant_config
    from vtr.train.loop import build_optimizer
    from vtr.train.precision import autocast, resolve_precision
    from vtr.train.tagging import CaptionPartsLookup

    config = variant_config(load_config(config_name, [*overrides, f"data.root={data_root}"]), variant, seed=0)
    torch.manual_seed(0)
    model = build_model(config).train()
    model.use_text_cache()  # as `vtr train` does when the text tower is frozen
    device = torch.device("cpu")
    precision = resolve_precision(config.train.precision, device)
    records = read_annotations(data_root, split="train")
    lookup = CaptionPartsLookup.for_dataset(model, records, data_root, tempfile.gettempdir(), progress=False)
    data = config.data
    dataset = TrainClipDataset(records, data.num_frames, data.image_size, data.mean, data.std)
    batch_size = config.train.batch_size
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, drop_last=True, collate_fn=collate_clips)
    optimizer = build_optimizer(model, config.train.lr, config.train.weight_decay, config.train.lr_scale)
    batches = iter(loader)
    times = {"data": 0.0, "step": 0.0}
    for index in range(warmup + steps):
        start = time.perf_counter()
        try:
            batch = next(batches)
        except StopIteration:
            batches = iter(loader)
            batch = next(batches)
        batch.update(model.text_batch(batch["captions"], lookup(batch["captions"]) if model.required_parts else None))
        loaded = time.perf_counter()
        with autocast(precision, device):
            loss = model(batch)["loss"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        done = time.perf_counter()
        if index >= warmup:
            times["data"] += loaded - start
            times["step"] += done - loaded
    total = times["data"] + times["step"]
    return {
        "variant": f"{variant} ({precision})",
        "clips_per_s": steps * batch_size / total,
        "s_per_step": total / steps,
        "data_s_per_step": times["data"] / steps,
        "params_m": sum(p.numel() for p in model.parameters()) / 1e6,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    from vtr.cli.common import add_overrides_argument

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="synthetic-dual-align")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--variants", default="L1,L1+L2+L3")
    parser.add_argument("--videos", type=int, default=200, help="synthetic clips to make for the benchmark")
    add_overrides_argument(parser)
    parser.add_argument("--child", nargs=2, metavar=("VARIANT", "DATA"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.config, args.overrides, args.child[0], args.child[1], args.steps, args.warmup)))
        return

    import torch

    from vtr.config import load_config
    from vtr.data.synth import generate_dataset

    config = load_config(args.config, args.overrides)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}, "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads), config {args.config}, "
        f"batch {config.train.batch_size}, {config.data.num_frames} frames of {config.data.image_size} px, "
        f"stem {config.model.video.stem}" + "".join(f", --set {o}" for o in args.overrides)
    )
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "data"
        generate_dataset(
            root,
            num_videos=args.videos,
            seed=0,
            num_frames=2 * config.data.num_frames,
            size=config.data.image_size,
            progress=False,
        )
        results = []
        for variant in args.variants.split(","):
            command = [
                sys.executable,
                __file__,
                "--config",
                args.config,
                "--steps",
                str(args.steps),
                "--warmup",
                str(args.warmup),
                *(f"--set={o}" for o in args.overrides),
                "--child",
                variant,
                str(root),
            ]
            output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            results.append(json.loads(output.strip().splitlines()[-1]))
    print(f"{'losses':<17} {'clips/s':>8} {'s/step':>7} {'data s':>7} {'params':>8} {'peak RSS':>9}")
    for r in results:
        print(
            f"{r['variant']:<17} {r['clips_per_s']:>8.1f} {r['s_per_step']:>7.2f} {r['data_s_per_step']:>7.2f} "
            f"{r['params_m']:>7.1f}M {r['peak_rss_mib']:>6.0f} MiB"
        )
    if len(results) > 1:
        base = results[0]["clips_per_s"]
        for r in results[1:]:
            print(f"{r['variant']} runs at {r['clips_per_s'] / base:.2f}x the speed of {results[0]['variant']}")


if __name__ == "__main__":
    main()
