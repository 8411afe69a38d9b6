"""The search engine's own test: search an index with every caption of a split and count how often the caption's
video comes back in the top ``k`` (what ``vtr demo`` writes to ``DIR/search_check.json``).

It goes through :class:`vtr.Searcher`, as ``vtr search`` does, so it checks the index, the stored embeddings and
the query path together; its top-``k`` rate is the evaluation's R@k when they agree.

On the synthetic benchmark a caption that leaves out the scene or the size also describes other clips ("The
turquoise heart is rotating." fits every turquoise heart that rotates). Such a caption's video can be pushed out
of the top ``k`` by clips the caption describes just as well. The check counts these apart, as the *filtered*
ranking of link prediction does (Bordes et al., "Translating Embeddings for Modeling Multi-relational Data",
NeurIPS 2013): a caption's filtered rank leaves out the other clips it describes. The plain count stays the
headline; the filtered one says how many of the misses are of that kind.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vtr.data.annotations import VideoRecord
from vtr.errors import DataFormatError


def filtered_rank(ranked: Sequence[str], own: str, described: set[str]) -> int | None:
    """The 1-based rank of ``own`` in ``ranked`` when the other clips of ``described`` are left out, or None when
    ``own`` is not in ``ranked``."""
    above = 0
    for name in ranked:
        if name == own:
            return above + 1
        if name not in described:
            above += 1
    return None


def described_clips(records: Sequence[VideoRecord]) -> list[list[set[str]]] | None:
    """For each caption of each record, the file names of the records' clips it describes (its own among them),
    from the synthetic benchmark's meta; None when the records are not the synthetic benchmark's."""
    from vtr.data.synth.concepts import caption_concepts, describes, video_concepts

    try:
        clips = [(Path(record.video).name, video_concepts(record.meta)) for record in records]
        captions = [[caption_concepts(caption) for caption in record.captions] for record in records]
    except DataFormatError:
        return None
    return [[{name for name, concepts in clips if describes(said, concepts)} for said in row] for row in captions]


def check_search(index_dir: str | Path, records: Sequence[VideoRecord], k: int = 5) -> dict[str, Any]:
    """Search the index at ``index_dir`` with every caption of ``records``; count the captions whose video is in
    the top ``k``.

    Returns:
        ``k``, ``queries``, ``hits`` (captions whose video is in the top ``k``), ``filtered_hits`` (the same
        with the other clips a caption describes left out of its ranking; None when the records are not the
        synthetic benchmark's), ``videos``, ``videos_found_by_every_caption``, and ``missed``: per caption not
        in the top ``k``, its ``query``, ``video``, the video's ``rank`` (None when below the clips searched),
        the ``top`` ``k`` file names, and ``described_above`` (the clips above its video that the caption
        describes too, when known).
    """
    from vtr.index.searcher import MAX_K, Searcher

    described = described_clips(records)
    searcher = Searcher(index_dir)
    try:
        missed: list[dict[str, Any]] = []
        hits = filtered_hits = queries = videos_found = 0
        for i, record in enumerate(records):
            name = Path(record.video).name
            all_found = True
            for j, caption in enumerate(record.captions):
                fits = described[i][j] if described is not None else {name}
                # Deep enough to see the video's filtered rank when it is k or better.
                results = searcher.search(caption, k=min(MAX_K, k + len(fits - {name})))
                ranked = [Path(r.path).name for r in results]
                queries += 1
                rank = filtered_rank(ranked, name, fits)
                if rank is not None and rank <= k:
                    filtered_hits += 1
                if name in ranked[:k]:
                    hits += 1
                    continue
                all_found = False
                own = ranked.index(name) + 1 if name in ranked else None
                miss: dict[str, Any] = {"query": caption, "video": name, "rank": own, "top": ranked[:k]}
                if described is not None:
                    above = ranked if own is None else ranked[: own - 1]
                    miss["described_above"] = [clip for clip in above if clip in fits]
                missed.append(miss)
            videos_found += all_found
    finally:
        searcher.close()
    return {
        "k": k,
        "queries": queries,
        "hits": hits,
        "filtered_hits": filtered_hits if described is not None else None,
        "videos": len(records),
        "videos_found_by_every_caption": videos_found,
        "missed": missed,
    }


def summary_line(check: dict[str, Any]) -> str:
    """One line for the console: the counts of :func:`check_search`'s result."""
    k, queries, hits = check["k"], check["queries"], check["hits"]
    share = 100 * hits / max(queries, 1)
    line = f"search check: {hits} of {queries} test captions find their video in the top {k} ({share:.1f}%)"
    if check["filtered_hits"] is not None and check["filtered_hits"] != hits:
        line += f", {check['filtered_hits']} with other clips a caption describes just as well not counted above it"
    return f"{line}; {check['videos_found_by_every_caption']} of {check['videos']} videos are found by every caption"
