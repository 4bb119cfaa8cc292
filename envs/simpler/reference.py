"""SimplerEnv's own numbers (cameras, robot base poses, layouts, rates, rule thresholds), from a data file.

``envs/simpler/data/simpler_reference.json`` stores every number as ``{"value": ..., "source": ...}``,
the source naming the repository, commit, file and class it was read from. :func:`reference` gives
the values with the sources stripped; :func:`sources` gives the sources with the same keys.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

REFERENCE_FILE = Path(__file__).with_name("data") / "simpler_reference.json"


def _strip(node: Any, key: str) -> Any:
    if isinstance(node, dict):
        if set(node) == {"value", "source"}:
            return node[key]
        return {k: _strip(v, key) for k, v in node.items() if k != "about"}
    return node


@functools.cache
def _raw() -> dict:
    return json.loads(REFERENCE_FILE.read_text())


def reference() -> dict:
    """The numbers, as a nested dict of plain values (a fresh copy)."""
    return _strip(_raw(), "value")


def sources() -> dict:
    """The source of every number, with the same keys as :func:`reference`."""
    return _strip(_raw(), "source")


def scene_reference(name: str) -> dict:
    scenes = reference()["scenes"]
    if name not in scenes:
        raise ValueError(f"{REFERENCE_FILE.name}: unknown scene {name!r}; valid: {', '.join(scenes)}")
    return scenes[name]


def task_reference(task: str) -> dict:
    tasks = reference()["tasks"]
    if task not in tasks:
        raise ValueError(
            f"{REFERENCE_FILE.name}: no SimplerEnv numbers for task {task!r}; valid: {', '.join(tasks)}"
        )
    return tasks[task]


def layout_reference(task: str, episode: int) -> tuple[list, list]:
    """(xy per object, quaternion per object) of SimplerEnv's episode ``episode`` of ``task``.

    SimplerEnv's indexing: the position config is ``(episode % (n_xy * n_quat)) // n_quat`` and the
    orientation config ``episode % n_quat``.
    """
    if episode < 0:
        raise ValueError(f"episode index must be >= 0, got {episode}")
    t = task_reference(task)
    xys, quats = t["xy_configs"], t["quat_configs"]
    i = episode % (len(xys) * len(quats))
    return xys[i // len(quats)], quats[episode % len(quats)]
