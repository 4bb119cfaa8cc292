"""SimplerEnv's Google-robot episodes: robot base pose, overlay, robot URDF and object layout per episode.

Episode ``i`` of a task, with SimplerEnv's own orderings (its visual-matching scripts loop over these
in this order):

* pick coke can: the can at ``(obj_xs[i // 5 % 5], obj_ys[i % 5])`` (x outer, y inner), one orientation
  per task;
* move near: SimplerEnv's ``episode_id`` ``i % 60``: triplet ``i // 12``, xy config ``i % 12 // 6``,
  (source, target) pair ``i % 6``;
* open / close drawer: overlay (and its robot pose) ``i % 9``: a0, a1, a2, b0, ... c2;
* apple in top drawer: overlay ``i // 9 % 3`` (a0, b0, c0), apple at ``(obj_xs[i % 9 // 3], obj_ys[i % 3])``.

SimplerEnv runs every layout with each of its four robot URDFs (the visual-matching recolourings)
and averages; here episode ``i`` uses URDF version ``i % 4``, so the reference episode counts cover
all four about equally.

The robot base faces -x: its orientation is ``euler(0, 0, rotz) * [0, 0, 0, 1]`` (w, x, y, z), as
SimplerEnv composes it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from envs.simpler.reference import reference, scene_reference, task_reference

GOOGLE_KINDS = ("pick_can", "move_near", "open_drawer", "close_drawer", "apple_drawer")


@dataclass(frozen=True)
class GoogleEpisode:
    task: str
    kind: str
    scene: str
    overlay: str  # relative to SIMPLER_ASSET_DIR
    robot_xy: tuple[float, float]
    robot_q: tuple[float, float, float, float]  # w, x, y, z
    urdf_version: str
    models: tuple[str, ...] = ()  # objects on the table, in SimplerEnv's order
    xys: tuple[tuple[float, float], ...] = ()
    quats: tuple[tuple[float, float, float, float], ...] = ()
    source: int | None = None  # index into models (move near)
    target: int | None = None
    drawer: str | None = None
    start_q: float = 0.0
    model_json: str | None = None  # the models' info file, when not the task's (variant aggregation)
    densities: tuple[tuple[str, float], ...] | None = None  # special densities, when not the task's


def base_quat(rotz: float) -> tuple[float, float, float, float]:
    """``euler(0, 0, rotz) * [0, 0, 0, 1]``: the base turned by ``rotz`` from facing -x."""
    half = (math.pi + rotz) / 2
    return (math.cos(half), 0.0, 0.0, math.sin(half))


def is_google_task(task: str) -> bool:
    ref = reference()["tasks"].get(task)
    return ref is not None and ref.get("kind") in GOOGLE_KINDS


def google_tasks() -> tuple[str, ...]:
    return tuple(t for t in reference()["tasks"] if is_google_task(t))


def episode_layout(task: str, episode: int) -> GoogleEpisode:
    """Everything that makes SimplerEnv's episode ``episode`` of a Google-robot task."""
    if not is_google_task(task):
        raise ValueError(f"{task!r} is not a Google-robot task; valid: {', '.join(google_tasks())}")
    if episode < 0:
        raise ValueError(f"episode index must be >= 0, got {episode}")
    t = task_reference(task)
    s = scene_reference(t["scene"])
    versions = reference()["families"]["google_robot"]["urdf_versions"]
    kind = t["kind"]
    pose = 0
    extra: dict = {}
    if kind == "pick_can":
        xs, ys = t["obj_xs"], t["obj_ys"]
        xy = (xs[episode // len(ys) % len(xs)], ys[episode % len(ys)])
        extra = {"models": tuple(t["objects"]), "xys": (xy,), "quats": (tuple(t["obj_quat"]),)}
    elif kind == "move_near":
        pairs, configs, triplets = t["pairs"], t["xy_configs"], t["triplets"]
        i = episode % (len(triplets) * len(configs) * len(pairs))
        triplet = triplets[i // (len(configs) * len(pairs))]
        config = configs[i % (len(configs) * len(pairs)) // len(pairs)]
        source, target = pairs[i % len(pairs)]
        quats = dict(t["quats"])
        extra = {
            "models": tuple(triplet),
            "xys": tuple(tuple(xy) for xy in config),
            "quats": tuple(tuple(quats[m]) for m in triplet),
            "source": source,
            "target": target,
        }
    elif kind in ("open_drawer", "close_drawer"):
        pose = episode % len(s["overlays"])
        extra = {"drawer": t["drawer"], "start_q": t["start_q"]}
    else:  # apple_drawer
        xs, ys = t["obj_xs"], t["obj_ys"]
        per_overlay = len(xs) * len(ys)
        pose = episode // per_overlay % len(s["overlays"])
        i = episode % per_overlay
        xy = (xs[i // len(ys)], ys[i % len(ys)])
        extra = {
            "models": tuple(t["objects"]),
            "xys": (xy,),
            "quats": (tuple(t["obj_quat"]),),
            "drawer": t["drawer"],
        }
    overlays = s.get("overlays") or [s["overlay"]]
    return GoogleEpisode(
        task=task,
        kind=kind,
        scene=t["scene"],
        overlay=overlays[pose],
        robot_xy=tuple(s["robot_xy"][pose]),
        robot_q=base_quat(s["robot_rotz"][pose]),
        urdf_version=versions[episode % len(versions)],
        **extra,
    )


def object_words(model: str, drop: list[str]) -> str:
    """SimplerEnv's name of a model in instructions: its words less ``drop`` and sizes (``3cm``)."""
    return " ".join(w for w in model.split("_") if w not in drop and not w.endswith("cm"))


def instruction(layout: GoogleEpisode, subtask: int = 0) -> str:
    t = task_reference(layout.task)
    if layout.kind == "move_near":
        drop = t["instruction_drop_words"]
        src, tgt = layout.models[layout.source], layout.models[layout.target]
        return f"move {object_words(src, drop)} near {object_words(tgt, drop)}"
    if layout.kind == "apple_drawer":
        return t["instruction"][min(subtask, 1)]
    return t["instruction"]
