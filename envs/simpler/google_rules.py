"""SimplerEnv's success rules of the Google-robot tasks, on plain numbers (no simulator needed).

The scene (:mod:`envs.simpler.google_scene`) measures: grasps and contacts, object positions, drawer
joints; these functions and :class:`PickCanJudge` turn them into SimplerEnv's verdicts. Thresholds
come from the numbers file (``tasks.<task>``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class PickCanJudge:
    """SimplerEnv's coke-can rule over an episode.

    The can is *lifted* at a step where it touches nothing but the robot and is more than
    ``lift_m[0]`` above its settled height, and stays lifted while it is grasped (a step without a
    grasp forgets earlier lifts). Success: lifted now, or lifted more than ``lift_m[1]`` on at least
    ``lift_steps`` steps (SimplerEnv's evaluation setting, so that putting the can back down after
    lifting it still counts).
    """

    def __init__(self, lift_m: Sequence[float], lift_steps: int) -> None:
        self.lift_m = (float(lift_m[0]), float(lift_m[1]))
        self.lift_steps = int(lift_steps)
        self.lifted = False
        self.significant_steps = 0
        self.grasped_ever = False

    def update(self, grasped: bool, touches_other: bool, height_gain: float) -> dict[str, bool]:
        if not grasped:
            self.lifted = False
        self.grasped_ever |= grasped
        self.lifted = self.lifted or (not touches_other and height_gain > self.lift_m[0])
        significant = self.lifted and height_gain > self.lift_m[1]
        self.significant_steps += int(significant)
        success = self.lifted or self.significant_steps >= self.lift_steps
        return {
            "success": success,
            "is_grasped": grasped,
            "lifted_object": self.lifted,
            "lifted_object_significantly": significant,
            "grasped_ever": self.grasped_ever,
        }


def move_near(
    settled: np.ndarray,
    now: np.ndarray,
    source: int,
    target: int,
    source_com: np.ndarray,
    target_com: np.ndarray,
    source_bbox: np.ndarray,
    target_bbox: np.ndarray,
    *,
    knocked_m: float,
    fell_m: float,
    moved_m: float,
    near_margin_m: float,
    closest_margin_m: float,
) -> dict[str, bool]:
    """SimplerEnv's move-near rule.

    ``settled`` and ``now`` are (n, 3) object positions (actor frames) after settling and now; the
    centre-of-mass positions of source and target now; their bounding-box sizes turned by the settled
    orientation. Success: no object knocked over (others keep their height within ``knocked_m``,
    source and target within ``fell_m``), the source moved most and more than ``moved_m``, it ends
    within the two half bounding-box diagonals plus ``near_margin_m`` of the target, and no other
    object is closer to it than the target (by ``closest_margin_m``).
    """
    n = len(now)
    others = [i for i in range(n) if i not in (source, target)]
    keep = all(now[i, 2] - settled[i, 2] > knocked_m for i in others)
    keep = (
        keep and source_com[2] - settled[source, 2] > fell_m and target_com[2] - settled[target, 2] > fell_m
    )
    moved = np.linalg.norm(settled[:, :2] - now[:, :2], axis=1)
    moved_others = [moved[i] for i in range(n) if i != source]
    moved_correct = bool(moved[source] > moved_m and all(m < moved[source] for m in moved_others))
    moved_wrong = bool(
        any(m > moved_m for m in moved_others) and any(m > moved[source] for m in moved_others)
    )
    dist = float(np.linalg.norm(source_com[:2] - target_com[:2]))
    reach = np.linalg.norm(target_bbox[:2]) / 2 + np.linalg.norm(source_bbox[:2]) / 2 + near_margin_m
    near = dist < reach
    to_others = [float(np.linalg.norm(source_com[:2] - now[i, :2])) for i in range(n) if i != source]
    closest = all(dist < d + closest_margin_m for d in to_others)
    return {
        "success": bool(keep and moved_correct and near and closest),
        "all_obj_keep_height": bool(keep),
        "moved_correct_obj": moved_correct,
        "moved_wrong_obj": moved_wrong,
        "near_tgt_obj": bool(near),
        "is_closest_to_tgt": bool(closest),
    }


def drawer(kind: str, q: float, success_q: float) -> bool:
    """Open: the drawer's joint at least ``success_q``; close: at most ``success_q``."""
    if kind == "open_drawer":
        return q >= success_q
    if kind == "close_drawer":
        return q <= success_q
    raise ValueError(f"unknown drawer task kind {kind!r}; valid: open_drawer, close_drawer")


def apple_in_drawer(subtask: int, q: float, open_q: float, contact_steps: int) -> bool:
    """The placing subtask is on, the drawer is open at least ``open_q``, and the apple has touched
    the drawer's floor at some step (SimplerEnv counts contact steps over the whole episode)."""
    return subtask == 1 and q >= open_q and contact_steps >= 1
