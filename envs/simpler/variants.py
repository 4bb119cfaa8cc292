"""Appearances of the scenes: the two evaluation modes and their visual variants.

*Visual matching* uses one fixed appearance per task family (``base``). *Variant aggregation*
changes one thing of the base scene at a time (lighting, table colour, background, distractors,
camera orientation); the score is the equal-weight mean over the variants with ``in_aggregate``,
and the camera-orientation variants are reported on their own, as in SimplerEnv.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

RGBA = tuple[float, float, float, float]


@dataclass(frozen=True)
class Appearance:
    table_color: RGBA
    background_color: RGBA
    floor_color: RGBA = (0.35, 0.33, 0.3, 1)
    light_scale: float = 1.0  # multiplies ambient and directional light
    n_distractors: int = 2
    camera_yaw_deg: float = 0.0  # turns the camera about the vertical axis through its target
    camera_pitch_deg: float = 0.0  # tilts it up (+) or down (-) about its target


BASE: dict[str, Appearance] = {
    "google_robot": Appearance(table_color=(0.46, 0.36, 0.27, 1), background_color=(0.86, 0.85, 0.8, 1)),
    "bridge": Appearance(table_color=(0.78, 0.77, 0.74, 1), background_color=(0.55, 0.5, 0.45, 1)),
}


@dataclass(frozen=True)
class Variant:
    name: str
    description: str
    changes: dict
    in_aggregate: bool = True


VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant("base", "the family's base appearance (visual matching)", {}),
        Variant("lighting_brighter", "all lights x1.8", {"light_scale": 1.8}),
        Variant("lighting_darker", "all lights x0.45", {"light_scale": 0.45}),
        Variant("table_texture_1", "dark slate table", {"table_color": (0.22, 0.23, 0.27, 1)}),
        Variant("table_texture_2", "red-brown table", {"table_color": (0.62, 0.22, 0.15, 1)}),
        Variant("background_1", "blue background", {"background_color": (0.25, 0.4, 0.62, 1)}),
        Variant("background_2", "green background", {"background_color": (0.2, 0.48, 0.25, 1)}),
        Variant("distractors_more", "4 distractor objects instead of 2", {"n_distractors": 4}),
        Variant("distractors_fewer", "no distractor objects", {"n_distractors": 0}),
        Variant(
            "camera_orientation_1",
            "camera turned 10 degrees left and tilted 5 down",
            {"camera_yaw_deg": 10.0, "camera_pitch_deg": -5.0},
            in_aggregate=False,
        ),
        Variant(
            "camera_orientation_2",
            "camera turned 10 degrees right and tilted 5 up",
            {"camera_yaw_deg": -10.0, "camera_pitch_deg": 5.0},
            in_aggregate=False,
        ),
    )
}

MODES: dict[str, tuple[str, ...]] = {
    "visual_matching": ("base",),
    "variant_aggregation": tuple(VARIANTS),
}


def check_mode(mode: str) -> tuple[str, ...]:
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; valid: {', '.join(MODES)}")
    return MODES[mode]


def check_variant(name: str) -> Variant:
    if name not in VARIANTS:
        raise ValueError(f"unknown variant {name!r}; valid: {', '.join(VARIANTS)}")
    return VARIANTS[name]


def appearance(family: str, variant: str) -> Appearance:
    """The appearance of ``variant`` for a task family."""
    if family not in BASE:
        raise ValueError(f"unknown task family {family!r}; valid: {', '.join(BASE)}")
    return replace(BASE[family], **check_variant(variant).changes)
