"""SimplerEnv's variant aggregation for the Google-robot tasks on the real embodiment: every variant, its source.

Visual matching (variant ``base``) composites the real image behind the robot and the objects. In
variant aggregation SimplerEnv renders its own stage meshes instead and changes one thing of its
base setup at a time (scripts ``rt1_*_variant_agg.sh`` of simpler-env/SimplerEnv@2905379; the flags'
effects in simpler-env/ManiSkill2_real2sim@16a9ba9 ``envs/custom_scenes/*.py``). Its stage meshes
(``hab2_bench_assets/stages/*.glb``) are not available here, so each stage is an equivalent built from
boxes (:class:`Stage`): a table box at SimplerEnv's table height, a floor and three walls, each in one
colour chosen to stand for the stage's texture. What each variant changes:

* lighting, distractors, the camera (head joints), the cabinet URDF, the robot base poses, the
  objects and the episode counts: SimplerEnv's own numbers, exact;
* table textures and backgrounds: equivalents: the table box or the walls and floor take another
  colour, standing for SimplerEnv's other stage mesh (its texture and room are not reproduced).

The score of a task is the equal-weight mean over its variants with ``in_aggregate``; the camera
variants are run and reported but left out, as SimplerEnv's ``tools/calc_metrics_evaluation_videos.py``
does (simpler-env/SimplerEnv@8a08029).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

RGB = tuple[float, float, float]
Light = tuple[tuple[float, float, float], RGB]  # direction, colour

SCRIPTS = "simpler-env/SimplerEnv@2905379:scripts"
ENVS = "simpler-env/ManiSkill2_real2sim@16a9ba9:mani_skill2_real2sim/envs/custom_scenes"
METRICS = "simpler-env/SimplerEnv@8a08029:tools/calc_metrics_evaluation_videos.py"
#: The name of SimplerEnv's base setup in variant aggregation (its stage, no real image).
SIM_BASE = "sim_base"


@dataclass(frozen=True)
class Lighting:
    ambient: RGB
    directional: tuple[Light, ...]


def _grey(v: float) -> RGB:
    return (v, v, v)


#: The tabletop scenes' lights (GraspSingleInSceneEnv / MoveNearInSceneEnv ``_setup_lighting``).
TABLETOP_LIGHT = Lighting(
    _grey(0.3), (((0, 0, -1), _grey(2.2)), ((-1, -0.5, -1), _grey(0.7)), ((1, 1, -1), _grey(0.7)))
)
TABLETOP_BRIGHTER = Lighting(
    _grey(0.3), (((0, 0, -1), _grey(3.6)), ((-1, -0.5, -1), _grey(1.3)), ((1, 1, -1), _grey(1.3)))
)
TABLETOP_DARKER = Lighting(_grey(0.3), (((1, 1, -1), _grey(0.8)), ((0, 0, -1), _grey(0.8))))


def drawer_light(key: float) -> Lighting:
    """The drawer scenes' lights without ``light_mode=simple`` (OpenDrawerInSceneEnv
    ``_setup_lighting_legacy``): ``key`` is the main light's colour (1; darker 0.5, brighter 2)."""
    return Lighting(
        _grey(0.3), (((-0.2, 0, -1), _grey(key)), ((-1, 1, -0.05), _grey(0.5)), ((-1, -1, -0.05), _grey(0.5)))
    )


#: The head joints (pan, tilt) of SimplerEnv's start pose and of its two alternative cameras
#: (``*AltGoogleCamera*InScene-v0``: only the tilt differs).
HEAD_BASE = (-0.00285961, 0.7851361)
HEAD_CAMERA_1 = (-0.00285961, 0.9351361)
HEAD_CAMERA_2 = (-0.00285961, 0.6651361)


@dataclass(frozen=True)
class Stage:
    """What one variant-aggregation episode renders and runs in place of SimplerEnv's stage."""

    table_rgb: RGB | None  # the table box (None: no table, the drawer scenes' cabinet stands on the floor)
    wall_rgb: RGB
    floor_rgb: RGB
    lighting: Lighting
    distractors: tuple[str, ...] = ()  # extra objects dropped around the coke can
    no_distractor: bool = False  # move near with only its source and target
    head: tuple[float, float] = HEAD_BASE
    station: str | None = None  # the drawer scenes' cabinet: custom/<station>.urdf


@dataclass(frozen=True)
class RealVariant:
    name: str
    description: str
    source: str
    changes: dict = field(default_factory=dict)
    in_aggregate: bool = True


# Stand-in colours: the coke-can stage's light counter and pale walls; SimplerEnv's two other table
# stages (a dark wooden and a pale stone top); its two alternative backgrounds (bluish, greenish walls);
# the drawer scenes' apartment (cream walls, wooden floor), bedroom (warm) and office (cool grey).
TABLETOP_STAGE = Stage(
    table_rgb=(0.45, 0.4, 0.35),
    wall_rgb=(0.55, 0.53, 0.5),
    floor_rgb=(0.3, 0.28, 0.26),
    lighting=TABLETOP_LIGHT,
)
DRAWER_STAGE = Stage(
    table_rgb=None,
    wall_rgb=(0.86, 0.83, 0.76),
    floor_rgb=(0.5, 0.38, 0.27),
    lighting=drawer_light(1.0),
    station="mk_station",
)

_LIGHTING = f"{SCRIPTS}/rt1_{{}}_variant_agg.sh (slightly_{{}}_lighting=True); {ENVS}/{{}}_in_scene.py _setup_lighting"


def _tabletop(script: str, module: str) -> list[RealVariant]:
    """The variants the coke-can and move-near scripts share."""
    s = f"{SCRIPTS}/rt1_{script}_variant_agg.sh"
    return [
        RealVariant(
            SIM_BASE, "SimplerEnv's stage google_pick_coke_can_1_v4 (equivalent boxes)", f"{s} (base setup)"
        ),
        RealVariant(
            "table_texture_1",
            "Baked_sc1_staging_objaverse_cabinet1_h870: dark wooden table top (equivalent colour)",
            f"{s} (table textures)",
            {"table_rgb": (0.25, 0.16, 0.1)},
        ),
        RealVariant(
            "table_texture_2",
            "Baked_sc1_staging_objaverse_cabinet2_h870: pale stone table top (equivalent colour)",
            f"{s} (table textures)",
            {"table_rgb": (0.75, 0.75, 0.73)},
        ),
        RealVariant(
            "background_1",
            "google_pick_coke_can_1_v4_alt_background: other walls and floor (equivalent colours)",
            f"{s} (backgrounds)",
            {"wall_rgb": (0.3, 0.38, 0.52), "floor_rgb": (0.22, 0.24, 0.28)},
        ),
        RealVariant(
            "background_2",
            "google_pick_coke_can_1_v4_alt_background_2: other walls and floor (equivalent colours)",
            f"{s} (backgrounds)",
            {"wall_rgb": (0.38, 0.46, 0.3), "floor_rgb": (0.28, 0.22, 0.17)},
        ),
        RealVariant(
            "lighting_darker",
            "slightly_darker_lighting: ambient 0.3, two lights of 0.8",
            _LIGHTING.format(script, "darker", module),
            {"lighting": TABLETOP_DARKER},
        ),
        RealVariant(
            "lighting_brighter",
            "slightly_brighter_lighting: ambient 0.3, lights 3.6, 1.3, 1.3",
            _LIGHTING.format(script, "brighter", module),
            {"lighting": TABLETOP_BRIGHTER},
        ),
        RealVariant(
            "camera_orientation_1",
            "AltGoogleCamera: head tilt 0.935 rad instead of 0.785",
            f"{s} (camera orientations); {ENVS}/{module}_in_scene.py *AltGoogleCameraInSceneEnv.reset",
            {"head": HEAD_CAMERA_1},
            in_aggregate=False,
        ),
        RealVariant(
            "camera_orientation_2",
            "AltGoogleCamera2: head tilt 0.665 rad instead of 0.785",
            f"{s} (camera orientations); {ENVS}/{module}_in_scene.py *AltGoogleCamera2InSceneEnv.reset",
            {"head": HEAD_CAMERA_2},
            in_aggregate=False,
        ),
    ]


def _drawer(script: str) -> list[RealVariant]:
    s = f"{SCRIPTS}/rt1_{script}_variant_agg.sh"
    legacy = f"{ENVS}/open_drawer_in_scene.py OpenDrawerInSceneEnv._setup_lighting_legacy"
    return [
        RealVariant(
            SIM_BASE, "SimplerEnv's stage frl_apartment_stage_simple (equivalent boxes)", f"{s} (base setup)"
        ),
        RealVariant(
            "background_1",
            "modern_bedroom_no_roof: other walls and floor (equivalent colours)",
            f"{s} (backgrounds)",
            {"wall_rgb": (0.66, 0.56, 0.48), "floor_rgb": (0.33, 0.27, 0.24)},
        ),
        RealVariant(
            "background_2",
            "modern_office_no_roof: other walls and floor (equivalent colours)",
            f"{s} (backgrounds)",
            {"wall_rgb": (0.68, 0.72, 0.76), "floor_rgb": (0.3, 0.31, 0.33)},
        ),
        RealVariant(
            "lighting_darker",
            "light_mode=darker: main light 0.5 instead of 1",
            f"{s} (lightings); {legacy}",
            {"lighting": drawer_light(0.5)},
        ),
        RealVariant(
            "lighting_brighter",
            "light_mode=brighter: main light 2 instead of 1",
            f"{s} (lightings); {legacy}",
            {"lighting": drawer_light(2.0)},
        ),
        RealVariant(
            "cabinet_2", "station_name=mk_station2", f"{s} (new cabinets)", {"station": "mk_station2"}
        ),
        RealVariant(
            "cabinet_3",
            "station_name=mk_station3 (its stone top mesh is missing: a box of its collision size)",
            f"{s} (new cabinets)",
            {"station": "mk_station3"},
        ),
    ]


_COKE = _tabletop("pick_coke_can", "grasp_single")
_COKE[3:3] = [
    RealVariant(
        "distractors",
        "GraspSingleOpenedCokeCanDistractorInScene-v0 (distractor_config=less): 4 distractors",
        f"{SCRIPTS}/rt1_pick_coke_can_variant_agg.sh (distractors); {ENVS}/grasp_single_in_scene.py",
        {"distractors": ("opened_pepsi_can", "apple", "sponge", "orange")},
    ),
    RealVariant(
        "distractors_more",
        "distractor_config=more: 6 distractors",
        f"{SCRIPTS}/rt1_pick_coke_can_variant_agg.sh (distractors); {ENVS}/grasp_single_in_scene.py",
        {
            "distractors": (
                "opened_7up_can",
                "opened_sprite_can",
                "sponge",
                "orange",
                "opened_fanta_can",
                "bridge_spoon_generated_modified",
            )
        },
    ),
]
_NEAR = _tabletop("move_near", "move_near")
_NEAR[3:3] = [
    RealVariant(
        "distractors_none",
        "no_distractor=True: only the source and the target",
        f"{SCRIPTS}/rt1_move_near_variant_agg.sh (distractor); {ENVS}/move_near_in_scene.py MoveNearGoogleInSceneEnv.reset",
        {"no_distractor": True},
    )
]

#: scene kind (``google_layout.GOOGLE_KINDS``) -> (its base stage, its variants in SimplerEnv's order)
KIND_VARIANTS: dict[str, tuple[Stage, dict[str, RealVariant]]] = {
    "pick_can": (TABLETOP_STAGE, {v.name: v for v in _COKE}),
    "move_near": (TABLETOP_STAGE, {v.name: v for v in _NEAR}),
    "open_drawer": (DRAWER_STAGE, {v.name: v for v in _drawer("drawer")}),
    "close_drawer": (DRAWER_STAGE, {v.name: v for v in _drawer("drawer")}),
    "apple_drawer": (DRAWER_STAGE, {v.name: v for v in _drawer("put_in_drawer")}),
}

#: Every variant of the real scenes by name (a name means the same change in every scene kind).
REAL_VARIANTS: dict[str, RealVariant] = {}
for _stage, _variants in KIND_VARIANTS.values():
    for _name, _v in _variants.items():
        REAL_VARIANTS.setdefault(_name, _v)


def _kind(task: str) -> str:
    from envs.simpler.google_layout import google_tasks
    from envs.simpler.reference import task_reference

    if task not in google_tasks():
        raise ValueError(
            f"task {task!r}: SimplerEnv has no variant aggregation for it on its own embodiment (only the "
            f"Google-robot tasks: {', '.join(google_tasks())}); run it in visual matching (--variants base)"
        )
    return task_reference(task)["kind"]


def task_variants(task: str) -> tuple[str, ...]:
    """The variant-aggregation variants of ``task``, in SimplerEnv's script order."""
    return tuple(KIND_VARIANTS[_kind(task)][1])


def check_real_variant(task: str, variant: str) -> None:
    """``base`` (visual matching) or one of the task's variant-aggregation variants; a clear error otherwise."""
    if variant == "base":
        return
    valid = ("base", *task_variants(task))
    if variant not in valid:
        raise ValueError(
            f"unknown variant {variant!r} for {task} on SimplerEnv's embodiment; valid: {', '.join(valid)}"
        )


def stage(task: str, variant: str) -> Stage:
    """The stage of a variant-aggregation episode of ``task``."""
    check_real_variant(task, variant)
    if variant == "base":
        raise ValueError("variant 'base' is visual matching: it composites the real image and has no stage")
    base, variants = KIND_VARIANTS[_kind(task)]
    return replace(base, **variants[variant].changes)
