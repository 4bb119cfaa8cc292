"""One factory for the play table's backends: our PyBullet table or CALVIN's own env."""

from __future__ import annotations

from typing import Any

import gymnasium as gym

BACKENDS = ("ours", "calvin_env")


def make_calvin_env(backend: str, scene: str, **options: Any) -> gym.Env:
    """The play table of ``scene`` on ``backend``; ``options`` are the env's keywords.

    ``"ours"`` is :class:`envs.calvin.env.CalvinEnv`; ``"calvin_env"`` is
    :class:`envs.calvin.official.env.CalvinOfficialEnv` (a checkout through ``CALVIN_ENV_DIR``).
    Both take ``cameras``, ``static_size``, ``gripper_size``, ``action_mode`` and ``render_mode``.
    """
    if backend == "ours":
        from envs.calvin.env import CalvinEnv

        return CalvinEnv(scene=scene, **options)
    if backend == "calvin_env":
        from envs.calvin.official.env import CalvinOfficialEnv

        return CalvinOfficialEnv(scene=scene, **options)
    raise ValueError(f"unknown backend {backend!r}; valid backends: {', '.join(BACKENDS)}")


def check_backend(backend: str, scene: str) -> None:
    """Raise (one line saying how to fix it) unless ``backend`` can build ``scene`` here.

    Cheap: for ``calvin_env`` it finds and verifies the checkout without starting PyBullet, so a
    harness can refuse a run before it writes anything.
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; valid backends: {', '.join(BACKENDS)}")
    if backend == "calvin_env":
        from envs.calvin.official.checkout import check_scene, find_checkout

        check_scene(find_checkout(), scene)
