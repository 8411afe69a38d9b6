"""Which training clips a caption describes, as concept vectors a batch can carry (``data.concept_positives``).

A contrastive batch counts as positives only a clip's own captions (and identical caption strings). A caption
that leaves something out ("A white disc is bouncing.", with no scene) also describes other clips of the
training set, and when one of them is in the batch, or in the global head's memory, the loss pushes the caption
away from it: a false negative. Where the data set knows what each clip shows, every clip a caption describes can
be a positive instead. The synthetic benchmark knows: its ``meta`` gives each clip's concepts and its captions
are written from a fixed vocabulary (:mod:`vtr.data.synth.concepts`).

Each training item then carries ``video_concepts`` and ``caption_concepts``, bool vectors over the same concept
list; a caption describes a clip when its concepts are a subset of the clip's (:func:`vtr.losses.subset_positives`
makes the batch's positive matrix from them).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from vtr.data.annotations import VideoRecord
from vtr.errors import DataFormatError


class ConceptTable:
    """The concept vectors of a set of records' clips and captions.

    Args:
        records: the training videos; each ``meta`` must be that of a synthetic clip.

    Raises:
        DataFormatError: a record has no synthetic meta, a caption is not in the synthetic vocabulary, or a caption
            would not describe its own clip (the captions were not written from the meta).
    """

    def __init__(self, records: Sequence[VideoRecord]) -> None:
        from vtr.data.synth.concepts import CONCEPTS, caption_concepts, video_concepts

        position = {name: i for i, name in enumerate(CONCEPTS)}
        self.names = CONCEPTS
        self.videos = torch.zeros(len(records), len(CONCEPTS), dtype=torch.bool)  # [N, V]
        self.captions: dict[str, Tensor] = {}
        for row, record in enumerate(records):
            try:
                shown = video_concepts(record.meta)
            except DataFormatError as error:
                raise DataFormatError(
                    f"{record.video}: data.concept_positives needs the synthetic benchmark's meta ({error})"
                ) from None
            self.videos[row, [position[name] for name in shown]] = True
            for caption in record.captions:
                said = caption_concepts(caption)
                if not said <= shown:
                    raise DataFormatError(
                        f"{record.video}: caption {caption!r} names {sorted(said - shown)}, which its clip's meta "
                        "does not have; data.concept_positives needs captions written from the meta"
                    )
                vector = torch.zeros(len(CONCEPTS), dtype=torch.bool)
                vector[[position[name] for name in said]] = True
                self.captions[caption] = vector

    def video(self, index: int) -> Tensor:
        """The concepts of record ``index``'s clip, bool [V]."""
        return self.videos[index]

    def caption(self, text: str) -> Tensor:
        """The concepts of a caption of the records, bool [V]."""
        return self.captions[text]
