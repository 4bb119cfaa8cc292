"""What the SimplerEnv tests that build scenes need: a Vulkan device and, for SimplerEnv's own
embodiments, ManiSkill's robot assets and SimplerEnv's data folder. Each helper skips with the reason
when something is missing, except a missing Vulkan device in CI (CI installs lavapipe: a failure)."""

from __future__ import annotations

import os
from collections.abc import Sequence

import pytest

from envs.simpler.assets import SimplerAssetsMissing, require_robot, require_simpler_files
from envs.simpler.vulkan import VulkanUnavailable, check_vulkan


def require_vulkan() -> None:
    """Skip without a Vulkan device (in CI, raise)."""
    try:
        check_vulkan()
    except VulkanUnavailable as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(str(exc))


def require_assets(files: Sequence[str], robot: str) -> None:
    """Skip unless SimplerEnv's ``files`` and ManiSkill's ``robot`` load and a Vulkan device is there."""
    try:
        require_simpler_files(list(files))
        require_robot(robot)
    except SimplerAssetsMissing as exc:
        pytest.skip(f"SimplerEnv assets absent: {exc}")
    require_vulkan()
