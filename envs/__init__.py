"""Simulated environments and their judges (task oracles).

Importing this package registers the Gymnasium ids:

- ``robovlm/CalvinPlayTable-v0``: the CALVIN-style play table; keyword ``scene`` in A, B, C, D.
- ``robovlm/CalvinPlayTable-A-v0`` ... ``-D-v0``: the same with the scene fixed.
- ``robovlm/CalvinOfficial-v0`` and ``robovlm/CalvinOfficial-A-v0`` ... ``-D-v0``: CALVIN's own env
  (a calvin_env checkout through ``CALVIN_ENV_DIR``) behind the same interface (``envs.calvin.official``).
- ``robovlm/Simpler-<Task>-v0``: the SimplerEnv-style tasks on ManiSkill3 (``envs.simpler``), e.g.
  ``robovlm/Simpler-PickCanStanding-v0``; keywords ``variant``, ``cameras``, ``image_size``.
"""

from gymnasium.envs.registration import register, registry

CALVIN_ENV_ID = "robovlm/CalvinPlayTable-v0"
CALVIN_OFFICIAL_ENV_ID = "robovlm/CalvinOfficial-v0"
CALVIN_SCENES = ("A", "B", "C", "D")


def calvin_env_id(scene: str) -> str:
    return f"robovlm/CalvinPlayTable-{scene}-v0"


def calvin_official_env_id(scene: str) -> str:
    return f"robovlm/CalvinOfficial-{scene}-v0"


def _register() -> None:
    if CALVIN_ENV_ID in registry:
        return
    register(id=CALVIN_ENV_ID, entry_point="envs.calvin.env:CalvinEnv", max_episode_steps=360)
    for scene in CALVIN_SCENES:
        register(
            id=calvin_env_id(scene),
            entry_point="envs.calvin.env:CalvinEnv",
            max_episode_steps=360,
            kwargs={"scene": scene},
        )
    official = "envs.calvin.official.env:CalvinOfficialEnv"
    register(id=CALVIN_OFFICIAL_ENV_ID, entry_point=official, max_episode_steps=360)
    for scene in CALVIN_SCENES:
        register(
            id=calvin_official_env_id(scene),
            entry_point=official,
            max_episode_steps=360,
            kwargs={"scene": scene},
        )


_register()

from envs.simpler import register as _register_simpler  # noqa: E402 - after the CALVIN ids

_register_simpler()
