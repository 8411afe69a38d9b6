"""Name -> class registries for video encoders, text encoders and alignment heads, selected by the run config."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from vtr.errors import ConfigError

T = TypeVar("T", bound=type)


class Registry:
    """A named table of classes; ``register(name)`` is a class decorator, ``get(name)`` a ConfigError-safe lookup.

    Args:
        kind: what the entries are, for error messages ("video encoder", "alignment head").
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, type] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Register the decorated class under ``name`` (which must be new)."""

        def decorate(cls: T) -> T:
            if name in self._entries and self._entries[name] is not cls:
                raise ValueError(f"{self.kind} {name!r} is already registered by {self._entries[name].__name__}")
            self._entries[name] = cls
            cls.registry_name = name  # type: ignore[attr-defined]
            return cls

        return decorate

    def get(self, name: str) -> type:
        """The class registered as ``name``; ConfigError listing the known names otherwise."""
        try:
            return self._entries[name]
        except KeyError:
            raise ConfigError(f"unknown {self.kind} {name!r}; known: {', '.join(self.names())}") from None

    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._entries)


VIDEO_ENCODERS = Registry("video encoder")
TEXT_ENCODERS = Registry("text encoder")
HEADS = Registry("alignment head")


def register_video_encoder(name: str) -> Callable[[T], T]:
    """Class decorator: make a :class:`vtr.models.video_encoders.VideoEncoder` subclass selectable by name."""
    return VIDEO_ENCODERS.register(name)


def register_text_encoder(name: str) -> Callable[[T], T]:
    """Class decorator: make a :class:`vtr.models.text_encoders.TextEncoder` subclass selectable by name."""
    return TEXT_ENCODERS.register(name)


def register_head(name: str) -> Callable[[T], T]:
    """Class decorator: make a :class:`vtr.models.heads.AlignmentHead` subclass selectable by name."""
    return HEADS.register(name)
