"""Memory of a training process whose frozen text tower is cached: resident memory against steps.

Every step sees 32 captions not seen before (as in the first epochs of a run, when each video's caption is drawn
afresh), so the cache grows by 32 entries a step. Frames are random: decoding is not what is measured. The
process's resident memory (VmRSS) is printed every ``--every`` steps next to the bytes the cache holds; a
process that grows much faster than its cache fragments the heap.

Usage: python benchmarks/text_cache_memory.py [--steps 120] [--every 20] [--patch 8]
"""

from __future__ import annotations

import argparse
import os
import platform

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def resident_mib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) // 1024
    return -1


def captions(count: int) -> list[str]:
    """``count`` distinct captions in the synthetic benchmark's style."""
    from vtr.data.synth.vocab import ACTIONS, COLOURS, SCENE_PHRASES, SHAPES

    texts = []
    for shape in SHAPES:
        for colour in COLOURS:
            for action in ACTIONS:
                for phrases in SCENE_PHRASES.values():
                    for where in phrases:
                        texts.append(f"a {colour} {shape} is seen to {action} {where}.")
                        if len(texts) == count:
                            return texts
    return texts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=120)
    parser.add_argument("--every", type=int, default=20)
    parser.add_argument("--patch", type=int, default=8, help="video patch size (the demo uses 4)")
    args = parser.parse_args()

    import torch

    from vtr.config import load_config
    from vtr.models import build_model

    torch.manual_seed(0)
    config = load_config(
        "synthetic-dual-align", ["model.heads=[{name: global}]", f"model.video.patch_size={args.patch}"]
    )
    model = build_model(config).train()
    assert model.use_text_cache(), "the demo config freezes the text tower"
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    texts = captions(32 * args.steps)
    frames = torch.randn(32, config.data.num_frames, 3, config.data.image_size, config.data.image_size)
    print(f"# {platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} threads")
    print("| step | RSS (MiB) | cache entries | cache (MiB) |\n|---:|---:|---:|---:|")
    for step in range(args.steps + 1):
        batch = {"frames": frames, "frame_mask": torch.ones(frames.shape[:2], dtype=torch.bool)}
        batch["video_index"] = torch.arange(32)
        batch.update(model.text_batch(texts[(32 * step) % len(texts) :][:32]))
        loss = model(batch)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % args.every == 0:
            cache = model.text_cache
            print(f"| {step} | {resident_mib()} | {len(cache)} | {cache.bytes / 2**20:.0f} |", flush=True)


if __name__ == "__main__":
    main()
