"""JSON shapes of the HTTP API (they also document it in the OpenAPI schema at ``/docs``)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class SearchResultOut(BaseModel):
    """One hit: a video, or a moment of it, with its score and where to fetch it."""

    rank: int = Field(description="1 for the best hit.")
    score: float = Field(description="Cosine similarity between the query and the video (or moment) embedding.")
    id: int = Field(description="The video's id in the index.")
    video_id: int = Field(description="The same as ``id`` (the name ``vtr search --json`` uses).")
    path: str = Field(description="The video file, as recorded by the index.")
    file_name: str = Field(description="The file's name, without its folder.")
    start: float = Field(description="Start of the matching moment, in seconds.")
    end: float = Field(description="End of the matching moment, in seconds.")
    thumbnail: str | None = Field(description="The thumbnail file, as recorded by the index.")
    moment: int | None = Field(description="Index of the moment in the video's moment list, when known.")
    thumbnail_url: str
    stream_url: str
    video_url: str


class SearchResponse(BaseModel):
    """The answer to ``GET /api/search``: the same JSON as ``vtr search --json`` plus ids and URLs."""

    query: str
    k: int
    took_ms: float = Field(description="Time spent searching, in milliseconds.")
    results: list[SearchResultOut]


class MomentOut(BaseModel):
    """One indexed moment of a video."""

    index: int
    start: float
    end: float
    thumbnail_url: str


class VideoOut(BaseModel):
    """One indexed video."""

    id: int
    path: str
    file_name: str
    duration: float
    size_bytes: int
    thumbnail_url: str
    stream_url: str
    moments: list[MomentOut]


class HealthOut(BaseModel):
    """Liveness and readiness: ``ok`` once the index is open, ``starting`` before, ``error`` if it failed."""

    status: str
    detail: str | None = None
    videos: int | None = Field(default=None, description="Number of indexed videos, when the index is open.")
