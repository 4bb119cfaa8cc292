"""Sim-to-real agreement metrics of SimplerEnv (``shared/reference/simpler.md``).

Both take one success rate per policy, simulation first, real world second, in the same policy order.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _pair(sim: Sequence[float], real: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    s, r = np.asarray(sim, dtype=float), np.asarray(real, dtype=float)
    if s.ndim != 1 or s.shape != r.shape:
        raise ValueError(f"sim and real need the same 1-D shape, got {s.shape} and {r.shape}")
    if s.size == 0:
        raise ValueError("need at least one policy")
    return s, r


def mmrv(sim: Sequence[float], real: Sequence[float]) -> float:
    """Mean maximum rank violation (lower is better; 0 when sim orders the policies as real does).

    ``MMRV = (1/N) sum_i max_j |R_i - R_j| * 1[(S_i > S_j) != (R_i > R_j)]``: for each policy, the
    largest real-world gap to a policy that simulation ranks the other way round. Not symmetric:
    violations are weighted by the *real* gap, so the argument order (sim, real) matters. Ties count
    as "not greater" on each side, so a tie in sim against a strict order in real is a violation only
    when ``R_i > R_j`` (as in SimplerEnv's implementation).
    """
    s, r = _pair(sim, real)
    violated = (s[:, None] > s[None, :]) != (r[:, None] > r[None, :])
    gaps = np.abs(r[:, None] - r[None, :]) * violated
    return float(gaps.max(axis=1).mean())


def pearson_r(sim: Sequence[float], real: Sequence[float]) -> float:
    """Pearson correlation as SimplerEnv computes it.

    ``sum (S - mean S)(R - mean R) / (sqrt(sum (S - mean S)^2 * sum (R - mean R)^2) + 1e-8)``, and
    exactly 1 when the two centred vectors are equal (including two constant vectors).
    """
    s, r = _pair(sim, real)
    s, r = s - s.mean(), r - r.mean()
    if np.array_equal(s, r):
        return 1.0
    return float(np.sum(s * r) / (np.sqrt(np.sum(s**2) * np.sum(r**2)) + 1e-8))
