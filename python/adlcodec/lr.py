"""The paper's adaptive learning rate (eqs. 3-6), solved in closed form and clamped.

With ``L_d`` the loss differential, ``LR`` the current rate and ``x = LR̂`` the new
one, the paper writes::

    A_y1  = 1/2 + (L_d + 1/x) / (5 π)
    A_y21 = 1/4 + LR / (0.6 π)
    A_y22 = 1/4 + (L_d + 1/x) / (5.5 π)
    x     = LR/2 + [L_d > 1e-5]·LR·A_y1 + [L_d < 1e-5]·LR·(A_y21 + A_y22)

(π is written 3.14 in the paper; we use 3.14 so the numbers match it.)  ``x``
appears on both sides.  In either branch the equation has the form
``x = b + c/x`` with ``c > 0``; multiplying by ``x`` gives the quadratic
``x² - b·x - c = 0``, whose roots have product ``-c < 0``: exactly one is
positive, and a learning rate must be positive, so that is the root we take::

    loss rose    (L_d > 1e-5):  b = LR·(1 + L_d/(5π)),                 c = LR/(5π)
    loss fell    (L_d < 1e-5):  b = LR·(1 + LR/(0.6π) + L_d/(5.5π)),   c = LR/(5.5π)
    L_d == 1e-5 exactly:        both brackets are 0, x = LR/2 (kept literally)

``L_d`` is ``loss_now - loss_before`` (positive when the loss rose); the paper
does not fix the sign and the rule behaves the same way either way (below).

Fixed-point iteration ``x ← b + c/x`` converges to the same root only when
``b > 0`` (its derivative at the root is ``-c/x² = -c/(b·x + c)``); for
``b <= 0`` it slides to the *negative* root, and for small ``b`` it needs
hundreds of iterations.  So the closed form is what we use; tests compare both
where the iteration converges.

What it does in practice: the ``c/x`` term dominates.  Near ``x ≈ LR`` the
update is ``x ≈ LR + 1/(5π) + LR·L_d/(5π)``, i.e. the rate grows by about 0.064
per evaluation unless the loss jumps by ~1/LR (hundreds of nats at the usual
rates), which a cross-entropy loss never does.  Unclamped, the rate diverges
within a few dozen evaluations; with the clamp it climbs to ``max_lr`` in a few
evaluations and stays there (see docs/PAPER.md for measured trajectories).  We
therefore clamp to ``[min_lr, max_lr]``, by default ``[initial/10, 2·initial]``.
"""

from __future__ import annotations

import math

__all__ = ["AdaptiveLR", "adaptive_lr_update", "fixed_point_lr_update", "quadratic_coefficients", "THRESHOLD"]

THRESHOLD = 1e-5
_PI = 3.14  # the paper's value


def quadratic_coefficients(lr: float, loss_diff: float) -> tuple[float, float] | None:
    """``(b, c)`` of ``x = b + c/x`` for this branch, or ``None`` when ``L_d == 1e-5``."""
    if loss_diff > THRESHOLD:
        return lr * (1.0 + loss_diff / (5 * _PI)), lr / (5 * _PI)
    if loss_diff < THRESHOLD:
        return lr * (1.0 + lr / (0.6 * _PI) + loss_diff / (5.5 * _PI)), lr / (5.5 * _PI)
    return None


def _check(lr: float, loss_diff: float) -> None:
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a positive finite number, got {lr!r}")
    if not (isinstance(loss_diff, (int, float)) and math.isfinite(loss_diff)):
        raise ValueError(f"loss differential must be finite, got {loss_diff!r}")


def adaptive_lr_update(lr: float, loss_diff: float) -> float:
    """Unclamped new rate: the positive root of ``x² - b·x - c = 0``."""
    _check(lr, loss_diff)
    coeffs = quadratic_coefficients(lr, loss_diff)
    if coeffs is None:
        return lr / 2
    b, c = coeffs
    disc = math.sqrt(b * b + 4 * c)
    # for b < 0 the textbook (b + disc)/2 cancels; 2c/(disc - b) is the same root without cancellation
    return (b + disc) / 2 if b >= 0 else 2 * c / (disc - b)


def fixed_point_lr_update(lr: float, loss_diff: float, iterations: int = 100_000, tol: float = 1e-13) -> float:
    """The same root by iterating ``x ← b + c/x`` from ``x = lr``.

    Raises ValueError when the iteration fails: for ``b <= 0`` the positive root
    repels and the iteration ends on the negative root instead.  For small
    ``b > 0`` it converges, but slowly (contraction factor ``c/(b·x + c)``,
    0.96 at LR = 1e-4), hence the generous iteration cap.
    """
    _check(lr, loss_diff)
    coeffs = quadratic_coefficients(lr, loss_diff)
    if coeffs is None:
        return lr / 2
    b, c = coeffs
    x = lr
    for _ in range(iterations):
        nxt = b + c / x
        if abs(nxt - x) <= tol * abs(nxt):
            if nxt <= 0:
                raise ValueError(f"fixed-point iteration converged to the negative root {nxt:.3g} (b={b:.3g} <= 0)")
            return nxt
        x = nxt
    raise ValueError(f"fixed-point iteration did not converge (b={b:.3g}, c={c:.3g})")


class AdaptiveLR:
    """Scheduler stepped with the loss: ``sched.step(loss)`` after each evaluation.

    The first call only records the loss.  Every later call computes
    ``L_d = loss - previous``, solves for the new rate, clamps it to
    ``[min_lr, max_lr]`` and writes it into every parameter group.
    All ranks must pass the same loss (e.g. all-reduced) to stay in step.
    """

    def __init__(self, optimizer, min_lr: float | None = None, max_lr: float | None = None):
        lrs = {g["lr"] for g in optimizer.param_groups}
        if len(lrs) != 1:
            raise ValueError(f"AdaptiveLR needs one learning rate across parameter groups, got {sorted(lrs)}")
        initial = lrs.pop()
        self.min_lr = initial / 10 if min_lr is None else float(min_lr)
        self.max_lr = 2 * initial if max_lr is None else float(max_lr)
        if not 0 < self.min_lr <= initial <= self.max_lr:
            raise ValueError(f"need 0 < min_lr <= initial lr <= max_lr, got {self.min_lr}, {initial}, {self.max_lr}")
        self.optimizer = optimizer
        self.lr = initial
        self.previous_loss: float | None = None
        self.history: list[float] = [initial]

    def step(self, loss: float) -> float:
        loss = float(loss)
        if not math.isfinite(loss):
            raise ValueError(f"loss must be finite, got {loss}")
        if self.previous_loss is not None:
            raw = adaptive_lr_update(self.lr, loss - self.previous_loss)
            self.lr = min(self.max_lr, max(self.min_lr, raw))
            for group in self.optimizer.param_groups:
                group["lr"] = self.lr
        self.previous_loss = loss
        self.history.append(self.lr)
        return self.lr

    def get_last_lr(self) -> list[float]:
        return [self.lr for _ in self.optimizer.param_groups]

    def state_dict(self) -> dict:
        return dict(min_lr=self.min_lr, max_lr=self.max_lr, lr=self.lr, previous_loss=self.previous_loss,
                    history=list(self.history))

    def load_state_dict(self, state: dict) -> None:
        for key in ("min_lr", "max_lr", "lr", "previous_loss"):
            setattr(self, key, state[key])
        self.history = list(state["history"])
