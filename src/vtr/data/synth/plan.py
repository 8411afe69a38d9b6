"""Plan a synthetic data set: groups of hard negatives, splits, held-out compositions, tracks and captions.

Clips come in groups. A full group is a 2 x 3 grid: two actions (or two relations) times three object
variants (the base objects, one object with another shape, one object with another colour); scene, sizes,
background and geometry are shared. So every clip has a clip that differs from it only in the action and
one that differs only in one object. Splits are drawn by group, so a clip's hard negatives share its split.

Everything is drawn from random streams keyed by (seed, group) or (seed, clip index), or dealt from decks
shuffled by (seed, split, deck, round) to the groups in order (the objects' colours and shapes), never from global
state, so the plan (and ``annotations.jsonl``) is the same for the same arguments whatever the worker count.
"""

from __future__ import annotations

import itertools
import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from vtr.data.synth.captions import captions_for
from vtr.data.synth.motion import geometry_key, relation_tracks, single_object_track
from vtr.data.synth.render import object_radius
from vtr.data.synth.vocab import (
    ACTIONS,
    COLOURS,
    INVISIBLE_ACTIONS,
    RELATIONS,
    REVERSAL_PAIRS,
    SCENE_EXCLUDED_COLOURS,
    SCENES,
    SHAPES,
    SIZES,
)

CAPTIONS_PER_VIDEO = 6
ACTIONS_PER_GROUP = 2
OBJECT_VARIANTS_PER_GROUP = 3  # base, shape changed, colour changed
GROUP_SIZE = ACTIONS_PER_GROUP * OBJECT_VARIANTS_PER_GROUP
SPLIT_FRACTIONS = {"val": 0.1, "test": 0.1}  # the rest is train
TWO_OBJECT_FRACTION = 0.3  # groups with two objects and a relation
# Single-object groups whose two actions are a time-reversal pair (left/right, up/down, grow/shrink); 0.35 makes
# every action about equally frequent (see _action_pair).
REVERSAL_FRACTION = 0.35
RELATION_SIZE = "small"
_STRAIGHT_MOVES = ("move left", "move right", "move up", "move down")
_MAX_DRAWS = 1000
_TRACK_DECIMALS = 3

# Integer ids for random-stream keys (numpy SeedSequence takes integers only).
_STREAM_GEOMETRY, _STREAM_BACKGROUND = 1, 2
_GEOMETRY_IDS = {name: i for i, name in enumerate(ACTIONS + RELATIONS)}
_COLOUR_NAMES = tuple(COLOURS)
# Fitting cards of a deck's hand among which the colour rarest in the group's scene is taken: one per colour.
_LOOKAHEAD = len(COLOURS)


@dataclass(frozen=True)
class DatasetPlan:
    """Everything to write: one annotation record per clip, in clip order, and the held-out compositions."""

    records: list[dict[str, Any]]
    held_out_pairs: list[tuple[str, str]]
    group_sizes: list[int]


def group_sizes(num_videos: int) -> list[int]:
    """Split ``num_videos`` into groups: full groups of 6, and 2 x 2 groups of 4 for a remainder of 2 or 4.

    Only an odd count leaves one group incomplete (its last clip has no action partner).
    """
    full, rest = divmod(num_videos, GROUP_SIZE)
    sizes = [GROUP_SIZE] * full
    if rest == 4:
        sizes.append(4)
    elif rest == 2 and full:
        sizes[-1:] = [4, 4]
    elif rest:
        sizes.append(rest)
    return sizes


def assign_splits(num_groups: int, seed: int) -> list[str]:
    """The split of each group: about 80/10/10, at least one val and one test group once there are three."""
    if num_groups >= 3:
        n_val = max(1, round(SPLIT_FRACTIONS["val"] * num_groups))
        n_test = max(1, round(SPLIT_FRACTIONS["test"] * num_groups))
    else:
        n_val, n_test = 0, num_groups - 1
    order = list(range(num_groups))
    random.Random(f"vtr-synth:{seed}:splits").shuffle(order)
    splits = ["train"] * num_groups
    for g in order[:n_test]:
        splits[g] = "test"
    for g in order[n_test : n_test + n_val]:
        splits[g] = "val"
    return splits


def held_out_compositions(seed: int) -> list[tuple[str, str]]:
    """One (shape, action) pair per shape, each with a different action, never one the shape cannot show."""
    rng = random.Random(f"vtr-synth:{seed}:holdout")
    actions = list(ACTIONS)
    rng.shuffle(actions)
    pairs: list[tuple[str, str]] = []
    for shape in SHAPES:
        used = {action for _, action in pairs}
        candidates = [a for a in actions if a not in INVISIBLE_ACTIONS.get(shape, ()) and a not in used]
        candidates = candidates or [a for a in actions if a not in INVISIBLE_ACTIONS.get(shape, ())]
        pairs.append((shape, candidates[0]))
    return pairs


def _allowed_colours(scene: str) -> list[str]:
    return [c for c in COLOURS if c not in SCENE_EXCLUDED_COLOURS[scene]]


def _other(rng: random.Random, options: list[str] | tuple[str, ...], exclude: set[str]) -> str:
    return rng.choice([o for o in options if o not in exclude])


class _Dealer:
    """Deals the objects' colours and shapes of one split, so that each comes up about equally often.

    Drawn at random, some concepts are rare in training by chance: in the 2,000-clip demo data, 12 training clips
    had a gray second object against 30 to 68 for the other colours, and 12 a gray circle, and the test captions
    whose rarest concept had fewer than 15 training clips missed the top 5 nearly nine times as often as the
    others (benchmarks/RESULTS.md). Dealt, every card of a deck (the colour and shape of a base object, or the
    colour or shape a variant changes, per object slot) is played once per round. A group that cannot take the
    next card (a colour its scene hides, a shape that cannot show its action) takes the first that fits, and the
    skipped cards wait in the hand for the next groups. Decks are shuffled by (seed, split, deck, round), and the
    groups are planned in order, so the same arguments give the same data.

    Colours are also evened out within each scene: of the next ten cards that fit (``_LOOKAHEAD``), a colour
    card goes to the one whose colour the split's clips of the group's scene have shown least (ties: the first).
    Dealt without it, one scene's colours spread over 10 to 56 training clips in the demo's data, and the test
    captions whose rarest (colour, scene) pair had fewer than 15 training clips missed the top 5 twelve times as
    often as the others (benchmarks/RESULTS.md, "Colours dealt per scene").
    """

    def __init__(self, seed: int, split: str) -> None:
        self._seed, self._split = seed, split
        self._hands: dict[str, list[Any]] = {}
        self._rounds: dict[str, int] = {}
        # Clips of this split so far that show each (scene, colour).
        self._scene_colours: Counter[tuple[str, str]] = Counter()

    def take(self, deck: str, cards: Sequence[str], fits: Callable[[str], bool], scene: str | None = None) -> str:
        """The first card of ``deck``'s hand that ``fits``, dealing a new round of ``cards`` when none does. With a
        ``scene``, the cards are colours, and the one rarest in that scene among the next fitting cards is taken."""

        def round_of(rng: random.Random) -> list[str]:
            order = list(cards)
            rng.shuffle(order)
            return order

        return self._take(deck, round_of, fits, None if scene is None else lambda card: (scene, card))

    def take_pair(
        self, deck: str, fits: Callable[[tuple[str, str]], bool], scene: str | None = None
    ) -> tuple[str, str]:
        """The first (colour, shape) of ``deck``'s hand that ``fits``. A round holds every pair once, in an order
        where any 10 cards in a row have different colours and any 9 different shapes (card i takes colour i mod 10
        and shape i mod 9 of shuffled lists): small data sets get every colour and shape, large ones every pair.
        With a ``scene``, the card whose colour is rarest in that scene among the next fitting cards is taken."""

        def round_of(rng: random.Random) -> list[tuple[str, str]]:
            colours, shapes = list(COLOURS), list(SHAPES)
            rng.shuffle(colours)
            rng.shuffle(shapes)
            return [(colours[i % len(colours)], shapes[i % len(shapes)]) for i in range(len(colours) * len(shapes))]

        return self._take(deck, round_of, fits, None if scene is None else lambda card: (scene, card[0]))

    def count_clips(self, scene: str, colours: Sequence[str]) -> None:
        """Record one clip of ``scene`` showing objects of ``colours``."""
        self._scene_colours.update((scene, colour) for colour in colours)

    def _take(
        self,
        deck: str,
        round_of: Callable[[random.Random], list[Any]],
        fits: Callable[[Any], bool],
        scene_colour: Callable[[Any], tuple[str, str]] | None,
    ) -> Any:
        hand = self._hands.setdefault(deck, [])
        for _ in range(2):
            # Looking only a few cards ahead keeps each round's order, so a partial round stays balanced too.
            ahead = list(itertools.islice((i for i, card in enumerate(hand) if fits(card)), _LOOKAHEAD))
            if ahead:
                if scene_colour is None:
                    return hand.pop(ahead[0])
                return hand.pop(min(ahead, key=lambda i: self._scene_colours[scene_colour(hand[i])]))
            round_ = self._rounds.get(deck, 0)
            self._rounds[deck] = round_ + 1
            hand.extend(round_of(random.Random(f"vtr-synth:{self._seed}:{self._split}:{deck}:{round_}")))
        raise RuntimeError(f"no card of the {deck} deck fits; the vocabularies are inconsistent")


def _action_pair(rng: random.Random, forced: str | None) -> tuple[str, str]:
    """Two different actions: a reversal pair, or a one-way action with any other.

    A reversal pair is drawn with probability REVERSAL_FRACTION; otherwise the first action is one that has no
    reversal partner and the second any other. At the default fraction every action is about equally frequent.
    """
    reversal_pairs = [p for p in REVERSAL_PAIRS if p[0] in ACTIONS]
    reversible = {a for p in reversal_pairs for a in p}
    if forced is not None:
        partners = [b if a == forced else a for a, b in reversal_pairs if forced in (a, b)]
        if partners and rng.random() < REVERSAL_FRACTION:
            return forced, partners[0]
        return forced, _other(rng, ACTIONS, {forced})
    if rng.random() < REVERSAL_FRACTION:
        pair = list(rng.choice(reversal_pairs))
    else:
        first = rng.choice([a for a in ACTIONS if a not in reversible])
        pair = [first, _other(rng, ACTIONS, {first})]
    rng.shuffle(pair)
    return pair[0], pair[1]


def _relation_pair(rng: random.Random) -> tuple[str, str]:
    """Two different relations; each of the three is in about two thirds of the groups."""
    reversal = next(list(p) for p in REVERSAL_PAIRS if p[0] in RELATIONS)
    pair = reversal if rng.random() < 1 / 3 else ["chase", rng.choice(reversal)]
    rng.shuffle(pair)
    return pair[0], pair[1]


def _scene(seed: int, group: int) -> str:
    # Scenes are dealt in shuffled rounds, so that every scene has about the same number of groups.
    round_, place = divmod(group, len(SCENES))
    order = list(SCENES)
    random.Random(f"vtr-synth:{seed}:scenes:{round_}").shuffle(order)
    return order[place]


def _shapes_for(actions: set[str], excluded: set[tuple[str, str]]) -> list[str]:
    """Shapes that can show every action in ``actions`` and make no excluded (shape, action) pair."""
    return [
        shape
        for shape in SHAPES
        if not any(a in INVISIBLE_ACTIONS.get(shape, ()) or (shape, a) in excluded for a in actions)
    ]


def _draw_group(
    rng: random.Random,
    dealer: _Dealer,
    scene: str,
    excluded: set[tuple[str, str]],
    forced: tuple[str, str] | None,
) -> dict[str, Any]:
    """One group design: the two actions or relations (random), and the three object variants (dealt).

    Args:
        rng: the group's random stream.
        dealer: the colours and shapes of the group's split.
        scene: the group's scene.
        excluded: (shape, action) pairs no clip of the group may show (the held-out pairs, in train).
        forced: a (shape, action) pair the base clip must show, or None.
    """
    colours = _allowed_colours(scene)
    two_objects = forced is None and rng.random() < TWO_OBJECT_FRACTION
    design: dict[str, Any] = {"scene": scene}
    if two_objects:
        design["relations"] = _relation_pair(rng)
        design["chase_direction"] = rng.choice(_STRAIGHT_MOVES)
        # The subject acts through the relation; the target moves in a chase and stays still otherwise.
        slot_actions = [
            set(),
            {design["chase_direction"] if r == "chase" else "stay still" for r in design["relations"]},
        ]
    else:
        design["actions"] = _action_pair(rng, forced[1] if forced else None)
        slot_actions = [set(design["actions"])]
    slots = ["subject", "target"] if two_objects else ["single"]
    base: list[dict[str, str]] = []
    for slot, actions in zip(slots, slot_actions, strict=True):
        fitting = [forced[0]] if forced else _shapes_for(actions, excluded)
        free = [c for c in colours if c not in {o["colour"] for o in base}]
        colour, shape = dealer.take_pair(
            f"objects:{slot}", lambda card, free=free, fitting=fitting: card[0] in free and card[1] in fitting, scene
        )
        # Two objects are both small, so that one can travel a visible distance towards the other.
        base.append(
            {"shape": shape, "colour": colour, "size": RELATION_SIZE if two_objects else rng.choice(list(SIZES))}
        )
    shape_k, colour_k = rng.randrange(len(base)), rng.randrange(len(base))
    with_shape = [dict(o) for o in base]
    other_shapes = [s for s in _shapes_for(slot_actions[shape_k], excluded) if s != base[shape_k]["shape"]]
    with_shape[shape_k]["shape"] = dealer.take(f"shapes:{slots[shape_k]}", SHAPES, other_shapes.__contains__)
    with_colour = [dict(o) for o in base]
    other_colours = [c for c in colours if c not in {o["colour"] for o in base}]
    with_colour[colour_k]["colour"] = dealer.take(
        f"colours:{slots[colour_k]}", _COLOUR_NAMES, other_colours.__contains__, scene
    )
    design["variants"] = [base, with_shape, with_colour]
    return design


def _clip_objects(design: dict[str, Any], action_i: int, variant_j: int) -> tuple[list[dict], dict | None]:
    """The objects (with their action) and the relation of one clip of a group."""
    objects = [dict(o) for o in design["variants"][variant_j]]
    if "relations" in design:
        relation = design["relations"][action_i]
        objects[0]["action"] = None  # the subject's behaviour is the relation
        objects[1]["action"] = design["chase_direction"] if relation == "chase" else "stay still"
        return objects, {"type": relation, "subject": 0, "object": 1}
    objects[0]["action"] = design["actions"][action_i]
    return objects, None


def _compositions(objects: list[dict]) -> set[tuple[str, str]]:
    return {(o["shape"], o["action"]) for o in objects if o["action"] is not None}


def _valid(design: dict[str, Any], excluded: set[tuple[str, str]]) -> bool:
    """Every clip shows its actions visibly and no excluded (shape, action) pair."""
    for i in range(ACTIONS_PER_GROUP):
        for j in range(OBJECT_VARIANTS_PER_GROUP):
            objects, _ = _clip_objects(design, i, j)
            pairs = _compositions(objects)
            if any(action in INVISIBLE_ACTIONS.get(shape, ()) for shape, action in pairs) or pairs & excluded:
                return False
    return True


def _design_group(
    rng: random.Random,
    dealer: _Dealer,
    scene: str,
    excluded: set[tuple[str, str]],
    forced: tuple[str, str] | None,
) -> dict[str, Any]:
    # Shapes are drawn among compatible ones, so the first draw is valid; the check guards the construction.
    for _ in range(_MAX_DRAWS):
        design = _draw_group(rng, dealer, scene, excluded, forced)
        if _valid(design, excluded):
            for variant in design["variants"]:  # each object variant is shown with both actions or relations
                for _ in range(ACTIONS_PER_GROUP):
                    dealer.count_clips(scene, [o["colour"] for o in variant])
            return design
    raise RuntimeError("could not draw a valid synthetic group; the vocabularies are inconsistent")


def _round_track(track: np.ndarray) -> list[list[float]]:
    return [[round(float(v), _TRACK_DECIMALS) for v in row] for row in track]


def _tracks(
    design: dict[str, Any], objects: list[dict], relation: dict | None, seed: int, group: int, frames: int, size: int
) -> list[list[list[float]]]:
    """One track per object, drawn from a random stream keyed by (seed, group, geometry key): the clips of a group
    share their geometry, and the two clips of a reversal pair are each other's reverse."""
    radii = [object_radius(o["size"], size) for o in objects]
    if relation is not None:
        stream = [seed, group, _STREAM_GEOMETRY, _GEOMETRY_IDS[geometry_key(relation["type"])]]
        subject, target = relation_tracks(
            relation["type"],
            size,
            radii[0],
            radii[1],
            frames,
            np.random.default_rng(stream),
            direction=design["chase_direction"],
        )
        return [_round_track(subject), _round_track(target)]
    action = objects[0]["action"]
    stream = [seed, group, _STREAM_GEOMETRY, _GEOMETRY_IDS[geometry_key(action)]]
    return [_round_track(single_object_track(action, size, radii[0], frames, np.random.default_rng(stream)))]


def _video_name(index: int) -> str:
    return f"videos/{index:06d}.mp4"


def plan_dataset(
    num_videos: int, seed: int, num_frames: int, fps: int, size: int, holdout_compositions: bool
) -> DatasetPlan:
    """Plan every clip: its ground truth, tracks, captions, split and hard negatives.

    Args:
        num_videos: number of clips.
        seed: the data set's seed (a non-negative integer).
        num_frames: frames per clip.
        fps: frames per second (recorded in meta).
        size: frame side in pixels.
        holdout_compositions: keep :func:`held_out_compositions` out of train and show them in val/test.

    Returns:
        The plan; its records are the lines of ``annotations.jsonl``.
    """
    sizes = group_sizes(num_videos)
    splits = assign_splits(len(sizes), seed)
    held_out = held_out_compositions(seed) if holdout_compositions else []
    records: list[dict[str, Any]] = []
    dealers = {split: _Dealer(seed, split) for split in set(splits)}
    eval_groups = 0
    for group, (group_size, split) in enumerate(zip(sizes, splits, strict=True)):
        rng = random.Random(f"vtr-synth:{seed}:group:{group}")
        forced = None
        if held_out and split != "train":
            # Every other val/test group shows a held-out composition, cycling through them.
            if eval_groups % 2 == 0:
                forced = held_out[(eval_groups // 2) % len(held_out)]
            eval_groups += 1
        excluded = set(held_out) if split == "train" else set()
        design = _design_group(rng, dealers[split], _scene(seed, group), excluded, forced)
        background_seed = int(np.random.SeedSequence([seed, group, _STREAM_BACKGROUND]).generate_state(1)[0])
        first = len(records)
        members = [(i, j) for j in range(OBJECT_VARIANTS_PER_GROUP) for i in range(ACTIONS_PER_GROUP)][:group_size]
        for i, j in members:
            index = len(records)
            objects, relation = _clip_objects(design, i, j)
            meta: dict[str, Any] = {
                "group": group,
                "variant": {"action": i, "object": j},
                "scene": design["scene"],
                "objects": objects,
                "relation": relation,
                "hard_negatives": {
                    "action": [_video_name(first + m) for m, (i2, j2) in enumerate(members) if j2 == j and i2 != i],
                    # Variants 1 and 2 each change one attribute of the base (0), so differ from each other in two.
                    "object": [
                        _video_name(first + m)
                        for m, (i2, j2) in enumerate(members)
                        if i2 == i and j2 != j and 0 in (j, j2)
                    ],
                },
                "num_frames": num_frames,
                "fps": fps,
                "size": size,
                "background_seed": background_seed,
                "tracks": _tracks(design, objects, relation, seed, group, num_frames, size),
            }
            captions = captions_for(meta, random.Random(f"vtr-synth:{seed}:captions:{index}"), CAPTIONS_PER_VIDEO)
            records.append({"video": _video_name(index), "captions": captions, "split": split, "meta": meta})
    return DatasetPlan(records=records, held_out_pairs=held_out, group_sizes=sizes)
