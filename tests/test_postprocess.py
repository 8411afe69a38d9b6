"""Post-processing of a similarity matrix: values by hand, hubness fixed, no overflow, marginals, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vtr.errors import ConfigError
from vtr.evaluate.metrics import InvalidSimilarityError, retrieval_metrics, t2v_ranks, v2t_ranks
from vtr.evaluate.postprocess import (
    dual_softmax,
    dynamic_inverted_softmax,
    inverted_softmax,
    normalised_queries,
    sinkhorn_knopp,
    sinkhorn_potentials,
)
from vtr.evaluate.postprocess_report import PostprocessOptions, parse_methods, postprocessed_metrics

E = math.e

# Video 0 is every caption's top-1 (a hub): plain text-to-video ranks are [1, 2, 2], R@1 = 33.3%.
HUB = np.array(
    [
        [0.9, 0.5, 0.4],
        [0.8, 0.7, 0.3],
        [0.8, 0.3, 0.6],
    ]
)
# Two bank captions whose top-1 is the hub: the activation set is {video 0}. With beta 10 the log normalisers
# are log(2 e^8) = 8 + log 2 for video 0 and log(e^1 + e^2) = 2 + log(1 + 1/e) for videos 1 and 2.
BANK = np.array([[0.8, 0.1, 0.2], [0.8, 0.2, 0.1]])
LOG_NORM = np.array([8 + math.log(2), 2 + math.log(1 + 1 / E), 2 + math.log(1 + 1 / E)])


# ----------------------------------------------------------------------------------------------- dual softmax


def test_dual_softmax_t2v_values_by_hand() -> None:
    out = dual_softmax(HUB, temperature=0.1, direction="t2v")
    assert out.shape == HUB.shape and out.dtype == np.float64
    # Column 0 over the queries: softmax([9, 8, 8]) = [e, 1, 1] / (e + 2).
    assert out[0, 0] == pytest.approx(0.9 * E / (E + 2), rel=1e-12)
    assert out[1, 0] == pytest.approx(0.8 / (E + 2), rel=1e-12)
    # Column 1: softmax([5, 7, 3])[1] = 1 / (1 + e^-2 + e^-4).
    assert out[1, 1] == pytest.approx(0.7 / (1 + E**-2 + E**-4), rel=1e-12)
    # Column 2: softmax([4, 3, 6])[2] = 1 / (1 + e^-2 + e^-3).
    assert out[2, 2] == pytest.approx(0.6 / (1 + E**-2 + E**-3), rel=1e-12)


def test_dual_softmax_v2t_normalises_over_the_videos_of_each_caption() -> None:
    out = dual_softmax(HUB, temperature=0.1, direction="v2t")
    # Row 0 over the videos: softmax([9, 5, 4])[0] = 1 / (1 + e^-4 + e^-5).
    assert out[0, 0] == pytest.approx(0.9 / (1 + E**-4 + E**-5), rel=1e-12)
    assert out[1, 2] == pytest.approx(0.3 * E**3 / (E**8 + E**7 + E**3), rel=1e-12)
    # It is the t2v rescoring of the transposed problem.
    np.testing.assert_allclose(out, dual_softmax(HUB.T, temperature=0.1, direction="t2v").T, rtol=1e-12)


def test_dual_softmax_fixes_the_hub_and_the_metrics_improve() -> None:
    assert t2v_ranks(HUB).tolist() == [1, 2, 2]
    assert t2v_ranks(dual_softmax(HUB, temperature=0.1)).tolist() == [1, 1, 1]
    report = postprocessed_metrics(HUB, methods=["dsl"], options=PostprocessOptions(dsl_temperature=0.1))["dsl"]
    plain = retrieval_metrics(HUB)
    assert plain["t2v"]["R@1"] == pytest.approx(100 / 3)
    assert report["t2v"]["R@1"] == 100.0 and report["v2t"]["R@1"] == 100.0
    assert report["rsum"] > plain["rsum"]
    assert report["params"] == {"temperature": 0.1}
    assert "transductive" in report["uses"]


def test_dual_softmax_keeps_a_rectangular_shape() -> None:
    sim = np.random.default_rng(0).uniform(-1, 1, size=(7, 3)).astype(np.float32)
    for direction in ("t2v", "v2t"):
        assert dual_softmax(sim, direction=direction).shape == (7, 3)


def test_dual_softmax_refuses_a_temperature_whose_priors_underflow() -> None:
    # Scores 1000 apart at temperature 0.01: exp(-100,000) is 0 in float64, and zeros would tie.
    with pytest.raises(ConfigError, match="too small"):
        dual_softmax(np.array([[1000.0, 0.0], [0.0, 1000.0]]), temperature=0.01)


# ---------------------------------------------------------------------------------------------------- QB-Norm


def test_inverted_softmax_values_by_hand_and_the_hub_is_demoted() -> None:
    out = inverted_softmax(HUB, BANK, beta=10)
    np.testing.assert_allclose(out, 10 * HUB - LOG_NORM[None, :], rtol=0, atol=1e-12)
    assert out[1, 0] == pytest.approx(-math.log(2))  # 8 - (8 + log 2)
    # Captions 1 and 2 now find their own video; the hub drops to last even for caption 0.
    assert t2v_ranks(out).tolist() == [3, 1, 1]
    assert retrieval_metrics(out)["t2v"]["R@1"] > retrieval_metrics(HUB)["t2v"]["R@1"]


def test_dynamic_inverted_softmax_leaves_queries_whose_top1_is_not_activated_unchanged() -> None:
    sim = np.array([[0.8, 0.7, 0.3], [0.5, 0.3, 0.6]], dtype=np.float32)  # top-1: video 0 (activated), video 2
    out = dynamic_inverted_softmax(sim, BANK, beta=10, top_k=1)
    assert normalised_queries(sim, BANK, top_k=1).tolist() == [True, False]
    np.testing.assert_allclose(out[0], 10 * sim[0].astype(np.float64) - LOG_NORM, atol=1e-6)
    assert np.array_equal(out[1], sim[1].astype(np.float64))  # bit for bit
    # Every caption of HUB lands on the hub, so there the dynamic variant is the inverted softmax.
    np.testing.assert_array_equal(dynamic_inverted_softmax(HUB, BANK, beta=10), inverted_softmax(HUB, BANK, beta=10))


def test_activation_set_grows_with_top_k_and_counts_ties() -> None:
    sim = np.array([[0.8, 0.7, 0.3], [0.5, 0.3, 0.6]])
    # Second best of the bank captions: video 2 (0.2) and video 1 (0.2): all three are activated with k = 2.
    assert normalised_queries(sim, BANK, top_k=2).tolist() == [True, True]
    tied_bank = np.array([[0.5, 0.5, 0.1]])  # videos 0 and 1 tie for the top
    assert normalised_queries(np.array([[0.0, 1.0, 0.0]]), tied_bank, top_k=1).tolist() == [True]
    # A query whose tied best videos include an activated one is normalised.
    assert normalised_queries(np.array([[0.0, 0.5, 0.5]]), np.array([[0.0, 0.0, 1.0]])).tolist() == [True]


def test_qbnorm_report_is_text_to_video_only_and_records_its_bank() -> None:
    options = PostprocessOptions(qb_beta=10)
    report = postprocessed_metrics(HUB, methods=["qbnorm"], bank_sim=BANK, bank_name="train captions", options=options)
    section = report["qbnorm"]
    assert set(section) == {"method", "uses", "params", "t2v"}
    assert section["params"] == {
        "beta": 10,
        "top_k": 1,
        "bank": "train captions",
        "bank_size": 2,
        "normalised_percent": 100.0,
    }
    assert section["t2v"]["R@1"] == pytest.approx(200 / 3) and section["t2v"]["MnR"] == pytest.approx(5 / 3)
    with pytest.raises(ConfigError, match="query bank"):
        postprocessed_metrics(HUB, methods=["qbnorm"])


def test_no_overflow_for_beta_100_on_similarities_near_1() -> None:
    rng = np.random.default_rng(1)
    sim = (0.99 + 0.01 * rng.random((20, 30))).astype(np.float32)
    bank = (0.99 + 0.01 * rng.random((500, 30))).astype(np.float32)
    with np.errstate(over="ignore"):
        assert np.isinf(np.exp(np.float32(100) * bank)).all()  # the textbook formula in float32 is inf / inf
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        out = inverted_softmax(sim, bank, beta=100)
        dynamic = dynamic_inverted_softmax(sim, bank, beta=100)
    assert np.isfinite(out).all() and np.isfinite(dynamic).all()
    # float64 still holds exp(100): the textbook ratio, logged, is the same matrix.
    s64, b64 = sim.astype(np.float64), bank.astype(np.float64)
    reference = np.log(np.exp(100 * s64) / np.exp(100 * b64).sum(axis=0))
    np.testing.assert_allclose(out, reference, rtol=0, atol=1e-9)
    # beta 1000 overflows even float64 (exp(1000) = inf); the log domain does not.
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        out = inverted_softmax(sim, bank, beta=1000)
    np.testing.assert_allclose(out, 1000 * s64 - np.logaddexp.reduce(1000 * b64, axis=0), rtol=0, atol=1e-8)


# --------------------------------------------------------------------------------------------- Sinkhorn-Knopp


def test_sinkhorn_2x2_plan_by_hand() -> None:
    # With uniform marginals the 2x2 plan is [[p, 1/2 - p], [1/2 - p, p]], and scaling rows and columns keeps the
    # cross ratio of exp(sim / eps): p^2 / (1/2 - p)^2 = e^(1 + 0 - 0 - 0), so p = r / (2 (1 + r)), r = e^(1/2).
    r = math.exp(0.5)
    p = r / (2 * (1 + r))
    plan = np.exp(sinkhorn_knopp(np.array([[1.0, 0.0], [0.0, 0.0]]), epsilon=1.0, max_iter=1000, tol=1e-12))
    np.testing.assert_allclose(plan, [[p, 0.5 - p], [0.5 - p, p]], rtol=1e-9)


def test_sinkhorn_gives_uniform_marginals() -> None:
    rng = np.random.default_rng(2)
    sim = rng.uniform(-1, 1, size=(40, 10)).astype(np.float32)  # four captions per video, say
    potentials = sinkhorn_potentials(sim, epsilon=0.1, max_iter=500, tol=1e-6)
    assert potentials.marginal_error <= 1e-6 and potentials.iterations < 500
    plan = np.exp(sinkhorn_knopp(sim, epsilon=0.1, max_iter=500, tol=1e-6))
    assert plan.shape == (40, 10)
    np.testing.assert_allclose(plan.sum(axis=1), 1 / 40, rtol=1e-12)  # rows are exact after a row update
    np.testing.assert_allclose(plan.sum(axis=0), 1 / 10, rtol=1e-6)
    # The column potential is a per-video bias: within a row, ranks follow sim / eps + column.
    expected = sim.astype(np.float64) / 0.1 + potentials.column[None, :]
    np.testing.assert_array_equal(
        t2v_ranks(plan, np.repeat(np.arange(10), 4)), t2v_ranks(expected, np.repeat(np.arange(10), 4))
    )


def test_sinkhorn_fixes_the_hub_in_both_directions() -> None:
    out = sinkhorn_knopp(HUB, epsilon=0.1)
    assert t2v_ranks(out).tolist() == [1, 1, 1] and v2t_ranks(out).tolist() == [1, 1, 1]


def test_sinkhorn_stops_at_max_iter_and_reports_it() -> None:
    potentials = sinkhorn_potentials(HUB, epsilon=0.01, max_iter=1, tol=0.0)
    assert potentials.iterations == 1 and potentials.marginal_error > 0
    report = postprocessed_metrics(HUB, methods=["sinkhorn"], options=PostprocessOptions(sinkhorn_max_iter=1))
    assert report["sinkhorn"]["params"]["iterations"] == 1


def test_sinkhorn_is_finite_for_a_tiny_epsilon() -> None:
    sim = 0.99 + 0.01 * np.random.default_rng(3).random((30, 30))
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        out = sinkhorn_knopp(sim, epsilon=1e-4, max_iter=20)
    assert np.isfinite(out).all()


# ------------------------------------------------------------------------------------------ shared behaviour


def _every_method(sim, chunk_size):
    bank = np.linspace(0, 1, 5 * sim.shape[1]).reshape(5, sim.shape[1])
    return [
        dual_softmax(sim, direction="t2v", chunk_size=chunk_size),
        dual_softmax(sim, direction="v2t", chunk_size=chunk_size),
        inverted_softmax(sim, bank, chunk_size=chunk_size),
        dynamic_inverted_softmax(sim, bank, chunk_size=chunk_size),
        sinkhorn_knopp(sim, chunk_size=chunk_size),
    ]


def test_chunking_and_memmap_do_not_change_the_result(tmp_path) -> None:
    sim = np.random.default_rng(4).uniform(-1, 1, size=(23, 6)).astype(np.float32)
    np.save(tmp_path / "sim.npy", sim)
    mapped = np.load(tmp_path / "sim.npy", mmap_mode="r")
    for whole, one_row, from_disk in zip(_every_method(sim, 256), _every_method(sim, 1), _every_method(mapped, 5)):
        assert whole.shape == sim.shape
        np.testing.assert_allclose(one_row, whole, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(from_disk, whole, rtol=1e-12, atol=1e-12)
    assert not mapped.flags.writeable  # read chunk by chunk, never written


@pytest.mark.parametrize(
    ("sim", "message"),
    [
        (np.zeros(3), "must be 2-D"),
        (np.zeros((0, 3)), "empty"),
        (np.array([["a", "b"]]), "real numbers"),
        (np.array([[0.1, np.nan], [0.2, 0.3]]), "NaN .at row 0, column 1"),
        (np.array([[0.1, 0.2], [np.inf, 0.3]]), "an infinity .at row 1, column 0"),
    ],
)
def test_bad_matrices_are_refused_by_every_method(sim, message) -> None:
    good = np.eye(2)
    calls = [
        lambda: dual_softmax(sim),
        lambda: dual_softmax(sim, direction="v2t"),
        lambda: inverted_softmax(sim, good),
        lambda: dynamic_inverted_softmax(sim, good),
        lambda: sinkhorn_knopp(sim),
        lambda: inverted_softmax(good, sim),  # a bad bank (the 1-D and empty ones fail the shape check first)
    ]
    for call in calls[:-1]:
        with pytest.raises(InvalidSimilarityError, match=message):
            call()
    with pytest.raises(InvalidSimilarityError):
        calls[-1]()


def test_a_bank_scored_against_other_videos_is_refused() -> None:
    with pytest.raises(InvalidSimilarityError, match="same test videos"):
        inverted_softmax(HUB, np.zeros((4, 2)))
    with pytest.raises(InvalidSimilarityError, match="query bank similarity matrix has NaN"):
        dynamic_inverted_softmax(HUB, np.array([[0.1, np.nan, 0.2]]))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: dual_softmax(HUB, temperature=0), "temperature must be a positive finite"),
        (lambda: dual_softmax(HUB, temperature=-1.0), "temperature must be a positive finite"),
        (lambda: dual_softmax(HUB, temperature=float("nan")), "temperature must be a positive finite"),
        (lambda: dual_softmax(HUB, temperature="0.1"), "temperature must be a positive number"),
        (lambda: dual_softmax(HUB, direction="both"), "unknown direction"),
        (lambda: dual_softmax(HUB, chunk_size=0), "chunk_size"),
        (lambda: inverted_softmax(HUB, BANK, beta=0), "beta"),
        (lambda: inverted_softmax(HUB, BANK, beta=float("inf")), "beta"),
        (lambda: dynamic_inverted_softmax(HUB, BANK, top_k=0), "top_k must be an integer in 1..3"),
        (lambda: dynamic_inverted_softmax(HUB, BANK, top_k=4), "top_k must be an integer in 1..3"),
        (lambda: dynamic_inverted_softmax(HUB, BANK, top_k=1.5), "top_k"),
        (lambda: sinkhorn_knopp(HUB, epsilon=0), "epsilon"),
        (lambda: sinkhorn_knopp(HUB, max_iter=0), "max_iter"),
        (lambda: sinkhorn_knopp(HUB, tol=-1e-3), "tol"),
        (lambda: PostprocessOptions(qb_top_k=0), "top_k"),
        (lambda: PostprocessOptions(sinkhorn_tol=float("nan")), "tol"),
        (lambda: postprocessed_metrics(HUB, methods=["softmax"]), "unknown post-processing method"),
    ],
)
def test_bad_parameters_are_config_errors(call, message) -> None:
    with pytest.raises(ConfigError, match=message):
        call()


def test_parse_methods() -> None:
    assert parse_methods("dsl, Sinkhorn,dsl") == ("dsl", "sinkhorn")
    with pytest.raises(ConfigError, match="unknown post-processing method 'qb'"):
        parse_methods("dsl,qb")
    with pytest.raises(ConfigError, match="no post-processing method"):
        parse_methods(" , ")


def test_postprocessing_leaves_the_input_untouched() -> None:
    sim = HUB.copy()
    postprocessed_metrics(sim, methods=["dsl", "qbnorm", "sinkhorn"], bank_sim=BANK)
    np.testing.assert_array_equal(sim, HUB)
