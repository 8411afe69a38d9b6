"""``vtr explain RUN --video FILE --text TEXT``: the global score of a (video, text) pair, its Grad-CAM over the video
tokens, and where each fine-grained head of the run looks in the video, as a figure and, with ``--json``, as numbers.

``--layer`` picks the layer of the heads' multimodal encoders and ``--gradcam-layer`` that of the video tower: two
stacks of different depths, so one flag cannot name both."""

from __future__ import annotations

import argparse
import json


def _layer(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"layers are counted from 1, got {value}")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``explain`` subcommand."""
    parser = subparsers.add_parser(
        "explain",
        help="why a video matches a text: similarity, Grad-CAM and cross-attention maps",
        description="Sample the video's frames as evaluation does, print the cosine similarity of the global "
        "embeddings, draw its Grad-CAM over the video tower's tokens (which patches of which frames raised it), and "
        "for each fine-grained head of the run (noun, verb) remove its words from the text and draw where the rest "
        "of the text attends in the video (a heatmap over each frame, one row per map). A run without fine-grained "
        "heads gets the frames, the similarity and its Grad-CAM.",
    )
    parser.add_argument("run", help="a run folder written by vtr train")
    parser.add_argument("--video", required=True, metavar="FILE", help="the video file")
    parser.add_argument("--text", required=True, help="the caption, e.g. 'a red circle moves left'")
    parser.add_argument("--out", metavar="FILE.png", help="write the figure here (PNG)")
    parser.add_argument(
        "--json", action="store_true", help="print the similarity, Grad-CAM maps, words removed and attention as JSON"
    )
    parser.add_argument("--checkpoint", default="best", help="which weights: best, last, or a .safetensors file")
    parser.add_argument(
        "--layer",
        type=_layer,
        metavar="N",
        help="layer of the heads' multimodal encoders, from 1 (default: the last, as the paper's Fig. 3)",
    )
    parser.add_argument(
        "--gradcam-layer",
        type=_layer,
        metavar="N",
        help="layer of the video tower whose tokens Grad-CAM maps, from 1 (default: the last)",
    )
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ... (default cpu)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from vtr.models import load_run
    from vtr.viz.explain import check_caption, explain, write_explanation

    check_caption(args.text)  # before the model is loaded
    model = load_run(args.run, checkpoint=args.checkpoint, device=args.device)
    layer = -1 if args.layer is None else args.layer - 1
    gradcam_layer = -1 if args.gradcam_layer is None else args.gradcam_layer - 1
    explanation = explain(model, args.video, args.text, layer=layer, gradcam_layer=gradcam_layer)
    if args.out:
        write_explanation(explanation, args.out)
    if args.json:
        print(json.dumps(explanation.to_json(), indent=2))
        return 0
    print(f"similarity {explanation.similarity:.4f} (what retrieval ranks by: the cosine of the retrieval embeddings)")
    for head in explanation.heads:
        words = ", ".join(head.words) or f"none: the text has no {head.part}"
        line = f"{head.head}: removed {words}"
        if head.frame_mass is not None:
            line += " | attention per frame " + " ".join(f"{100 * m:.0f}%" for m in head.frame_mass)
        print(line)
    gradcam = explanation.gradcam
    if gradcam is not None:
        shares = " ".join(f"{100 * s:.0f}%" for s in gradcam.frame_share)
        print(f"grad-cam (video layer {gradcam.layer + 1}) per frame {shares}")
    if explanation.note:
        print(f"note: {explanation.note}")
    if args.out:
        print(f"wrote {args.out}")
    return 0
