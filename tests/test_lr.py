"""The paper's adaptive learning rate (eqs. 3-6): closed-form root, fixed point, clamp, scheduler."""

from __future__ import annotations

import math

import pytest

from adlcodec.lr import (
    THRESHOLD, AdaptiveLR, adaptive_lr_update, fixed_point_lr_update, quadratic_coefficients,
)

torch = pytest.importorskip("torch")


def paper_rhs(lr: float, loss_diff: float, new_lr: float) -> float:
    """Right-hand side of eq. 6, written term by term exactly as the paper does (π = 3.14)."""
    a_y1 = 1 / 2 + (loss_diff + 1 / new_lr) / (5 * 3.14)
    a_y21 = 1 / 4 + lr / (0.6 * 3.14)
    a_y22 = 1 / 4 + (loss_diff + 1 / new_lr) / (5.5 * 3.14)
    return lr / 2 + (loss_diff > 1e-5) * lr * a_y1 + (loss_diff < 1e-5) * lr * (a_y21 + a_y22)


GRID = [(lr, d) for lr in (1e-4, 0.003, 0.02, 0.1, 1.0) for d in (-50.0, -0.7, -1e-3, 0.0, 2e-5, 0.01, 0.9, 30.0)]


@pytest.mark.parametrize("lr, loss_diff", GRID)
def test_closed_form_solves_the_paper_equation(lr, loss_diff):
    x = adaptive_lr_update(lr, loss_diff)
    assert x > 0
    assert paper_rhs(lr, loss_diff, x) == pytest.approx(x, rel=1e-12)


@pytest.mark.parametrize("lr, loss_diff", GRID)
def test_fixed_point_agrees_where_it_converges(lr, loss_diff):
    b, _ = quadratic_coefficients(lr, loss_diff)
    if b > 0:
        assert fixed_point_lr_update(lr, loss_diff) == pytest.approx(adaptive_lr_update(lr, loss_diff), rel=1e-10)
    else:  # |g'(root)| = c / x^2 > 1: the positive root repels; the iteration ends on the negative one
        # (or, when |g'| is within rounding of 1 there too, wanders)
        with pytest.raises(ValueError, match="negative root|did not converge"):
            fixed_point_lr_update(lr, loss_diff)


def test_pinned_values():
    # loss flat (falls into the [L_d < 1e-5] branch): b = 0.02 (1 + 0.02/1.884), c = 0.02/17.27
    b, c = 0.02 * (1 + 0.02 / (0.6 * 3.14)), 0.02 / (5.5 * 3.14)
    assert adaptive_lr_update(0.02, 0.0) == pytest.approx((b + math.sqrt(b * b + 4 * c)) / 2, rel=1e-14)
    assert adaptive_lr_update(0.02, 0.0) == pytest.approx(0.04560562193640355, rel=1e-12)
    assert adaptive_lr_update(0.02, 0.5) == pytest.approx(0.04747161657540468, rel=1e-12)
    # b < 0 (the loss fell by 30): the cancellation-free form of the positive root
    assert adaptive_lr_update(0.02, -30.0) == pytest.approx(0.027532376973146616, rel=1e-12)


def test_exact_threshold_halves_the_rate():
    assert quadratic_coefficients(0.02, THRESHOLD) is None
    assert adaptive_lr_update(0.02, THRESHOLD) == 0.01


def test_unclamped_rule_runs_away():
    lr = 0.02
    for _ in range(10):
        lr = adaptive_lr_update(lr, -0.05)  # a steadily improving loss
    assert lr > 0.9  # hence the clamp


@pytest.mark.parametrize("lr, loss_diff", [(0.0, 0.1), (-0.1, 0.1), (float("nan"), 0.1), (0.1, float("inf"))])
def test_bad_inputs(lr, loss_diff):
    with pytest.raises(ValueError):
        adaptive_lr_update(lr, loss_diff)


def _sgd(lr=0.02):
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(3))], lr=lr, momentum=0.9)


def test_scheduler_records_first_then_clamps_and_sets_the_optimizer():
    opt = _sgd()
    sched = AdaptiveLR(opt)
    assert (sched.min_lr, sched.max_lr) == (0.002, 0.04)
    assert sched.step(2.0) == 0.02  # first evaluation: nothing to compare with
    assert sched.step(1.5) == 0.04  # raw 0.0456 -> upper clamp
    assert opt.param_groups[0]["lr"] == 0.04 and sched.get_last_lr() == [0.04]
    assert sched.step(-4998.5) == 0.002  # raw 2.0e-4 -> lower clamp (only a huge drop gets there)
    assert sched.history == [0.02, 0.02, 0.04, 0.002]


def test_scheduler_inside_bounds_follows_the_closed_form():
    opt = _sgd(0.01)
    sched = AdaptiveLR(opt, min_lr=1e-4, max_lr=10.0)
    sched.step(1.0)
    assert sched.step(1.2) == pytest.approx(adaptive_lr_update(0.01, 0.2))  # L_d = now - before


def test_scheduler_state_round_trip_and_validation():
    sched = AdaptiveLR(_sgd())
    sched.step(1.0)
    sched.step(0.9)
    other = AdaptiveLR(_sgd())
    other.load_state_dict(sched.state_dict())
    assert other.state_dict() == sched.state_dict()
    assert other.step(0.8) == sched.step(0.8)
    with pytest.raises(ValueError, match="finite"):
        sched.step(float("nan"))
    with pytest.raises(ValueError, match="min_lr <= initial"):
        AdaptiveLR(_sgd(), max_lr=0.01)
    two_groups = torch.optim.SGD([{"params": [torch.nn.Parameter(torch.zeros(1))], "lr": 0.1},
                                  {"params": [torch.nn.Parameter(torch.zeros(1))], "lr": 0.2}])
    with pytest.raises(ValueError, match="one learning rate"):
        AdaptiveLR(two_groups)
