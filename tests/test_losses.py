"""Multi-positive InfoNCE against brute-force references and hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from vtr.losses import contrastive_loss, group_positives, multi_positive_info_nce


def brute_force(logits: torch.Tensor, positives: torch.Tensor, mode: str) -> float:
    """The loss written as loops over Python floats, straight from the definitions in the docstring."""
    rows = []
    for i in range(logits.shape[0]):
        pos = [j for j in range(logits.shape[1]) if positives[i, j]]
        neg = [j for j in range(logits.shape[1]) if not positives[i, j]]
        if not pos:
            continue
        row = [float(v) for v in logits[i]]
        if mode == "each":
            terms = []
            for p in pos:
                denominator = math.exp(row[p]) + sum(math.exp(row[n]) for n in neg)
                terms.append(-math.log(math.exp(row[p]) / denominator))
            rows.append(sum(terms) / len(terms))
        else:
            numerator = sum(math.exp(row[p]) for p in pos)
            rows.append(-math.log(numerator / sum(math.exp(v) for v in row)))
    return sum(rows) / len(rows)


def test_one_positive_per_row_is_cross_entropy() -> None:
    logits = torch.randn(6, 6, generator=torch.Generator().manual_seed(0))
    expected = F.cross_entropy(logits, torch.arange(6))
    for mode in ("each", "sum"):
        assert torch.allclose(multi_positive_info_nce(logits, mode=mode), expected, atol=1e-6)


@pytest.mark.parametrize("mode", ["each", "sum"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_brute_force_reference(mode: str, seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(5, 7, generator=generator) * 3
    positives = torch.rand(5, 7, generator=generator) < 0.3
    positives[0] = False  # a row without positives is left out of the mean
    positives[1] = True  # a row without negatives
    positives[2, :] = False
    positives[2, 3] = True
    got = multi_positive_info_nce(logits, positives, mode=mode)
    assert got.item() == pytest.approx(brute_force(logits, positives, mode), rel=1e-5, abs=1e-6)


def test_hand_computed_two_identical_nouns() -> None:
    # Captions 0 and 1 lost the same noun; caption 2 another. Rows: x_n, columns: y_n, logits = cos / tau.
    logits = torch.tensor([[2.0, 1.0, 0.0], [1.0, 2.0, 0.0], [0.0, 0.0, 2.0]])
    positives = group_positives(torch.tensor([7, 7, 9]))
    e = math.exp
    row0 = (-math.log(e(2) / (e(2) + e(0))) - math.log(e(1) / (e(1) + e(0)))) / 2
    row1 = row0  # the same numbers in another order
    row2 = -math.log(e(2) / (e(2) + 2 * e(0)))
    expected = (row0 + row1 + row2) / 3
    assert multi_positive_info_nce(logits, positives).item() == pytest.approx(expected, rel=1e-6)
    as_negatives = multi_positive_info_nce(logits)  # treating the twin as a negative gives a different loss
    assert as_negatives.item() == pytest.approx((2 * -math.log(e(2) / (e(2) + e(1) + e(0))) + row2) / 3, rel=1e-6)
    assert as_negatives.item() > expected + 0.1


def test_duplicated_positive_counts_once() -> None:
    # The same noun encoded twice gives two equal columns; for the rows that own it, "each" mode must give the
    # loss they would have with a single copy (a twin is neither a negative nor a second vote).
    generator = torch.Generator().manual_seed(3)
    x = F.normalize(torch.randn(4, 8, generator=generator), dim=-1)
    unique_y = F.normalize(torch.randn(3, 8, generator=generator), dim=-1)
    groups = torch.tensor([0, 1, 1, 2])
    y = unique_y[groups]  # rows 1 and 2 share a target
    twins = multi_positive_info_nce(20 * x[1:3] @ y.t(), group_positives(groups[1:3], groups))
    single = multi_positive_info_nce(20 * x[1:3] @ unique_y.t(), group_positives(groups[1:3], torch.arange(3)))
    assert torch.allclose(twins, single, atol=1e-6)


def test_degenerate_batches_keep_finite_gradients() -> None:
    logits = torch.randn(3, 3, requires_grad=True)
    all_positive = torch.ones(3, 3, dtype=torch.bool)  # every caption lost the same noun: no negatives
    loss = multi_positive_info_nce(logits, all_positive)
    loss.backward()
    assert loss.item() == 0.0
    assert torch.isfinite(logits.grad).all()
    logits.grad = None
    none = multi_positive_info_nce(logits, torch.zeros(3, 3, dtype=torch.bool))
    none.backward()
    assert none.item() == 0.0 and torch.equal(logits.grad, torch.zeros(3, 3))


def test_contrastive_loss_directions_and_temperature() -> None:
    generator = torch.Generator().manual_seed(4)
    a, b = torch.randn(4, 6, generator=generator), torch.randn(4, 6, generator=generator)
    sim = F.normalize(a, dim=-1) @ F.normalize(b, dim=-1).t()
    scale = 1 / 0.07
    expected_a2b = F.cross_entropy(sim * scale, torch.arange(4))
    expected_b2a = F.cross_entropy(sim.t() * scale, torch.arange(4))
    symmetric = contrastive_loss(a, b, scale)
    assert torch.allclose(symmetric["a2b_loss"], expected_a2b, atol=1e-5)
    assert torch.allclose(symmetric["b2a_loss"], expected_b2a, atol=1e-5)
    assert torch.allclose(symmetric["loss"], (expected_a2b + expected_b2a) / 2, atol=1e-5)
    one_way = contrastive_loss(a, b, scale, symmetric=False)
    assert torch.allclose(one_way["loss"], expected_a2b, atol=1e-5) and "b2a_loss" not in one_way


def test_bad_arguments_raise() -> None:
    with pytest.raises(ValueError, match="positives must be given"):
        multi_positive_info_nce(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="unknown positive mode"):
        multi_positive_info_nce(torch.zeros(2, 2), mode="max")


def test_contrastive_loss_stays_float32_under_bf16_autocast() -> None:
    torch.manual_seed(0)
    a, b = torch.randn(16, 32), torch.randn(16, 32)
    reference = contrastive_loss(a, b, 20.0)["loss"]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        inside = contrastive_loss(a, b, 20.0)["loss"]
    assert inside.dtype == torch.float32
    torch.testing.assert_close(inside, reference)
