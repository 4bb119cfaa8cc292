"""The episodes of SimplerEnv's variant aggregation on the Google-robot tasks (see :mod:`envs.simpler.real_variants`).

They differ from visual matching's (:func:`envs.simpler.google_layout.episode_layout`) as SimplerEnv's
``rt1_*_variant_agg.sh`` scripts set them up:

* no real image and the robot's own URDF (no visual-matching recolouring);
* pick coke can: the same 5 x 5 grid of can positions and robot pose (25 episodes);
* move near: ``MoveNearGoogleInScene-v0``, whose objects are the plain scanned models of
  ``info_pick_custom_v0.json`` (visual matching uses the baked ones), apple and orange at density 200,
  the same 60 episodes; ``distractors_none`` keeps the source and the target only;
* drawers: the robot on a 3 x 3 grid, x in (0.65, 0.75, 0.85) outer, y in (-0.2, 0, 0.2) inner, base
  not turned (9 episodes);
* apple into the top drawer: the robot at x 0.65, y in (-0.2, 0, 0.2) outer, the apple (``apple``,
  not the baked one) on the visual-matching 3 x 3 grid inner (27 episodes).

Pick coke can with distractors: SimplerEnv draws each distractor at the can's xy plus a uniform offset
in [-0.3, 0.3] per axis, clipped to x in [-0.5, -0.1], y in [0.05, 0.35], again until it is more than
0.25 m from the can; here that draw is seeded by (task, variant, episode), so episodes repeat.
"""

from __future__ import annotations

import zlib
from dataclasses import replace

import numpy as np

from envs.simpler.google_layout import GoogleEpisode, base_quat, episode_layout
from envs.simpler.real_variants import check_real_variant, stage
from envs.simpler.reference import task_reference

SOURCE = (
    "simpler-env/SimplerEnv@2905379:scripts/rt1_*_variant_agg.sh; simpler-env/ManiSkill2_real2sim@16a9ba9"
)
#: move near's models in variant aggregation (MoveNearGoogleInSceneEnv._setup_obj_configs) for visual matching's.
PLAIN_MODELS = {
    "blue_plastic_bottle": "blue_plastic_bottle",
    "baked_opened_pepsi_can_v2": "opened_pepsi_can",
    "orange": "orange",
    "baked_opened_7up_can_v2": "opened_7up_can",
    "baked_apple_v2": "apple",
    "baked_sponge_v2": "sponge",
    "baked_opened_coke_can_v2": "opened_coke_can",
    "baked_opened_redbull_can_v2": "opened_redbull_can",
}
MOVE_NEAR_JSON = "info_pick_custom_v0.json"
MOVE_NEAR_DENSITIES = (("apple", 200.0), ("orange", 200.0))
DRAWER_ROBOT_XS = (0.65, 0.75, 0.85)
DRAWER_ROBOT_YS = (-0.2, 0.0, 0.2)
APPLE_ROBOT_X = 0.65
APPLE_MODEL = "apple"
#: episodes per variant: SimplerEnv's grid sizes in variant aggregation
EPISODES = {"pick_can": 25, "move_near": 60, "open_drawer": 9, "close_drawer": 9, "apple_drawer": 27}
DISTRACTOR_OFFSET_M = 0.3
DISTRACTOR_BOX = ((-0.5, 0.05), (-0.1, 0.35))  # (x min, y min), (x max, y max)
DISTRACTOR_MIN_DIST_M = 0.25


def variant_episodes(task: str) -> int:
    """SimplerEnv's number of episodes per variant of ``task`` in variant aggregation."""
    return EPISODES[task_reference(task)["kind"]]


def variant_layout(task: str, episode: int, variant: str) -> GoogleEpisode:
    """Episode ``episode`` of ``task`` in ``variant`` (``base``: visual matching's layout)."""
    check_real_variant(task, variant)
    vm = episode_layout(task, episode)
    if variant == "base":
        return vm
    st = stage(task, variant)
    out = replace(vm, overlay="", urdf_version="")
    if vm.kind == "move_near":
        models = tuple(PLAIN_MODELS[m] for m in vm.models)
        out = replace(out, models=models, model_json=MOVE_NEAR_JSON, densities=MOVE_NEAR_DENSITIES)
        if st.no_distractor:
            keep = (vm.source, vm.target)
            out = replace(
                out,
                models=tuple(out.models[i] for i in keep),
                xys=tuple(out.xys[i] for i in keep),
                quats=tuple(out.quats[i] for i in keep),
                source=0,
                target=1,
            )
    elif vm.kind in ("open_drawer", "close_drawer"):
        i = episode % (len(DRAWER_ROBOT_XS) * len(DRAWER_ROBOT_YS))
        xy = (DRAWER_ROBOT_XS[i // len(DRAWER_ROBOT_YS)], DRAWER_ROBOT_YS[i % len(DRAWER_ROBOT_YS)])
        out = replace(out, robot_xy=xy, robot_q=base_quat(0.0))
    elif vm.kind == "apple_drawer":
        t = task_reference(task)
        per_robot = len(t["obj_xs"]) * len(t["obj_ys"])
        y = DRAWER_ROBOT_YS[episode // per_robot % len(DRAWER_ROBOT_YS)]
        out = replace(out, robot_xy=(APPLE_ROBOT_X, y), robot_q=base_quat(0.0), models=(APPLE_MODEL,))
    return out


def distractor_xys(task: str, episode: int, variant: str, can_xy: tuple[float, float], n: int) -> list:
    """Where the distractors of a pick-can episode drop (SimplerEnv's rule, seeded; see above)."""
    rng = np.random.default_rng(zlib.crc32(f"{task}/{variant}/{episode}".encode()))
    can = np.asarray(can_xy, dtype=np.float64)
    out = []
    for _ in range(n):
        while True:
            xy = np.clip(can + rng.uniform(-DISTRACTOR_OFFSET_M, DISTRACTOR_OFFSET_M, 2), *DISTRACTOR_BOX)
            if np.linalg.norm(xy - can) > DISTRACTOR_MIN_DIST_M:
                break
        out.append((float(xy[0]), float(xy[1])))
    return out
