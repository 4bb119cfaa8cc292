"""The objects of the SimplerEnv-style suite, each made of primitive shapes (no downloaded assets).

An object is data: a list of :class:`Part` (box, sphere, cylinder or capsule at an offset), a colour
and a density. :func:`build_object` turns it into a ManiSkill actor; :func:`half_extents` gives the
axis-aligned half size of the object in its own frame, which the success rules use as a bounding box.
Round or lying objects get a thin flat "foot" under them so that they rest instead of rolling away
after a release (real apples and carrots do not roll far either).

The cabinet with three drawers on prismatic joints is built by :func:`build_cabinet`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Quaternion (w, x, y, z) that turns SAPIEN's x-axis cylinders and capsules upright (x -> z).
X_TO_Z = (0.7071068, 0.0, -0.7071068, 0.0)


@dataclass(frozen=True)
class Part:
    kind: str  # "box" (size = half sizes), "sphere" (radius,), "cylinder" / "capsule" (radius, half length)
    size: tuple[float, ...]
    offset: tuple[float, float, float] = (0.0, 0.0, 0.0)
    quat: tuple[float, float, float, float] = (1.0, 0.0, 0.0, 0.0)
    color: tuple[float, float, float, float] | None = None  # None: the object's colour
    collision: bool = True


@dataclass(frozen=True)
class ObjectSpec:
    name: str
    parts: tuple[Part, ...]
    color: tuple[float, float, float, float]
    density: float = 500.0
    #: Words the instructions use for the object.
    phrase: str = ""
    friction: float = 1.0

    @property
    def words(self) -> str:
        return self.phrase or self.name.replace("_", " ")


def _foot(radius: float, bottom: float) -> Part:
    """A thin square pad under a round object so it rests on a table instead of rolling."""
    half = radius * 0.45
    return Part("box", (half, half, 0.002), (0.0, 0.0, bottom + 0.002), color=None)


def _can(name: str, color: tuple, phrase: str, radius: float = 0.033, half_len: float = 0.061) -> ObjectSpec:
    return ObjectSpec(
        name,
        (
            Part("cylinder", (radius, half_len), quat=X_TO_Z),
            Part("cylinder", (radius * 0.8, 0.002), (0.0, 0.0, half_len + 0.001), X_TO_Z, (0.8, 0.8, 0.8, 1)),
        ),
        color,
        density=300.0,
        phrase=phrase,
    )


def _round(name: str, color: tuple, phrase: str, radius: float) -> ObjectSpec:
    return ObjectSpec(
        name,
        (Part("sphere", (radius,)), _foot(radius, -radius)),
        color,
        density=400.0,
        phrase=phrase,
    )


def _lying(name: str, color: tuple, phrase: str, radius: float, half_len: float) -> ObjectSpec:
    """A capsule lying along the object's x-axis, with a foot."""
    return ObjectSpec(
        name,
        (Part("capsule", (radius, half_len)), _foot(radius, -radius)),
        color,
        density=400.0,
        phrase=phrase,
    )


def _basket() -> ObjectSpec:
    hx, hy, h, t = 0.09, 0.075, 0.035, 0.006  # inner half sizes, wall half height, wall half thickness
    walls = (
        Part("box", (hx + 2 * t, hy + 2 * t, t), (0.0, 0.0, -h + t)),
        Part("box", (t, hy + 2 * t, h), (hx + t, 0.0, 0.0)),
        Part("box", (t, hy + 2 * t, h), (-hx - t, 0.0, 0.0)),
        Part("box", (hx, t, h), (0.0, hy + t, 0.0)),
        Part("box", (hx, t, h), (0.0, -hy - t, 0.0)),
    )
    return ObjectSpec("basket", walls, (0.72, 0.55, 0.32, 1), density=800.0, phrase="basket")


def _spoon() -> ObjectSpec:
    return ObjectSpec(
        "spoon",
        (
            Part("box", (0.055, 0.009, 0.01), (-0.02, 0.0, 0.0)),
            Part("box", (0.025, 0.018, 0.01), (0.055, 0.0, 0.0)),
        ),
        (0.75, 0.75, 0.8, 1),
        density=600.0,
        phrase="spoon",
    )


OBJECTS: dict[str, ObjectSpec] = {
    spec.name: spec
    for spec in (
        _can("coke_can", (0.8, 0.05, 0.05, 1), "coke can"),
        _can("pepsi_can", (0.05, 0.15, 0.7, 1), "pepsi can"),
        _can("redbull_can", (0.25, 0.35, 0.75, 1), "redbull can", radius=0.026, half_len=0.065),
        _round("apple", (0.75, 0.1, 0.1, 1), "apple", 0.03),
        _round("orange", (1.0, 0.55, 0.05, 1), "orange", 0.032),
        ObjectSpec("sponge", (Part("box", (0.045, 0.03, 0.018)),), (0.95, 0.85, 0.1, 1), 200.0, "sponge"),
        _lying("carrot", (1.0, 0.45, 0.05, 1), "carrot", 0.017, 0.045),
        _lying("eggplant", (0.35, 0.1, 0.45, 1), "eggplant", 0.024, 0.045),
        _spoon(),
        ObjectSpec("towel", (Part("box", (0.075, 0.075, 0.004)),), (0.15, 0.45, 0.75, 1), 400.0, "towel"),
        ObjectSpec(
            "plate",
            (Part("cylinder", (0.08, 0.006), quat=X_TO_Z),),
            (0.95, 0.95, 0.92, 1),
            800.0,
            "plate",
        ),
        ObjectSpec(
            "green_block", (Part("box", (0.02, 0.02, 0.02)),), (0.1, 0.7, 0.2, 1), 500.0, "green block"
        ),
        ObjectSpec(
            "yellow_block", (Part("box", (0.02, 0.02, 0.02)),), (0.95, 0.85, 0.1, 1), 500.0, "yellow block"
        ),
        _basket(),
    )
}

#: Small primitive distractors (never the subject of an instruction).
DISTRACTORS: tuple[ObjectSpec, ...] = (
    ObjectSpec("distractor_cube", (Part("box", (0.018, 0.018, 0.018)),), (0.6, 0.2, 0.7, 1), 500.0),
    ObjectSpec(
        "distractor_cylinder", (Part("cylinder", (0.02, 0.03), quat=X_TO_Z),), (0.2, 0.7, 0.7, 1), 500.0
    ),
    ObjectSpec("distractor_block", (Part("box", (0.03, 0.015, 0.015)),), (0.9, 0.5, 0.6, 1), 500.0),
    ObjectSpec("distractor_ball", (Part("sphere", (0.02,)), _foot(0.02, -0.02)), (0.4, 0.4, 0.4, 1), 500.0),
)


def _rotate(quat: tuple[float, ...], vec: np.ndarray) -> np.ndarray:
    w, x, y, z = quat
    rot = np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ]
    )
    return rot @ vec


def _part_half_extents(part: Part) -> np.ndarray:
    if part.kind == "box":
        local = np.abs(np.array(part.size))
        corners = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)]) * local
        return np.abs(np.stack([_rotate(part.quat, c) for c in corners])).max(axis=0)
    if part.kind == "sphere":
        return np.full(3, part.size[0])
    radius, half_len = part.size
    axis = np.abs(_rotate(part.quat, np.array([1.0, 0.0, 0.0])))
    along = half_len + (radius if part.kind == "capsule" else 0.0)
    return axis * along + (1 - axis) * radius


def half_extents(spec: ObjectSpec) -> np.ndarray:
    """Half size of the axis-aligned box around the object in its own frame (about its origin)."""
    lo, hi = np.full(3, np.inf), np.full(3, -np.inf)
    for part in spec.parts:
        h = _part_half_extents(part)
        lo = np.minimum(lo, np.array(part.offset) - h)
        hi = np.maximum(hi, np.array(part.offset) + h)
    return np.maximum(np.abs(lo), np.abs(hi))


def bottom_offset(spec: ObjectSpec) -> float:
    """Height of the object's origin above its lowest point (rest height on a table at z = 0)."""
    return float(max(-(np.array(p.offset)[2] - _part_half_extents(p)[2]) for p in spec.parts))


def top_offset(spec: ObjectSpec) -> float:
    """Height of the object's highest point above its origin."""
    return float(max(np.array(p.offset)[2] + _part_half_extents(p)[2] for p in spec.parts))


def build_object(scene, spec: ObjectSpec, name: str, *, body_type: str = "dynamic", initial_pose=None):
    """A ManiSkill actor for ``spec``; ``name`` must be unique in the scene."""
    import sapien

    builder = scene.create_actor_builder()
    physx_material = sapien.physx.PhysxMaterial(spec.friction, spec.friction, 0.0)
    for part in spec.parts:
        pose = sapien.Pose(p=list(part.offset), q=list(part.quat))
        material = sapien.render.RenderMaterial(base_color=list(part.color or spec.color), roughness=0.6)
        if part.kind == "box":
            builder.add_box_visual(pose=pose, half_size=part.size, material=material)
            if part.collision:
                builder.add_box_collision(
                    pose=pose, half_size=part.size, material=physx_material, density=spec.density
                )
        elif part.kind == "sphere":
            builder.add_sphere_visual(pose=pose, radius=part.size[0], material=material)
            if part.collision:
                builder.add_sphere_collision(
                    pose=pose, radius=part.size[0], material=physx_material, density=spec.density
                )
        elif part.kind in ("cylinder", "capsule"):
            add_visual = getattr(builder, f"add_{part.kind}_visual")
            add_collision = getattr(builder, f"add_{part.kind}_collision")
            add_visual(pose=pose, radius=part.size[0], half_length=part.size[1], material=material)
            if part.collision:
                add_collision(
                    pose=pose,
                    radius=part.size[0],
                    half_length=part.size[1],
                    material=physx_material,
                    density=spec.density,
                )
        else:
            raise ValueError(f"object {spec.name}: unknown part kind {part.kind!r}")
    if initial_pose is not None:
        builder.initial_pose = initial_pose
    else:
        builder.initial_pose = sapien.Pose(p=[0.0, 0.0, 1.0 + 0.2 * len(scene.actors)])
    if body_type == "static":
        return builder.build_static(name=name)
    if body_type == "kinematic":
        return builder.build_kinematic(name=name)
    return builder.build(name=name)


# --- the cabinet ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CabinetSpec:
    """A cabinet that stands on the table with its drawer fronts facing -x (towards the robot).

    The frame's origin is on the table under the middle of the front face.
    """

    width: float = 0.36  # along y
    depth: float = 0.30  # along x
    wall: float = 0.012
    drawer_height: float = 0.12
    gap: float = 0.012  # shelf thickness between drawers
    travel: float = 0.25  # drawer joint upper limit (m)
    handle_standoff: float = 0.045  # handle bar distance in front of the drawer front
    levels: tuple[str, ...] = ("bottom", "middle", "top")
    color: tuple[float, float, float, float] = (0.55, 0.42, 0.3, 1)
    front_color: tuple[float, float, float, float] = (0.62, 0.5, 0.38, 1)
    handle_color: tuple[float, float, float, float] = (0.2, 0.2, 0.22, 1)

    def level_z(self, level: str) -> float:
        """Height of the middle of a drawer (its handle) above the table."""
        i = self.levels.index(level)
        return self.wall + self.gap / 2 + i * (self.drawer_height + self.gap) + self.drawer_height / 2

    @property
    def height(self) -> float:
        return self.wall + len(self.levels) * (self.drawer_height + self.gap) + self.wall

    def handle_offset(self) -> float:
        """x of the handle bar's centre relative to the cabinet front (negative: in front of it)."""
        return -self.handle_standoff

    def tray_inner(self) -> tuple[float, float, float]:
        """Inner half sizes (x, y, z) of a drawer's tray, about the tray centre."""
        return (self.depth / 2 - 2 * self.wall, self.width / 2 - 2.5 * self.wall, self.drawer_height / 2)


CABINET = CabinetSpec()


def build_cabinet(scene, spec: CabinetSpec, name: str, initial_pose):
    """Articulation: a fixed shell and one drawer link per level on a prismatic joint along -x.

    Joint position 0 is closed and ``spec.travel`` fully open. Returns the articulation.
    """
    import sapien

    builder = scene.create_articulation_builder()
    builder.initial_pose = initial_pose
    shell = builder.create_link_builder(parent=None)
    shell.set_name(f"{name}_shell")
    body_mat = sapien.render.RenderMaterial(base_color=list(spec.color), roughness=0.7)
    d, w, t, h = spec.depth, spec.width, spec.wall, spec.height

    def slab(link, half, centre, material):
        link.add_box_visual(pose=sapien.Pose(p=centre), half_size=half, material=material)
        link.add_box_collision(pose=sapien.Pose(p=centre), half_size=half)

    slab(shell, [d / 2, w / 2, t / 2], [d / 2, 0, t / 2], body_mat)  # floor
    slab(shell, [d / 2, w / 2, t / 2], [d / 2, 0, h - t / 2], body_mat)  # roof
    slab(shell, [t / 2, w / 2, h / 2], [d - t / 2, 0, h / 2], body_mat)  # back
    for side in (-1, 1):
        slab(shell, [d / 2, t / 2, h / 2], [d / 2, side * (w / 2 - t / 2), h / 2], body_mat)
    for i in range(1, len(spec.levels)):
        z = t + i * (spec.drawer_height + spec.gap) - spec.gap / 2
        slab(shell, [d / 2 - t, w / 2 - t, spec.gap / 2 - 0.001], [d / 2, 0, z], body_mat)

    front_mat = sapien.render.RenderMaterial(base_color=list(spec.front_color), roughness=0.6)
    handle_mat = sapien.render.RenderMaterial(base_color=list(spec.handle_color), roughness=0.3, metallic=0.6)
    dh = spec.drawer_height
    tray_w = w / 2 - 2 * t  # half width of the drawer
    tray_d = d / 2 - t  # half depth
    for level in spec.levels:
        z = spec.level_z(level)
        drawer = builder.create_link_builder(shell)
        drawer.set_name(f"{name}_{level}_drawer")
        # Drawer geometry about its frame: the front face at x = 0, the tray behind it (+x).
        slab(drawer, [t / 2, tray_w + t * 0.5, dh / 2 - 0.002], [t / 2, 0, 0], front_mat)  # front
        slab(drawer, [tray_d - t, tray_w, t / 2], [tray_d, 0, -dh / 2 + t], body_mat)  # bottom
        slab(drawer, [t / 2, tray_w, dh * 0.35], [2 * tray_d - t, 0, -dh * 0.1], body_mat)  # back
        for side in (-1, 1):
            slab(
                drawer, [tray_d - t, t / 2, dh * 0.35], [tray_d, side * (tray_w - t / 2), -dh * 0.1], body_mat
            )
        bar = spec.handle_standoff
        slab(drawer, [0.008, 0.008, 0.04], [-bar, 0, 0], handle_mat)  # the upright bar the gripper holds
        for side in (-1, 1):
            slab(drawer, [bar / 2, 0.006, 0.006], [-bar / 2, 0, side * 0.034], handle_mat)
        drawer.set_joint_name(f"{name}_{level}_joint")
        # The joint moves its child along the joint frame's x; turned 180 degrees about z, positive
        # positions pull the drawer out towards -x.
        drawer.set_joint_properties(
            type="prismatic",
            limits=[[0.0, spec.travel]],
            pose_in_parent=sapien.Pose(p=[0.0, 0.0, z], q=[0.0, 0.0, 0.0, 1.0]),
            pose_in_child=sapien.Pose(q=[0.0, 0.0, 0.0, 1.0]),
            friction=0.05,
            damping=3.0,
        )
    return builder.build(name=name, fix_root_link=True)
