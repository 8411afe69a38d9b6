"""Concept positives: what a synthetic caption says and a clip shows, which clips a caption describes, and the
positive matrices the losses build from them (the global head's memory part is in test_memory)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from vtr.data import VideoRecord
from vtr.data.concept_positives import ConceptTable
from vtr.data.synth.concepts import CONCEPTS, caption_concepts, describes, video_concepts
from vtr.data.synth.plan import plan_dataset
from vtr.errors import DataFormatError
from vtr.losses import described_positives
from vtr.models.heads import HeadInputs
from vtr.models.heads.base import batch_positives
from vtr.models.outputs import EncodedText, EncodedVideo


def one_object(shape: str, colour: str, size: str, action: str, scene: str) -> dict:
    return {
        "scene": scene,
        "objects": [{"shape": shape, "colour": colour, "size": size, "action": action}],
        "relation": None,
    }


def two_objects(first: tuple[str, str], second: tuple[str, str], relation: str, scene: str) -> dict:
    objects = [{"colour": c, "shape": s, "size": "small", "action": None} for c, s in (first, second)]
    return {"scene": scene, "objects": objects, "relation": {"type": relation, "subject": 0, "object": 1}}


@pytest.fixture(scope="module")
def plan():
    """600 planned clips (no video files) with their captions."""
    return plan_dataset(600, seed=3, num_frames=12, fps=8, size=48, holdout_compositions=True)


@pytest.mark.parametrize(
    ("caption", "expected"),
    [
        ("A white disc is bouncing.", {"verb:bounce", "subject:colour:white", "subject:shape:circle"}),
        # The scene's own words ("red bricks") are not an object's colour.
        (
            "Before a wall of red bricks, a huge white rectangle smoothly bounces up and down.",
            {
                "scene:brick wall",
                "verb:bounce",
                "subject:colour:white",
                "subject:shape:rectangle",
                "subject:size:large",
            },
        ),
        # "larger" belongs to the verb, not to the object's size.
        ("The green star is growing larger.", {"verb:grow", "subject:colour:green", "subject:shape:star"}),
        (
            "A tiny red rhombus is chasing the blue hoop over the white snow.",
            {
                "scene:snow",
                "verb:chase",
                "subject:colour:red",
                "subject:shape:diamond",
                "subject:size:small",
                "object:colour:blue",
                "object:shape:ring",
            },
        ),
    ],
)
def test_a_caption_names_its_concepts(caption: str, expected: set[str]) -> None:
    assert caption_concepts(caption) == expected
    assert expected <= set(CONCEPTS)


def test_a_caption_describes_the_clips_that_show_what_it_says() -> None:
    bouncing = caption_concepts("A white disc is bouncing.")
    assert describes(bouncing, video_concepts(one_object("circle", "white", "small", "bounce", "ocean")))
    assert describes(bouncing, video_concepts(one_object("circle", "white", "large", "bounce", "desert")))
    assert not describes(bouncing, video_concepts(one_object("circle", "white", "large", "fall", "desert")))
    assert not describes(bouncing, video_concepts(one_object("heart", "white", "large", "bounce", "desert")))
    on_snow = caption_concepts("A white disc is bouncing on the snow.")
    assert not describes(on_snow, video_concepts(one_object("circle", "white", "small", "bounce", "ocean")))
    # Roles keep colours on their shapes: a red circle chasing a blue square is not a blue circle chasing a red one.
    chase = caption_concepts("The red circle is chasing a blue square.")
    assert describes(chase, video_concepts(two_objects(("red", "circle"), ("blue", "square"), "chase", "road")))
    assert not describes(chase, video_concepts(two_objects(("blue", "circle"), ("red", "square"), "chase", "road")))
    assert not describes(chase, video_concepts(two_objects(("red", "circle"), ("blue", "square"), "approach", "road")))


def test_every_planned_caption_describes_its_clip_and_only_clips_like_it(plan) -> None:
    shown = [video_concepts(record["meta"]) for record in plan.records]
    several = 0
    for record, own in zip(plan.records, shown):
        for caption in record["captions"]:
            said = caption_concepts(caption)
            assert describes(said, own), caption
            others = [i for i, concepts in enumerate(shown) if describes(said, concepts) and concepts != own]
            several += bool(others)
            for i in others:  # every other clip it describes shows the same verb and, where named, the same scene
                meta = plan.records[i]["meta"]
                assert f"verb:{(meta['relation'] or {}).get('type') or meta['objects'][0]['action']}" in said
                assert all(not c.startswith("scene:") or c == f"scene:{meta['scene']}" for c in said)
    assert several > 0  # captions that leave something out describe other clips too: why the positives exist


def test_unreadable_captions_and_foreign_meta_are_clear_errors() -> None:
    with pytest.raises(DataFormatError, match="no action or relation"):
        caption_concepts("A dog runs through a park.")
    with pytest.raises(DataFormatError, match="not the meta of a synthetic clip"):
        video_concepts({"source": "msrvtt"})


def test_described_positives_is_the_subset_relation_and_not_symmetric() -> None:
    videos = torch.tensor([[1, 1, 0], [1, 0, 1]], dtype=torch.bool)  # video 0: {a, b}, video 1: {a, c}
    captions = torch.tensor([[1, 0, 0], [1, 1, 0], [0, 0, 1]], dtype=torch.bool)  # {a}, {a, b}, {c}
    expected = torch.tensor([[True, True, False], [True, False, True]])
    assert torch.equal(described_positives(videos, captions), expected)
    # The same sets on both sides: {a} describes {a, b}, {a, b} does not describe {a}.
    square = described_positives(videos[:, :2], videos[:, :2])
    assert bool(square[0, 1]) and not bool(square[1, 0])
    with pytest.raises(ValueError, match="differ in width"):
        described_positives(videos, captions[:, :2])


def _record(name: str, captions: tuple[str, ...], meta: dict) -> VideoRecord:
    return VideoRecord(video=name, path=Path("/nonexistent") / name, captions=captions, split="train", meta=meta)


def test_concept_table_gives_vectors_and_refuses_data_it_cannot_read() -> None:
    meta = one_object("circle", "white", "small", "bounce", "ocean")
    table = ConceptTable(
        [_record("a.mp4", ("A white disc is bouncing.", "A small white dot hops over the sea."), meta)]
    )
    assert table.videos.shape == (1, len(CONCEPTS)) and table.video(0).dtype == torch.bool
    names = {CONCEPTS[i] for i in table.caption("A white disc is bouncing.").nonzero().flatten().tolist()}
    assert names == {"verb:bounce", "subject:colour:white", "subject:shape:circle"}
    assert {CONCEPTS[i] for i in table.video(0).nonzero().flatten().tolist()} == video_concepts(meta)
    with pytest.raises(DataFormatError, match="a.mp4: data.concept_positives needs the synthetic benchmark's meta"):
        ConceptTable([_record("a.mp4", ("A dog runs.",), {})])
    with pytest.raises(DataFormatError, match="names .*colour:red"):
        ConceptTable([_record("b.mp4", ("A red disc is bouncing.",), meta)])


def test_batch_positives_put_captions_on_rows_and_add_what_they_describe() -> None:
    # Video 0 shows {a, b}, video 1 shows {a, c}; caption 0 says {a} (both videos), caption 1 says {a, c}.
    batch = {
        "video_index": torch.tensor([0, 1]),
        "caption_group": torch.tensor([10, 11]),
        "video_concepts": torch.tensor([[1, 1, 0], [1, 0, 1]], dtype=torch.bool),
        "caption_concepts": torch.tensor([[1, 0, 0], [1, 0, 1]], dtype=torch.bool),
    }
    empty, mask = torch.zeros(2, 1, 4), torch.ones(2, 1, dtype=torch.bool)
    inputs = HeadInputs(
        batch,
        EncodedVideo(tokens=empty, token_mask=mask, pooled=F.normalize(torch.randn(2, 4), dim=-1)),
        EncodedText(tokens=empty, token_mask=mask, pooled=F.normalize(torch.randn(2, 4), dim=-1)),
        encode_text_tokens=lambda ids, mask: None,  # type: ignore[arg-type,return-value]
    )
    assert torch.equal(batch_positives(inputs, 2, torch.device("cpu")), torch.tensor([[True, True], [False, True]]))
    del batch["video_concepts"], batch["caption_concepts"]
    assert torch.equal(batch_positives(inputs, 2, torch.device("cpu")), torch.eye(2, dtype=torch.bool))
