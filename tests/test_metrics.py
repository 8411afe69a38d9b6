"""Retrieval metrics against a brute-force reference written here with plain loops, plus hand-made cases."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from vtr.errors import VtrError
from vtr.evaluate.metrics import (
    InvalidSimilarityError,
    ranks_to_metrics,
    retrieval_metrics,
    t2v_ranks,
    v2t_ranks,
)

# ---------------------------------------------------------------- brute-force reference (no shared code)


def ref_t2v(sim: list[list[float]], query_video: list[int]) -> list[int]:
    ranks = []
    for q, row in enumerate(sim):
        own = row[query_video[q]]
        ranks.append(1 + sum(1 for score in row if score > own))
    return ranks


def ref_v2t_best(sim: list[list[float]], query_video: list[int], n_videos: int) -> list[int]:
    ranks = []
    for v in range(n_videos):
        column = [sim[q][v] for q in range(len(sim))]
        own_ranks = []
        for c in range(len(sim)):
            if query_video[c] == v:
                own_ranks.append(1 + sum(1 for score in column if score > column[c]))
        ranks.append(min(own_ranks))
    return ranks


def ref_v2t_maxpool(sim: list[list[float]], query_video: list[int], n_videos: int) -> list[int]:
    ranks = []
    for v in range(n_videos):
        pooled = []
        for u in range(n_videos):
            pooled.append(max(sim[q][v] for q in range(len(sim)) if query_video[q] == u))
        ranks.append(1 + sum(1 for score in pooled if score > pooled[v]))
    return ranks


def ref_summary(ranks: list[int]) -> dict[str, float]:
    out = {}
    for k in (1, 5, 10):
        out[f"R@{k}"] = 100.0 * len([r for r in ranks if r <= k]) / len(ranks)
    ordered = sorted(ranks)
    n = len(ordered)
    out["MdR"] = ordered[n // 2] if n % 2 else (ordered[n // 2 - 1] + ordered[n // 2]) / 2
    out["MnR"] = sum(ranks) / n
    return out


def random_case(seed: int, n_videos: int, max_captions: int, levels: int) -> tuple[np.ndarray, np.ndarray]:
    """Integer-valued scores in ``levels`` steps (many ties), 1..max_captions captions per video, shuffled."""
    rng = np.random.default_rng(seed)
    counts = rng.integers(1, max_captions + 1, size=n_videos)
    query_video = np.repeat(np.arange(n_videos), counts)
    rng.shuffle(query_video)
    sim = rng.integers(0, levels, size=(len(query_video), n_videos)).astype(np.float32)
    return sim, query_video


def assert_metrics_close(got: dict[str, float], want: dict[str, float]) -> None:
    assert set(got) == {"R@1", "R@5", "R@10", "MdR", "MnR"}
    for key, value in want.items():
        assert got[key] == pytest.approx(value, abs=1e-9), key


# ---------------------------------------------------------------- against the reference


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("chunk_size", [1, 3, 1024])
def test_ranks_and_metrics_match_brute_force(seed: int, chunk_size: int) -> None:
    sim, query_video = random_case(seed, n_videos=13 + seed, max_captions=4, levels=3 + seed)
    n_videos = sim.shape[1]
    sim_list, qv_list = sim.tolist(), query_video.tolist()
    want_t2v = ref_t2v(sim_list, qv_list)
    want_best = ref_v2t_best(sim_list, qv_list, n_videos)
    want_pool = ref_v2t_maxpool(sim_list, qv_list, n_videos)

    assert t2v_ranks(sim, query_video, chunk_size=chunk_size).tolist() == want_t2v
    assert v2t_ranks(sim, query_video, chunk_size=chunk_size).tolist() == want_best
    assert v2t_ranks(sim, query_video, mode="maxpool", chunk_size=chunk_size).tolist() == want_pool

    # Documented relation: maxpool counts beating videos, best counts beating captions.
    assert all(pool <= best for pool, best in zip(want_pool, want_best, strict=True))
    assert [r == 1 for r in want_pool] == [r == 1 for r in want_best]

    for mode, want_v2t in (("best", want_best), ("maxpool", want_pool)):
        metrics = retrieval_metrics(sim, query_video, v2t=mode, chunk_size=chunk_size)
        assert set(metrics) == {"t2v", "v2t", "rsum"}
        assert_metrics_close(metrics["t2v"], ref_summary(want_t2v))
        assert_metrics_close(metrics["v2t"], ref_summary(want_v2t))
        recalls = [ref_summary(r)[f"R@{k}"] for r in (want_t2v, want_v2t) for k in (1, 5, 10)]
        assert metrics["rsum"] == pytest.approx(sum(recalls))


@pytest.mark.parametrize("dtype", [np.float16, np.float64, np.int32, np.int64])
def test_dtypes_give_the_reference_ranks(dtype: type) -> None:
    sim, query_video = random_case(7, n_videos=20, max_captions=3, levels=5)
    sim = sim.astype(dtype)
    assert t2v_ranks(sim, query_video, chunk_size=4).tolist() == ref_t2v(sim.tolist(), query_video.tolist())
    assert v2t_ranks(sim, query_video, chunk_size=4).tolist() == ref_v2t_best(sim.tolist(), query_video.tolist(), 20)


def test_continuous_scores_square_default_mapping() -> None:
    rng = np.random.default_rng(3)
    sim = rng.standard_normal((40, 40)).astype(np.float32) + 2.0 * np.eye(40, dtype=np.float32)
    identity = list(range(40))
    want_t2v = ref_t2v(sim.tolist(), identity)
    metrics = retrieval_metrics(sim, chunk_size=7)
    assert t2v_ranks(sim).tolist() == want_t2v
    assert_metrics_close(metrics["t2v"], ref_summary(want_t2v))
    # One caption per video: video-to-text is text-to-video of the transpose, whatever the convention.
    want_v2t = ref_t2v(sim.T.tolist(), identity)
    assert v2t_ranks(sim).tolist() == want_v2t
    assert v2t_ranks(sim, mode="maxpool").tolist() == want_v2t


# ---------------------------------------------------------------- hand-made cases


def clip4clip_r1(sim: np.ndarray) -> float:
    """CLIP4Clip's compute_metrics R@1 (one row may yield several hits when the diagonal is tied)."""
    sorted_neg = np.sort(-sim, axis=1)
    diag = np.diag(-sim)
    hits = np.where(sorted_neg - diag[:, None] == 0)[1]
    return 100.0 * float(np.sum(hits == 0)) / len(hits)


def test_three_by_three_with_one_tie_counts_each_query_once() -> None:
    sim = np.array([[1, 1, 0], [0, 1, 0], [0, 0, 1]], dtype=np.float32)
    assert clip4clip_r1(sim) == 75.0  # the bug this module exists to avoid
    assert t2v_ranks(sim).tolist() == [1, 1, 1]
    metrics = retrieval_metrics(sim)
    assert metrics["t2v"]["R@1"] == 100.0
    assert metrics["t2v"]["R@1"] != 75.0


def test_tie_with_a_higher_item_ranks_below_it() -> None:
    # Row 0: video 0 ties video 2 (not counted) and is beaten by video 1 -> rank 2.
    # Row 1: video 1 is beaten by videos 0 and 2 -> rank 3. Row 2: nothing higher -> rank 1.
    sim = np.array([[2, 3, 2], [5, 4, 5], [0, 0, 7]], dtype=np.float32)
    assert t2v_ranks(sim).tolist() == [2, 3, 1]
    metrics = retrieval_metrics(sim)["t2v"]
    assert metrics["R@1"] == pytest.approx(100.0 / 3)
    assert metrics["MdR"] == 2.0
    assert metrics["MnR"] == 2.0


def test_v2t_best_and_maxpool_differ_as_documented() -> None:
    # Video 0: caption q0. Video 1: captions q1 and q2. Video 2: caption q3.
    query_video = np.array([0, 1, 1, 2])
    sim = np.array(
        [
            [0.5, 0.0, 0.0],  # q0
            [0.9, 0.8, 0.0],  # q1
            [0.8, 0.1, 0.3],  # q2
            [0.1, 0.0, 0.9],  # q3
        ],
        dtype=np.float32,
    )
    # Column 0: own caption scores 0.5; q1 (0.9) and q2 (0.8) beat it -> best rank 3.
    # Max-pooled: video 0's group 0.5, video 1's max(0.9, 0.8) = 0.9, video 2's 0.1 -> rank 2.
    # Column 1: own best is q1 (0.8), nothing higher -> 1 both ways. Column 2: q3 0.9 wins -> 1.
    assert v2t_ranks(sim, query_video, mode="best").tolist() == [3, 1, 1]
    assert v2t_ranks(sim, query_video, mode="maxpool").tolist() == [2, 1, 1]
    best = retrieval_metrics(sim, query_video)["v2t"]
    pooled = retrieval_metrics(sim, query_video, v2t="maxpool")["v2t"]
    assert best["MnR"] == pytest.approx(5 / 3)
    assert pooled["MnR"] == pytest.approx(4 / 3)
    # Text-to-video does not depend on the convention: q1's own 0.8 is beaten by 0.9, q2's 0.1 by 0.8 and 0.3.
    assert t2v_ranks(sim, query_video).tolist() == [1, 2, 3, 1]


def test_ranks_to_metrics_values() -> None:
    metrics = ranks_to_metrics(np.array([1, 2, 6, 11]))
    assert metrics == {"R@1": 25.0, "R@5": 50.0, "R@10": 75.0, "MdR": 4.0, "MnR": 5.0}


def test_memmap_input_and_bounded_memory(tmp_path) -> None:
    rng = np.random.default_rng(0)
    n = 1500
    sim = rng.standard_normal((n, n), dtype=np.float32)
    np.save(tmp_path / "sim.npy", sim)
    mapped = np.load(tmp_path / "sim.npy", mmap_mode="r")
    want = retrieval_metrics(sim, chunk_size=n)  # one chunk: the plain computation
    tracemalloc.start()
    got_best = retrieval_metrics(mapped, chunk_size=64)
    got_pool = retrieval_metrics(mapped, v2t="maxpool", chunk_size=64)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert got_best == want
    assert got_pool == want  # one caption per video: the conventions agree
    # A whole-matrix float64 copy, argsort or boolean mask would be >= 25% of the float32 matrix (9 MB).
    assert peak < sim.nbytes / 4, peak


# ---------------------------------------------------------------- errors a user can cause


def test_nan_is_a_clear_error_in_both_passes() -> None:
    sim = np.eye(5, dtype=np.float32)
    sim[3, 1] = np.nan
    for call in (
        lambda: retrieval_metrics(sim),
        lambda: retrieval_metrics(sim, v2t="maxpool", chunk_size=2),
        lambda: v2t_ranks(sim, mode="maxpool"),
    ):
        with pytest.raises(InvalidSimilarityError, match=r"NaN \(at row 3, column 1\)") as info:
            call()
        assert isinstance(info.value, VtrError) and isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("sim", "query_video", "match"),
    [
        (np.zeros((2, 2, 2)), None, "must be 2-D"),
        (np.zeros((0, 3)), None, "empty"),
        (np.array([["a", "b"], ["c", "d"]]), None, "real numbers"),
        (np.ones((2, 2), dtype=bool), None, "real numbers"),
        (np.zeros((4, 2)), None, "give the video index of each query"),
        (np.zeros((4, 2)), np.array([0, 1, 1]), "one entry per query"),
        (np.zeros((4, 2)), np.array([[0, 1, 1, 0]]), "one entry per query"),
        (np.zeros((4, 2)), np.array([0.0, 1.0, 1.0, 0.0]), "integer video indices"),
        (np.zeros((4, 2)), np.array([0, 1, 2, 0]), r"query_video\[2\] = 2 is out of range"),
        (np.zeros((4, 2)), np.array([0, -1, 1, 0]), r"query_video\[1\] = -1 is out of range"),
        (np.zeros((4, 3)), np.array([0, 1, 1, 0]), "video 2 has no caption"),
    ],
)
def test_bad_input_raises_invalid_similarity_error(sim: np.ndarray, query_video: np.ndarray | None, match: str) -> None:
    with pytest.raises(InvalidSimilarityError, match=match):
        retrieval_metrics(sim, query_video)


def test_t2v_ranks_allow_videos_without_captions() -> None:
    # Distractor videos (no caption) are fine for text-to-video; only video-to-text needs every video captioned.
    sim = np.array([[3, 1, 2], [0, 4, 5]], dtype=np.float32)
    assert t2v_ranks(sim, np.array([0, 1])).tolist() == [1, 2]
    with pytest.raises(InvalidSimilarityError, match="video 2 has no caption"):
        v2t_ranks(sim, np.array([0, 1]))


def test_unknown_mode_and_bad_chunk_size() -> None:
    sim = np.eye(3)
    with pytest.raises(InvalidSimilarityError, match="unknown video-to-text convention 'mean'"):
        retrieval_metrics(sim, v2t="mean")
    with pytest.raises(InvalidSimilarityError, match="chunk_size"):
        retrieval_metrics(sim, chunk_size=0)
