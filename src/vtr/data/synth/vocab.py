"""The synthetic benchmark's vocabularies: what can be drawn (shapes, colours, sizes, scenes, actions,
relations) and the words the captions may use for each.

Every name here is a value that ``meta`` of an annotation line can hold; the phrase tables give several
synonyms per value so that retrieval has to understand the caption, not match a fixed string.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class VerbPhrase:
    """One way of saying an action: third person present (``"slides leftward"``) and gerund (``"sliding leftward"``).

    The first word of each form is the verb a part-of-speech tagger must find.
    """

    present: str
    gerund: str

    @property
    def verbs(self) -> tuple[str, str]:
        """The verb of the present form and of the gerund form (``("slides", "sliding")``)."""
        return self.present.split()[0], self.gerund.split()[0]


def _vp(*pairs: tuple[str, str]) -> tuple[VerbPhrase, ...]:
    return tuple(VerbPhrase(present, gerund) for present, gerund in pairs)


# Shape name -> nouns a caption may use (the first is the name itself; the last word of each is its head noun).
# The name is the value in meta. No hexagon, pentagon or moon: spaCy's small model often tags those PROPN.
SHAPE_NOUNS: dict[str, tuple[str, ...]] = {
    "circle": ("circle", "disc", "dot"),
    "square": ("square",),
    "triangle": ("triangle",),
    "star": ("star",),
    "diamond": ("diamond", "rhombus"),
    "cross": ("cross",),
    "heart": ("heart",),
    "ring": ("ring", "hoop"),
    "rectangle": ("rectangle",),
}
SHAPES: tuple[str, ...] = tuple(SHAPE_NOUNS)

# Colour name -> RGB drawn. Chosen far apart so that they survive H.264's 4:2:0 chroma subsampling. No "orange"
# or "cyan": spaCy's small model reads "an orange square" / "a cyan star" as compounds and mistags the shape.
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (40, 185, 50),
    "blue": (40, 80, 235),
    "yellow": (245, 225, 35),
    "purple": (145, 50, 195),
    "pink": (250, 130, 200),
    "white": (245, 245, 245),
    "black": (20, 20, 20),
    "gray": (128, 128, 128),
    "turquoise": (30, 215, 200),
}

# Size name -> object radius as a fraction of the frame side, and the adjectives a caption may use.
SIZES: dict[str, float] = {"small": 0.13, "large": 0.2}
SIZE_WORDS: dict[str, tuple[str, ...]] = {"small": ("small", "little", "tiny"), "large": ("large", "big", "huge")}

# Scene name -> prepositional phrases that place an object in it (the scene noun is the phrase's last word).
SCENE_PHRASES: dict[str, tuple[str, ...]] = {
    "grassy field": ("on a grassy field", "in a green meadow", "on the grass", "in a grassy field"),
    "desert": ("in the desert", "on the sand dunes", "in a sandy desert", "over the desert sand"),
    "ocean": ("over the ocean", "above the sea", "over the blue water", "in front of the ocean waves"),
    "night sky": ("against the night sky", "in a starry sky", "across the night sky", "under the stars"),
    "snow": ("on the snow", "in a snowy field", "on a snowfield", "over the white snow"),
    "brick wall": ("in front of a brick wall", "against a brick wall", "before a wall of red bricks"),
    "road": ("on a road", "on the asphalt", "on a grey street", "on the road surface"),
    "wooden floor": ("on a wooden floor", "on the floorboards", "across a wooden floor", "on the wooden planks"),
}
SCENES: tuple[str, ...] = tuple(SCENE_PHRASES)

# Colours that would hide in a scene's background; never drawn there.
SCENE_EXCLUDED_COLOURS: dict[str, frozenset[str]] = {
    "grassy field": frozenset({"green"}),
    "desert": frozenset({"yellow"}),
    "ocean": frozenset({"blue", "turquoise"}),
    "night sky": frozenset({"black", "purple"}),
    "snow": frozenset({"white"}),
    "brick wall": frozenset({"red"}),
    "road": frozenset({"black", "gray"}),
    "wooden floor": frozenset(),
}

# Action name -> verb phrases. The name is the value in meta["objects"][i]["action"].
ACTION_PHRASES: dict[str, tuple[VerbPhrase, ...]] = {
    "move left": _vp(
        ("moves to the left", "moving to the left"),
        ("slides leftward", "sliding leftward"),
        ("travels to the left", "travelling to the left"),
        ("drifts to the left", "drifting to the left"),
        ("moves leftward", "moving leftward"),
        ("heads to the left", "heading to the left"),
    ),
    "move right": _vp(
        ("moves to the right", "moving to the right"),
        ("slides rightward", "sliding rightward"),
        ("travels to the right", "travelling to the right"),
        ("drifts to the right", "drifting to the right"),
        ("moves rightward", "moving rightward"),
        ("heads to the right", "heading to the right"),
    ),
    "move up": _vp(
        ("moves up", "moving up"),
        ("rises", "rising"),
        ("floats upward", "floating upward"),
        ("climbs upward", "climbing upward"),
        ("travels upward", "travelling upward"),
        ("drifts up", "drifting up"),
    ),
    "move down": _vp(
        ("moves down", "moving down"),
        ("sinks", "sinking"),
        ("slides downward", "sliding downward"),
        ("descends", "descending"),
        ("drifts down", "drifting down"),
        ("travels downward", "travelling downward"),
    ),
    "rotate": _vp(
        ("rotates", "rotating"),
        ("spins", "spinning"),
        ("turns around", "turning around"),
        ("spins in place", "spinning in place"),
        ("twirls", "twirling"),
        ("rotates slowly", "rotating slowly"),
    ),
    "grow": _vp(
        ("grows", "growing"),
        ("expands", "expanding"),
        ("gets bigger", "getting bigger"),
        ("grows larger", "growing larger"),
        ("swells", "swelling"),
        ("increases in size", "increasing in size"),
    ),
    "shrink": _vp(
        ("shrinks", "shrinking"),
        ("gets smaller", "getting smaller"),
        ("becomes smaller", "becoming smaller"),
        ("shrinks in size", "shrinking in size"),
        ("shrinks down", "shrinking down"),
        ("decreases in size", "decreasing in size"),
    ),
    "bounce": _vp(
        ("bounces", "bouncing"),
        ("bounces up and down", "bouncing up and down"),
        ("hops", "hopping"),
        ("jumps up and down", "jumping up and down"),
        ("bounces on the ground", "bouncing on the ground"),
    ),
    "blink": _vp(
        ("blinks", "blinking"),
        ("turns on and off", "turning on and off"),
        ("flickers", "flickering"),
        ("blinks on and off", "blinking on and off"),
        ("appears and disappears", "appearing and disappearing"),
    ),
    "stay still": _vp(
        ("stays still", "staying still"),
        ("remains motionless", "remaining motionless"),
        ("sits still", "sitting still"),
        ("rests in place", "resting in place"),
        ("stays in place", "staying in place"),
    ),
    "fall": _vp(
        ("falls", "falling"),
        ("drops", "dropping"),
        ("falls down", "falling down"),
        ("drops down", "dropping down"),
        ("tumbles down", "tumbling down"),
    ),
}
ACTIONS: tuple[str, ...] = tuple(ACTION_PHRASES)

# Relation name -> verb phrases taking the second object as their object ("chases" + "a blue square").
RELATION_PHRASES: dict[str, tuple[VerbPhrase, ...]] = {
    "chase": _vp(
        ("chases", "chasing"),
        ("pursues", "pursuing"),
        ("follows", "following"),
        ("runs after", "running after"),
        ("goes after", "going after"),
    ),
    "approach": _vp(
        ("approaches", "approaching"),
        ("moves toward", "moving toward"),
        ("comes closer to", "coming closer to"),
        ("heads toward", "heading toward"),
        ("gets closer to", "getting closer to"),
    ),
    "move away from": _vp(
        ("moves away from", "moving away from"),
        ("retreats from", "retreating from"),
        ("pulls away from", "pulling away from"),
        ("drifts away from", "drifting away from"),
        ("gets farther from", "getting farther from"),
    ),
}
RELATIONS: tuple[str, ...] = tuple(RELATION_PHRASES)

# Pairs that are each other's time reversal: rendered from one shared trajectory played forwards and backwards,
# so that the two clips have the same mean frame and only temporal order tells them apart.
REVERSAL_PAIRS: tuple[tuple[str, str], ...] = (
    ("move right", "move left"),
    ("move down", "move up"),
    ("grow", "shrink"),
    ("approach", "move away from"),
)

# A rotating circle looks like a still one.
INVISIBLE_ACTIONS: dict[str, frozenset[str]] = {"circle": frozenset({"rotate"}), "ring": frozenset({"rotate"})}
