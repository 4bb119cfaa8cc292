"""CALVIN's physical start of a symbolic chain state, as its evaluation builds it.

CALVIN's ``get_env_state_for_initial_condition`` (calvin_models/calvin_agent/evaluation/utils.py in
mees/calvin) turns a symbolic state into ``robot_obs`` and ``scene_obs``: a fixed arm pose with the
gripper open; slider 0.28 when left, drawer 0.22 when open, switch 0.088 when the bulb is on; blocks
at fixed slider or table spots, the two table spots shuffled and the block yaws drawn with NumPy's
legacy global generator seeded by the 32-bit FNV-1 hash (initial value 0, as ``pyhash.fnv1_32()``)
of the UTF-16-LE text of ``str(state.values())``. This module reimplements it from those numbers.

CALVIN wrote that function for scene D. In B and C, where the shelf sits 0.18 m to the right, its
slider spots would put blocks inside the cabinet (and B's button stands on D's second table spot),
and C's slider cannot reach 0.28; so for a scene other than D the spots move as our table's do
(:mod:`envs.calvin.geometry`) and "left" is the scene's ``slider_left_state``. Scene D is CALVIN's exactly.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

#: The keys of a symbolic state in the order of CALVIN's evaluation (their values feed the hash).
STATE_KEYS = ("led", "lightbulb", "slider", "drawer", "red_block", "blue_block", "pink_block", "grasped")
PLACES = ("table", "slider_left", "slider_right")
#: TCP position, TCP Euler angles, gripper width, 7 arm joints, gripper action.
ROBOT_OBS = np.array(
    [
        0.02586889,
        -0.2313129,
        0.5712808,
        3.09045411,
        -0.02908596,
        1.50013585,
        0.07999963,
        -1.21779124,
        1.03987629,
        2.11978254,
        -2.34205014,
        -0.87015899,
        1.64119093,
        0.55344928,
        1.0,
    ]
)
DRAWER_OPEN = 0.22
SWITCH_ON = 0.088
BLOCK_YAW_RANGE = (np.pi / 2 - np.pi / 8, np.pi / 2 + np.pi / 8)
SLIDER_SPOTS = {
    "slider_left": np.array([-2.40851662e-01, 9.24044687e-02, 4.60990009e-01]),
    "slider_right": np.array([7.03416330e-02, 9.24044687e-02, 4.60990009e-01]),
}
TABLE_SPOTS = (
    np.array([5.00000896e-02, -1.20000177e-01, 4.59990009e-01]),
    np.array([2.29995412e-01, -1.19995140e-01, 4.59990010e-01]),
)
FNV_PRIME = 16777619


def fnv1_32(data: bytes, value: int = 0) -> int:
    """32-bit FNV-1 of ``data`` from ``value`` (``pyhash.fnv1_32()`` starts at 0, not FNV's offset basis)."""
    for byte in data:
        value = ((value * FNV_PRIME) & 0xFFFFFFFF) ^ byte
    return value


def _checked(state: Mapping[str, Any]) -> dict[str, Any]:
    missing = [k for k in STATE_KEYS if k not in state]
    if missing:
        raise ValueError(f"symbolic state lacks {missing}; expected keys: {', '.join(STATE_KEYS)}")
    out = {k: state[k] for k in STATE_KEYS}
    for key in ("led", "lightbulb", "grasped"):
        out[key] = int(out[key])
    for color in ("red", "blue", "pink"):
        if out[f"{color}_block"] not in PLACES:
            raise ValueError(
                f"CALVIN's reset places blocks on {', '.join(PLACES)} only; got {color}_block={out[f'{color}_block']!r}"
            )
    if out["grasped"]:
        raise ValueError("CALVIN's reset starts with nothing grasped; got grasped=1")
    return out


def state_seed(state: Mapping[str, Any]) -> int:
    """The seed CALVIN's evaluation derives from a symbolic state."""
    return fnv1_32(str(_checked(state).values()).encode("utf-16-le"))


def _scene_spots(scene: str) -> tuple[dict[str, np.ndarray], list[np.ndarray], float]:
    """Slider spots, table spots and the "left" slider value of ``scene`` (CALVIN's own for D)."""
    from envs.calvin import geometry as g

    cfg, d = g.GEOMETRY[scene], g.GEOMETRY["D"]

    def moved(spot: np.ndarray, xy: tuple[float, float], xy_d: tuple[float, float]) -> np.ndarray:
        return spot + np.array([xy[0] - xy_d[0], xy[1] - xy_d[1], 0.0])

    slider = {k: moved(v, cfg.slider_spots[k], d.slider_spots[k]) for k, v in SLIDER_SPOTS.items()}
    table = [
        moved(v, xy, xy_d) for v, xy, xy_d in zip(TABLE_SPOTS, cfg.table_spots, d.table_spots, strict=True)
    ]
    return slider, table, cfg.slider_left_state  # D: CALVIN's 0.28


def calvin_start(state: Mapping[str, Any], scene: str = "D") -> tuple[np.ndarray, np.ndarray]:
    """``(robot_obs (15,), scene_obs (24,))`` of CALVIN's evaluation start for a symbolic state in
    ``scene`` (blocks red, blue, pink)."""
    s = _checked(state)
    slider_spots, table_spots, slider_left = _scene_spots(scene)
    rng = np.random.RandomState(state_seed(s))
    table = [spot.copy() for spot in table_spots]
    rng.shuffle(table)
    scene_obs = np.zeros(24)
    scene_obs[0] = slider_left if s["slider"] == "left" else 0.0
    scene_obs[1] = DRAWER_OPEN if s["drawer"] == "open" else 0.0
    scene_obs[3] = SWITCH_ON if s["lightbulb"] == 1 else 0.0
    scene_obs[4], scene_obs[5] = s["lightbulb"], s["led"]
    # which table spot each block takes when it is on the table (CALVIN's rule, including its asymmetry)
    on_table = {
        "red": table[0],
        "blue": table[1] if s["red_block"] == "table" else table[0],
        "pink": table[1],
    }
    for i, color in enumerate(("red", "blue", "pink")):
        place = s[f"{color}_block"]
        scene_obs[6 + 6 * i : 9 + 6 * i] = slider_spots[place] if place in slider_spots else on_table[color]
        scene_obs[11 + 6 * i] = rng.uniform(*BLOCK_YAW_RANGE)
    return ROBOT_OBS.copy(), scene_obs
