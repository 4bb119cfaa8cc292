"""The SimplerEnv-style suite on ManiSkill3: Google-robot and Bridge task families.

Tasks (``envs.simpler.tasks.TASKS``), each a Gymnasium id ``robovlm/Simpler-<CamelName>-v0``:

- Google robot (3 Hz control, 513 Hz simulation): ``pick_can_horizontal``, ``pick_can_vertical``,
  ``pick_can_standing`` (80 steps); ``move_near`` (80); ``open_drawer_top|middle|bottom`` and
  ``close_drawer_top|middle|bottom`` (113); ``place_apple_in_top_drawer`` (200, the instruction
  switches at step 100).
- Bridge (5 Hz control, 500 Hz simulation): ``put_spoon_on_towel``, ``put_carrot_on_plate``,
  ``stack_green_on_yellow`` (60 steps); ``put_eggplant_in_basket`` (120).

These ids build today's primitive scenes (a Panda arm, shapes built here, nothing to download).
The same tasks on SimplerEnv's own embodiments, objects, cameras and real-image overlays are
``robovlm/SimplerReal-<CamelName>-v0`` (:mod:`envs.simpler.real_env`; so far the Bridge family on
ManiSkill3's WidowX 250 S); they load assets from ``MS_ASSET_DIR`` and ``SIMPLER_ASSET_DIR``.

Importing this package needs neither ManiSkill nor a Vulkan device; making an env needs both.
"""

from gymnasium.envs.registration import register as _gym_register
from gymnasium.envs.registration import registry

from envs.simpler.tasks import FAMILIES, GROUPS, TASKS, check_task, select_tasks
from envs.simpler.variants import MODES, VARIANTS, check_mode, check_variant

__all__ = [
    "FAMILIES",
    "GROUPS",
    "MODES",
    "TASKS",
    "VARIANTS",
    "check_mode",
    "check_task",
    "check_variant",
    "gym_id",
    "real_gym_id",
    "register",
    "select_tasks",
]


def gym_id(task: str) -> str:
    return check_task(task).gym_id


def real_gym_id(task: str) -> str:
    """Gymnasium id of ``task`` on SimplerEnv's own embodiment."""
    return check_task(task).gym_id.replace("/Simpler-", "/SimplerReal-")


def register() -> None:
    """Register every task's Gymnasium id (idempotent)."""
    for spec in TASKS.values():
        if spec.gym_id in registry:
            continue
        _gym_register(
            id=spec.gym_id,
            entry_point="envs.simpler.env:SimplerEnv",
            max_episode_steps=spec.max_steps,
            kwargs={"task": spec.name},
        )
    from envs.simpler.reference import reference

    for name in reference()["tasks"]:
        if real_gym_id(name) in registry:
            continue
        _gym_register(
            id=real_gym_id(name),
            entry_point="envs.simpler.real_env:SimplerRealEnv",
            max_episode_steps=TASKS[name].max_steps,
            kwargs={"task": name},
        )
