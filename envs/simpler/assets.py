"""Where the real-embodiment scenes find their third-party assets, and one clear line when they are not.

Two folders, both read only, given by environment variables:

* ``MS_ASSET_DIR``: ManiSkill's own asset folder (robots under ``data/robots/``); fetch a robot with
  ``python -m mani_skill.utils.download_asset widowx250s`` (or ``googlerobot``).
* ``SIMPLER_ASSET_DIR``: SimplerEnv's data folder (``custom/``, ``real_inpainting/``), the ``data/``
  folder of a git clone of simpler-env/ManiSkill2_real2sim (GitHub).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

SIMPLER_VAR = "SIMPLER_ASSET_DIR"
MS_VAR = "MS_ASSET_DIR"
SIMPLER_FETCH = "git clone simpler-env/ManiSkill2_real2sim from GitHub and set SIMPLER_ASSET_DIR=<clone>/data"
ROBOT_DIRS = {"widowx250s": "robots/widowx/wx250s.urdf", "googlerobot": "robots/googlerobot"}


class SimplerAssetsMissing(FileNotFoundError):
    """A file the real-embodiment scenes load is not there; the message names it and the fetch command."""


def simpler_asset_dir() -> Path:
    value = os.environ.get(SIMPLER_VAR)
    if not value:
        raise SimplerAssetsMissing(f"{SIMPLER_VAR} is not set (SimplerEnv's data folder); {SIMPLER_FETCH}")
    return Path(value)


def maniskill_asset_dir() -> Path:
    """ManiSkill's asset folder as ManiSkill itself resolves it (``$MS_ASSET_DIR/data``)."""
    from mani_skill import ASSET_DIR

    return Path(ASSET_DIR)


def require_simpler_files(relative: Iterable[str]) -> Path:
    """The SimplerEnv data folder, after checking that every ``relative`` path exists in it."""
    root = simpler_asset_dir()
    for rel in relative:
        if not (root / rel).exists():
            raise SimplerAssetsMissing(f"missing {root / rel} ({SIMPLER_VAR}={root}); {SIMPLER_FETCH}")
    return root


def require_robot(robot: str) -> Path:
    """The robot's asset path under ManiSkill's folder, or one line naming it and the download command."""
    if robot not in ROBOT_DIRS:
        raise ValueError(f"unknown robot {robot!r}; valid: {', '.join(ROBOT_DIRS)}")
    path = maniskill_asset_dir() / ROBOT_DIRS[robot]
    if not path.exists():
        raise SimplerAssetsMissing(
            f"missing {path} ({MS_VAR}={os.environ.get(MS_VAR, 'unset')}); "
            f"fetch it with: python -m mani_skill.utils.download_asset {robot}"
        )
    return path
