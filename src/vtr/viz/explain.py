"""``vtr explain``: why a video matches a caption, in one figure.

The global score (cosine of the pooled embeddings, what retrieval ranks by) and its Grad-CAM over the video tower's
tokens (:mod:`vtr.viz.gradcam`: which patches of which frames raised it), then, for each fine-grained head of the
run, the words it removes from the caption and where its query looks in the video (:mod:`vtr.viz.attention`).
Each map is a row of heatmaps over the sampled frames, with its mass per frame as bars.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vtr.errors import VtrError
from vtr.viz.attention import HeadAttention, attention_heads, head_attention, token_layout
from vtr.viz.figure import hide_ticks, new_figure, plain, save_png
from vtr.viz.frames import Clip, load_clip_for_model
from vtr.viz.gradcam import GradCam, grad_cam, video_layers

MAX_CAPTION_CHARS = 1000  # as a search query (vtr.index.searcher.MAX_QUERY_CHARS); the tokenizer truncates anyway
NO_HEADS_NOTE = (
    "this run has no fine-grained heads: there is no cross-attention to show, only the global score and its Grad-CAM"
)
NO_GRADCAM_NOTE = "the video tower is not a TimeSformer: no Grad-CAM"
CELL = 1.7  # inches per frame panel (square)
LABEL_HEIGHT = 0.5  # inches per row for the map's label above its frames
TITLE_HEIGHT = 0.8  # inches for the caption and score


@dataclass
class Explanation:
    """A (video, caption) pair as the model sees it.

    Attributes:
        video: the video file.
        caption: the caption.
        similarity: cosine similarity of the retrieval embeddings (what retrieval ranks by: the global embeddings,
            joined by the levels of a head such as ``mcsan``).
        clip: the sampled frames (model input and display images, mask, timestamps).
        gradcam: Grad-CAM of ``similarity`` over the video tower's tokens (None for a tower that is not a
            TimeSformer).
        heads: one :class:`HeadAttention` per fine-grained head, in config order.
        note: a remark for the reader (e.g. that the run has no fine-grained heads), or None.
    """

    video: str
    caption: str
    similarity: float
    clip: Clip
    gradcam: GradCam | None = None
    heads: list[HeadAttention] = field(default_factory=list)
    note: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The similarity, its Grad-CAM (raw maps), the words removed and per-frame attention of each head, and the
        frame times."""
        return {
            "video": self.video,
            "caption": self.caption,
            "similarity": round(self.similarity, 6),
            "frames": [
                {"time": round(t, 3), "real": bool(real)}
                for t, real in zip(self.clip.timestamps, self.clip.mask.tolist(), strict=True)
            ],
            "gradcam": None if self.gradcam is None else self.gradcam.to_json(),
            "heads": [head.to_json() for head in self.heads],
            "note": self.note,
        }


@functools.lru_cache(maxsize=2)
def default_tagger(mask_token: str) -> Any:
    """The part-of-speech tagger training uses (:class:`vtr.train.tagging.CaptionPartsLookup`), made once per mask
    token: loading spaCy takes a second, and a report explains several captions."""
    from vtr.text import PartOfSpeechTagger

    return PartOfSpeechTagger(mask_token=mask_token)


def check_caption(text: str) -> str:
    """The caption with outer whitespace stripped; VtrError when it is empty or too long."""
    if not isinstance(text, str) or not text.strip():
        raise VtrError("the text is empty: give a caption to explain, e.g. --text 'a red circle moves left'")
    if len(text) > MAX_CAPTION_CHARS:
        raise VtrError(f"the text is {len(text)} characters long; at most {MAX_CAPTION_CHARS} are accepted")
    return text.strip()


@torch.no_grad()
def explain(
    model: Any, video: str | Path, caption: str, layer: int = -1, tagger: Any = None, gradcam_layer: int = -1
) -> Explanation:
    """Score ``video`` against ``caption``, take the score's Grad-CAM and every fine-grained head's cross-attention.

    Args:
        model: a :class:`vtr.models.RetrievalModel` (e.g. from :func:`vtr.models.load_run`); put in eval mode.
        video: the video file; its frames are sampled as evaluation samples them.
        caption: the text.
        layer: layer of each head's multimodal encoder, Python-indexed (-1: the last one, as the paper shows).
        tagger: a :class:`vtr.text.PartOfSpeechTagger` (one is made with the tokenizer's mask token when None
            and a head needs it).
        gradcam_layer: layer of the video tower for Grad-CAM, Python-indexed (-1: the last, the tokens the global
            embedding is pooled from).

    Raises:
        VideoDecodeError: the video cannot be decoded.
        VtrError: the caption is empty or too long; ConfigError for a layer the heads or the video tower do not have;
            TaggerUnavailableError when no spaCy pipeline is installed and a head needs one.
    """
    caption = check_caption(caption)
    model.eval()
    clip = load_clip_for_model(video, model.config.data)
    device = model.device
    pixels, mask = clip.pixels[None].to(device), clip.mask[None].to(device)  # [1, T, 3, S, S], [1, T]
    encoded = model.encode_video(pixels, mask)
    text = model.embed_texts([caption])  # [1, E]
    similarity = float((model.retrieval_video_embedding(encoded) * text).sum())
    names = attention_heads(model)
    result = Explanation(video=str(video), caption=caption, similarity=similarity, clip=clip)
    notes = []
    if video_layers(model) is None:
        notes.append(NO_GRADCAM_NOTE)
    else:
        result.gradcam = grad_cam(model, clip.pixels, clip.mask, text, gradcam_layer)
    if not names:
        notes.append(NO_HEADS_NOTE)
        result.note = "; ".join(notes)
        return result
    if tagger is None:
        tagger = default_tagger(getattr(model.tokenizer, "mask_token", None) or "[MASK]")
    parts = tagger.parse([caption])[0]
    layout = token_layout(model.video_encoder, encoded.tokens.shape[1], clip.pixels.shape[0])
    if layout is None:
        notes.append("the video tower's token layout is not [CLS] + frames x patches: no per-frame maps")
    result.note = "; ".join(notes) or None
    result.heads = [head_attention(model, name, encoded, parts, layer, layout) for name in names]
    return result


def plot_explanation(explanation: Explanation) -> Any:
    """The figure: the sampled frames, the Grad-CAM of the global score, then one row per head with its attention;
    each map row has a heatmap over each frame and the map's mass per frame as bars. Frames that are padding are
    greyed out. All maps of a row share one colour scale (Grad-CAM: divided by its maximum over the clip).

    Returns:
        The ``matplotlib.figure.Figure``, ``CELL * (T + 1)`` inches wide (``T + 1`` columns: frames and bars;
        at least 6) and ``TITLE_HEIGHT + rows * (CELL + LABEL_HEIGHT)`` high (rows: the frames, Grad-CAM when there
        is one, and the heads).
    """
    clip = explanation.clip
    num_frames = len(clip.timestamps)
    gradcam = explanation.gradcam
    rows = 1 + (gradcam is not None) + len(explanation.heads)
    columns = num_frames + 1
    figure = new_figure(max(CELL * columns, 6.0), TITLE_HEIGHT + rows * (CELL + LABEL_HEIGHT))
    video_name = plain(Path(explanation.video).name, 60)
    title = f"{plain(explanation.caption, 120)}\nsimilarity {explanation.similarity:.3f}  |  {video_name}"
    if explanation.note:
        title += f"\n{plain(explanation.note)}"
    figure.suptitle(title, fontsize="medium")
    subfigures = list(np.atleast_1d(figure.subfigures(rows, 1)))
    mask = clip.mask.tolist()
    _frames_row(subfigures.pop(0), clip, mask, columns)
    if gradcam is not None:
        label = f"Grad-CAM of the global score (layer {gradcam.layer + 1} of the video tower)"
        if not gradcam.maps.any():
            label += ": all zero, no token of this layer raises the score"
        _map_row(subfigures.pop(0), clip, mask, label, gradcam.normalised, gradcam.frame_share, "Grad-CAM per frame")
    for subfigure, head in zip(subfigures, explanation.heads, strict=True):
        words = ", ".join(head.words) or f"none (the caption has no {head.part})"
        label = f"{head.head} head, layer {head.layer + 1}: removed {words}  |  query: {head.query!r}"
        if head.word_score is not None:
            label += f"  |  recovers the words with cosine {head.word_score:.3f}"
        cls = f" ([CLS] {100 * head.cls_mass:.1f}%)" if head.cls_mass else ""
        _map_row(subfigure, clip, mask, label, head.frame_maps, head.frame_mass, f"attention per frame{cls}")
    return figure


def _frames_row(subfigure: Any, clip: Clip, mask: list[bool], columns: int) -> None:
    subfigure.suptitle("sampled frames", fontsize="small", x=0.02, ha="left")
    axes = subfigure.subplots(1, columns, squeeze=False)[0]
    for t, ax in enumerate(axes[:-1]):
        _show_frame(ax, clip.images[t], mask[t])
        ax.set_title(f"{clip.timestamps[t]:.2f} s" + ("" if mask[t] else " (padding)"), fontsize="x-small")
    axes[-1].axis("off")


def _map_row(
    subfigure: Any,
    clip: Clip,
    mask: list[bool],
    label: str,
    maps: np.ndarray | None,
    frame_mass: np.ndarray | None,
    bars_title: str,
) -> None:
    """One row: ``maps`` [T, g, g] over the frames (None: the frames alone), ``frame_mass`` [T] above each frame and
    as bars."""
    subfigure.suptitle(plain(label, 170), fontsize="small", x=0.02, ha="left")
    axes = subfigure.subplots(1, len(mask) + 1, squeeze=False)[0]
    vmax = float(maps.max()) if maps is not None and maps.size and maps.max() > 0 else 1.0
    for t, ax in enumerate(axes[:-1]):
        _show_frame(ax, clip.images[t], mask[t])
        if maps is not None and mask[t]:
            side = clip.images[t].shape[0]
            ax.imshow(
                maps[t],
                cmap="inferno",
                vmin=0.0,
                vmax=vmax,
                alpha=0.55,
                interpolation="bilinear",
                extent=(0, side, side, 0),
            )
        if frame_mass is not None:
            ax.set_title(f"{100 * frame_mass[t]:.1f}%", fontsize="x-small")
    _mass_bars(axes[-1], bars_title, frame_mass, mask)


def _show_frame(ax: Any, image: np.ndarray, real: bool) -> None:
    ax.imshow(image if real else (image * 0.3 + 160).astype(np.uint8), interpolation="nearest")
    hide_ticks(ax)


def _mass_bars(ax: Any, title: str, frame_mass: np.ndarray | None, mask: list[bool]) -> None:
    ax.set_title(title, fontsize="x-small")
    if frame_mass is None:
        ax.axis("off")
        ax.text(0.5, 0.5, "no map", ha="center", va="center", transform=ax.transAxes, color="0.4")
        return
    positions = np.arange(1, len(mask) + 1)
    colours = ["C0" if real else "0.7" for real in mask]
    ax.bar(positions, 100 * frame_mass, color=colours)
    ax.set_xticks(positions)
    ax.tick_params(labelsize="x-small")
    ax.set_ylabel("%", fontsize="x-small")


def write_explanation(explanation: Explanation, out: str | Path) -> Path:
    """Draw ``explanation`` and write it to the PNG ``out`` (atomically); returns ``out``."""
    return save_png(plot_explanation(explanation), out)
