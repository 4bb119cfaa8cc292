"""Action and history preprocessing for VLA training: the seed document's formulas, as pure functions.

* :func:`normalize_actions` / :func:`denormalize_actions`: clamp to the 1st/99th quantiles, then
  ``2 * (a - q01) / (q99 - q01) - 1`` (and its inverse). Binary dims (the gripper, index 6) are passed
  through as a sign: ``a > 0 -> +1``, otherwise ``-1`` (so 0 means "close", and a {0, 1} gripper maps
  onto {-1, +1}). A dim whose quantile range is zero (``q99 == q01``) normalises to 0.0 and
  denormalises to ``q01``.
* :func:`discretize_actions` / :func:`undiscretize_actions`: ``floor((a + 1) * (num_bins - 1) / 2)`` on
  ``a`` clipped to [-1, 1], plus ``offset`` (10) to stay clear of special tokens. Bin ``k`` holds
  ``a`` in ``[2k/(num_bins-1) - 1, 2(k+1)/(num_bins-1) - 1)``; the last bin ``num_bins - 1`` holds only
  ``a == 1``. Undiscretising returns the bin centre ``(2k + 1)/(num_bins - 1) - 1``, capped at 1.0
  (so the last bin gives exactly 1.0), which keeps the round-trip error within half a bin width,
  ``1/(num_bins - 1)``.
* :func:`process_history`: the seed's ``(history_obs, history_actions)``: up to ``history_length``
  steps, real steps first and zeros after (the training windows pad the other side: see its doc).
* Quantiles come as an :class:`ActionQuantiles`, or a mapping with the seed's keys ``'1st'`` and
  ``'99th'`` or the statistics' ``'q01'`` and ``'q99'``.

Functions take numpy arrays (or anything ``np.asarray`` accepts); when given a ``torch.Tensor`` they
compute with torch on the tensor's device and return a tensor. torch is never imported here: a
tensor can only be passed in once the caller has imported torch.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

ACTION_DIM = 7
GRIPPER_DIMS: tuple[int, ...] = (6,)
NUM_BINS = 256
TOKEN_OFFSET = 10
HISTORY_LENGTH = 16
#: accepted key pairs of a quantiles mapping: the seed's, then our statistics'
QUANTILE_KEYS: tuple[tuple[str, str], ...] = (("1st", "99th"), ("q01", "q99"))

ArrayLike = Any  # np.ndarray, torch.Tensor or anything np.asarray accepts


# --------------------------------------------------------------------------------------------- helpers


def _is_torch(x: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def _work_dtype_torch(x: Any) -> Any:
    torch = sys.modules["torch"]
    return torch.float32 if x.device.type == "mps" else torch.float64


def _float_out_dtype_np(a: np.ndarray) -> np.dtype:
    return a.dtype if np.issubdtype(a.dtype, np.floating) else np.dtype(np.float32)


def _quantile_arrays(quantiles: Any) -> tuple[np.ndarray, np.ndarray]:
    """(q01, q99) as float64 arrays from an ActionQuantiles, a mapping or any object with q01/q99."""
    if isinstance(quantiles, Mapping):
        keys = next((k for k in QUANTILE_KEYS if k[0] in quantiles and k[1] in quantiles), None)
        if keys is None:
            raise ValueError(
                f"quantiles: expected the keys '1st' and '99th' (or 'q01' and 'q99'), got {sorted(quantiles)}"
            )
        q01, q99 = quantiles[keys[0]], quantiles[keys[1]]
    else:
        try:
            q01, q99 = quantiles.q01, quantiles.q99
        except AttributeError:
            raise ValueError(
                f"quantiles must be a mapping or an object with q01 and q99, got {type(quantiles).__name__}"
            ) from None
    if _is_torch(q01):
        q01 = q01.detach().cpu().numpy()
    if _is_torch(q99):
        q99 = q99.detach().cpu().numpy()
    q01 = np.asarray(q01, dtype=np.float64)
    q99 = np.asarray(q99, dtype=np.float64)
    if q01.ndim != 1 or q01.shape != q99.shape:
        raise ValueError(
            f"quantiles: q01 and q99 must be 1-D of equal length, got {q01.shape} and {q99.shape}"
        )
    if np.any(q99 < q01):
        bad = np.flatnonzero(q99 < q01).tolist()
        raise ValueError(f"quantiles: q99 < q01 in dim(s) {bad}")
    return q01, q99


def _binary_mask(binary_dims: Sequence[int], dim: int) -> np.ndarray:
    mask = np.zeros(dim, dtype=bool)
    for d in binary_dims:
        if not -dim <= d < dim:
            raise ValueError(f"binary_dims: dim {d} is out of range for actions with {dim} dims")
        mask[d] = True
    return mask


def _check_last_dim(shape: Sequence[int], dim: int, what: str) -> None:
    if len(shape) == 0 or shape[-1] != dim:
        raise ValueError(f"{what}: expected shape (..., {dim}) to match the quantiles, got {tuple(shape)}")


def _affine(x: ArrayLike, quantiles: Any, binary_dims: Sequence[int], forward: bool) -> ArrayLike:
    q01, q99 = _quantile_arrays(quantiles)
    dim = q01.shape[0]
    rng = q99 - q01
    nonzero = rng > 0
    safe_rng = np.where(nonzero, rng, 1.0)
    binary = _binary_mask(binary_dims, dim)
    what = "actions" if forward else "normalized"
    if _is_torch(x):
        torch = sys.modules["torch"]
        _check_last_dim(x.shape, dim, what)
        out_dtype = x.dtype if x.is_floating_point() else torch.float32
        wd = _work_dtype_torch(x)
        a = x.to(wd)

        def t(v: np.ndarray) -> Any:
            return torch.as_tensor(v, device=x.device)

        lo, hi, r, nz, bm = t(q01).to(wd), t(q99).to(wd), t(safe_rng).to(wd), t(nonzero), t(binary)
        if forward:
            a_c = torch.minimum(torch.maximum(a, lo), hi)
            y = torch.where(nz, 2.0 * (a_c - lo) / r - 1.0, torch.zeros_like(a))
        else:
            y = torch.where(nz, (a + 1.0) / 2.0 * r + lo, lo.expand_as(a))
        sign = torch.where(a > 0, torch.ones_like(a), -torch.ones_like(a))
        return torch.where(bm, sign, y).to(out_dtype)
    arr = np.asarray(x)
    _check_last_dim(arr.shape, dim, what)
    out_dtype = _float_out_dtype_np(arr)
    a = arr.astype(np.float64)
    if forward:
        a_c = np.minimum(np.maximum(a, q01), q99)
        y = np.where(nonzero, 2.0 * (a_c - q01) / safe_rng - 1.0, 0.0)
    else:
        y = np.where(nonzero, (a + 1.0) / 2.0 * safe_rng + q01, np.broadcast_to(q01, a.shape))
    sign = np.where(a > 0, 1.0, -1.0)
    return np.where(binary, sign, y).astype(out_dtype)


# ------------------------------------------------------------------------------------------ quantiles


@dataclass
class ActionQuantiles:
    """Per-dim 1st / 99th percentiles of the 7-DoF actions (float32 arrays of shape (7,))."""

    q01: np.ndarray
    q99: np.ndarray

    def __post_init__(self) -> None:
        for key in ("q01", "q99"):
            value = getattr(self, key)
            if _is_torch(value):
                value = value.detach().cpu().numpy()
            arr = np.asarray(value, dtype=np.float32)
            if arr.shape != (ACTION_DIM,):
                raise ValueError(f"ActionQuantiles: '{key}' must have shape ({ACTION_DIM},), got {arr.shape}")
            if not np.all(np.isfinite(arr)):
                raise ValueError(f"ActionQuantiles: '{key}' holds non-finite values {arr.tolist()}")
            setattr(self, key, arr)
        if np.any(self.q99 < self.q01):
            bad = np.flatnonzero(self.q99 < self.q01).tolist()
            raise ValueError(f"ActionQuantiles: q99 < q01 in dim(s) {bad}")

    def to_dict(self) -> dict[str, list[float]]:
        """JSON-safe form: ``{"q01": [7 floats], "q99": [7 floats]}``."""
        return {"q01": [float(v) for v in self.q01], "q99": [float(v) for v in self.q99]}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ActionQuantiles:
        """Inverse of :meth:`to_dict`; ValueError naming the key on a missing key or wrong length."""
        if not isinstance(d, Mapping):
            raise ValueError(f"ActionQuantiles.from_dict: expected a mapping, got {type(d).__name__}")
        values = {}
        for key in ("q01", "q99"):
            if key not in d:
                raise ValueError(f"ActionQuantiles.from_dict: key '{key}' is missing (have {sorted(d)})")
            try:
                arr = np.asarray(d[key], dtype=np.float32)
            except (TypeError, ValueError) as exc:
                raise ValueError(
                    f"ActionQuantiles.from_dict: key '{key}' is not a list of numbers ({exc})"
                ) from None
            if arr.shape != (ACTION_DIM,):
                raise ValueError(
                    f"ActionQuantiles.from_dict: key '{key}' must be a list of {ACTION_DIM} numbers, "
                    f"got shape {np.shape(d[key])}"
                )
            values[key] = arr
        return cls(q01=values["q01"], q99=values["q99"])


# -------------------------------------------------------------------------------------- normalisation


def normalize_actions(
    actions: ArrayLike,
    quantiles: ActionQuantiles | Mapping[str, Any] | Any,
    binary_dims: Sequence[int] = GRIPPER_DIMS,
) -> ArrayLike:
    """Clamp each dim to [q01, q99], then ``2 * (a - q01) / (q99 - q01) - 1`` (into [-1, 1]).

    ``actions`` has shape (..., D) with D = len(q01). Binary dims become ``+1`` where ``a > 0`` and
    ``-1`` otherwise (0 -> -1). Zero-range dims (``q99 == q01``) map to 0.0. Float inputs keep their
    dtype (others give float32); a torch tensor gives a tensor on the same device.
    """
    return _affine(actions, quantiles, binary_dims, forward=True)


def denormalize_actions(
    normalized: ArrayLike,
    quantiles: ActionQuantiles | Mapping[str, Any] | Any,
    binary_dims: Sequence[int] = GRIPPER_DIMS,
) -> ArrayLike:
    """Inverse of :func:`normalize_actions`: ``(n + 1) / 2 * (q99 - q01) + q01``.

    No clipping is applied (values outside [-1, 1] extrapolate linearly). Zero-range dims give ``q01``;
    binary dims are passed through as a sign (``n > 0 -> +1`` else ``-1``).
    """
    return _affine(normalized, quantiles, binary_dims, forward=False)


# ------------------------------------------------------------------------------------- discretisation


def _check_bins(num_bins: int, offset: int) -> None:
    if int(num_bins) != num_bins or num_bins < 2:
        raise ValueError(f"num_bins must be an integer >= 2, got {num_bins!r}")
    if int(offset) != offset or offset < 0:
        raise ValueError(f"offset must be a non-negative integer, got {offset!r}")


def discretize_actions(actions: ArrayLike, num_bins: int = NUM_BINS, offset: int = TOKEN_OFFSET) -> ArrayLike:
    """Tokens ``floor((clip(a, -1, 1) + 1) * (num_bins - 1) / 2) + offset`` (int64).

    With the defaults a = -1 -> 10, a = 0 -> 137, a = 1 -> 265 (= offset + num_bins - 1). Expects
    normalised actions; NaN is rejected with ValueError.
    """
    _check_bins(num_bins, offset)
    if _is_torch(actions):
        torch = sys.modules["torch"]
        a = actions.to(_work_dtype_torch(actions))
        if bool(torch.isnan(a).any()):
            raise ValueError("discretize_actions: actions hold NaN")
        k = torch.floor((a.clamp(-1.0, 1.0) + 1.0) * (num_bins - 1) / 2.0)
        return k.to(torch.int64) + int(offset)
    a = np.asarray(actions, dtype=np.float64)
    if np.isnan(a).any():
        raise ValueError("discretize_actions: actions hold NaN")
    k = np.floor((np.clip(a, -1.0, 1.0) + 1.0) * (num_bins - 1) / 2.0)
    return k.astype(np.int64) + int(offset)


def undiscretize_actions(
    tokens: ArrayLike, num_bins: int = NUM_BINS, offset: int = TOKEN_OFFSET
) -> ArrayLike:
    """Bin centres in [-1, 1] (float32): ``min((2k + 1) / (num_bins - 1) - 1, 1)`` for ``k = token - offset``.

    Raises ValueError when a token lies outside ``[offset, offset + num_bins - 1]`` or is not an integer.
    """
    _check_bins(num_bins, offset)
    lo, hi = int(offset), int(offset) + int(num_bins) - 1
    if _is_torch(tokens):
        torch = sys.modules["torch"]
        t = tokens
        if t.is_floating_point() and bool((t != torch.round(t)).any()):
            raise ValueError("undiscretize_actions: tokens must be integers")
        bad = (t < lo) | (t > hi)
        if bool(bad.any()):
            raise ValueError(
                f"undiscretize_actions: {int(bad.sum())} token(s) outside [{lo}, {hi}] "
                f"(num_bins={num_bins}, offset={offset}); got min {t.min().item()}, max {t.max().item()}"
            )
        k = (t.to(torch.int64) - lo).to(_work_dtype_torch(t))
        centre = torch.clamp((2.0 * k + 1.0) / (num_bins - 1) - 1.0, max=1.0)
        return centre.to(torch.float32)
    t = np.asarray(tokens)
    if t.dtype == bool or not (np.issubdtype(t.dtype, np.integer) or np.issubdtype(t.dtype, np.floating)):
        raise ValueError(f"undiscretize_actions: tokens must be integers, got dtype {t.dtype}")
    if np.issubdtype(t.dtype, np.floating) and np.any(t != np.round(t)):
        raise ValueError("undiscretize_actions: tokens must be integers")
    bad = (t < lo) | (t > hi)
    if np.any(bad):
        raise ValueError(
            f"undiscretize_actions: {int(bad.sum())} token(s) outside [{lo}, {hi}] "
            f"(num_bins={num_bins}, offset={offset}); got min {t.min()}, max {t.max()}"
        )
    k = t.astype(np.int64) - lo
    centre = np.minimum((2.0 * k + 1.0) / (num_bins - 1) - 1.0, 1.0)
    return centre.astype(np.float32)


# -------------------------------------------------------------------------------------------- history


def _zeros_like(step: Any) -> Any:
    """Zeros of the shape and type of one step (an array, a tensor, a number or a dict of these)."""
    if isinstance(step, Mapping):
        return {k: _zeros_like(v) for k, v in step.items()}
    if _is_torch(step):
        return sys.modules["torch"].zeros_like(step)
    return np.zeros_like(np.asarray(step))


def process_history(
    observations: Sequence[Any] | np.ndarray,
    actions: Sequence[Any] | np.ndarray,
    history_length: int = HISTORY_LENGTH,
) -> tuple[list[Any], list[Any]]:
    """The seed's history: ``(history_obs, history_actions)``, two lists of ``history_length`` steps.

    Up to ``history_length`` steps are taken (the most recent ones when there are more), in time
    order, and a short sequence is zero-padded at the end: real steps first, zeros after. Each step
    is whatever the input holds per step (an array, a tensor, a dict of them; an array or tensor
    input is split along its first axis); a padding step is zeros of the first step's shape and type.

    The training samples (:class:`trainer.data.dataset.DemoDataset`) and the VLA policy pad their
    windows on the other side, before the real steps, so that the current frame always sits at the
    last index: the policy-head structures read the current step's prediction there whatever the
    number of real steps, and their causal heads (LSTM, GPT) see the padding before the real steps
    rather than between the real steps and that prediction.
    """
    if isinstance(history_length, bool) or int(history_length) != history_length or history_length < 1:
        raise ValueError(
            f"process_history: history_length must be a positive integer, got {history_length!r}"
        )
    history_length = int(history_length)
    obs, acts = list(observations), list(actions)
    if len(obs) != len(acts):
        raise ValueError(f"process_history: {len(obs)} observations but {len(acts)} actions")
    if not obs:
        raise ValueError("process_history: no steps (the padding copies the shape of a real step)")
    obs, acts = obs[-history_length:], acts[-history_length:]
    pad = history_length - len(obs)
    history_obs = obs + [_zeros_like(obs[0]) for _ in range(pad)]
    history_actions = acts + [_zeros_like(acts[0]) for _ in range(pad)]
    return history_obs, history_actions


__all__ = [
    "ACTION_DIM",
    "GRIPPER_DIMS",
    "HISTORY_LENGTH",
    "NUM_BINS",
    "TOKEN_OFFSET",
    "ActionQuantiles",
    "denormalize_actions",
    "discretize_actions",
    "normalize_actions",
    "process_history",
    "undiscretize_actions",
]
