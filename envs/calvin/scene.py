"""The play table: desk, articulated parts, lights and blocks, built from primitives in PyBullet.

Geometry follows CALVIN's play table (see shared/reference/calvin.md): a desk with a drawer, a
sliding door over a two-compartment shelf, a button that toggles a green LED, a switch that drives
a yellow lightbulb, and red/blue/pink blocks. The four scenes A-D differ in block sizes, desk colour
and the x position of button, switch, slider and drawer, as in CALVIN's table. Everything is made
of boxes, cylinders and spheres so that TinyRenderer draws it fast.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pybullet as p

TABLE_Z = 0.435  # desk top surface height
SHELF_TOP_Z = 0.439  # top of the slider compartment floor
DRAWER_FLOOR_Z = 0.33  # top of the drawer floor
BLOCK_HALF_HEIGHT = 0.025
BLOCK_MASS = 1.0
BLOCK_FRICTION = 0.7

BLOCK_HALF_EXTENTS = {
    "small": (0.025, 0.025, 0.025),
    "middle": (0.035, 0.025, 0.025),
    "big": (0.05, 0.025, 0.025),
}
BLOCK_COLORS = {"red": (0.85, 0.1, 0.1, 1), "blue": (0.1, 0.25, 0.85, 1), "pink": (0.95, 0.45, 0.75, 1)}
BLOCKS = ("red", "blue", "pink")

# Joint ranges of the articulated parts (metres).
SLIDER_TRAVEL = 0.28  # 0 = door right, 0.28 = door left
DRAWER_TRAVEL = 0.22  # 0 = closed, 0.22 = open
BUTTON_TRAVEL = 0.02  # pressed depth; the LED toggles when a press passes the midpoint
SWITCH_TRAVEL = 0.088  # 0 = down (bulb off), 0.088 = up (bulb on); midpoint decides the bulb

# Symbolic block positions (x, y) for a chain's start state; table spots are shuffled per state.
TABLE_SPOTS = ((0.05, -0.12), (0.23, -0.12))
SLIDER_SPOTS = {"slider_left": (-0.24, 0.092), "slider_right": (0.07, 0.092)}

# Fixed y / z of the articulated parts (their x comes from the scene).
BUTTON_Y = -0.035
SWITCH_Y = -0.03  # centre of the switch handle (it spans y -0.06..0)
SWITCH_HANDLE_Z0 = 0.47  # handle centre height with the switch down
DOOR_Y = 0.012
DOOR_Z = 0.48
DOOR_KNOB_Z = 0.54  # knob centre on top of the door, the expert pushes it sideways
DRAWER_Y0 = -0.095  # tray centre y with the drawer closed
DRAWER_Z = 0.355
DRAWER_HANDLE_DY = -0.16  # handle post relative to the tray centre
DRAWER_HANDLE_DZ = 0.0


@dataclass(frozen=True)
class SceneConfig:
    """What differs between the four CALVIN scenes."""

    name: str
    block_sizes: dict[str, str]
    button_x: float
    switch_x: float
    slider_x: float
    drawer_x: float
    desk_rgba: tuple[float, float, float, float]
    drawer_rgba: tuple[float, float, float, float]

    @property
    def door_x0(self) -> float:
        """Door centre x with the slider joint at 0 (door right)."""
        return self.slider_x + 0.18


SCENES: dict[str, SceneConfig] = {
    "A": SceneConfig(
        "A",
        {"pink": "small", "blue": "big", "red": "middle"},
        -0.35,
        0.375,
        -0.125,
        0.125,
        (0.42, 0.2, 0.14, 1),
        (0.42, 0.2, 0.14, 1),
    ),
    "B": SceneConfig(
        "B",
        {"red": "small", "blue": "big", "pink": "middle"},
        0.35,
        -0.40,
        0.11,
        0.225,
        (0.86, 0.74, 0.56, 1),
        (0.86, 0.74, 0.56, 1),
    ),
    "C": SceneConfig(
        "C",
        {"blue": "small", "red": "big", "pink": "middle"},
        -0.15,
        -0.40,
        0.075,
        0.125,
        (0.66, 0.5, 0.33, 1),
        (0.3, 0.2, 0.13, 1),
    ),
    "D": SceneConfig(
        "D",
        {"red": "middle", "blue": "small", "pink": "big"},
        -0.15,
        0.375,
        -0.125,
        0.225,
        (0.8, 0.66, 0.47, 1),
        (0.8, 0.66, 0.47, 1),
    ),
}


def get_scene(name: str) -> SceneConfig:
    try:
        return SCENES[name]
    except KeyError:
        raise ValueError(f"unknown scene {name!r}; valid scenes: {', '.join(SCENES)}") from None


@dataclass(frozen=True)
class Desk:
    """Body ids of a built desk.

    The static parts are plain rigid bodies (PyBullet handles their contacts with resting blocks
    several times faster than links of a multibody); the moving parts are links of one multibody.
    """

    table: int  # desk top, legs, cabinet and switch rail: contacts with it are named "table"
    shelf: int  # floor of the two slider compartments: "slider_shelf"
    parts: int  # multibody of slider, drawer, button, switch, led, lightbulb
    links: dict[str, int]  # part name -> link index in ``parts``


class _ShapeList:
    """Compound shapes via createCollisionShapeArray / createVisualShapeArray."""

    def __init__(self, cid: int) -> None:
        self.cid = cid
        self.items: list[tuple[int, dict, tuple, tuple, bool]] = []

    def box(self, center, half, rgba, collide: bool = True) -> None:
        self.items.append((p.GEOM_BOX, {"halfExtents": half}, center, rgba, collide))

    def cylinder(self, center, radius, length, rgba, collide: bool = True) -> None:
        self.items.append((p.GEOM_CYLINDER, {"radius": radius, "length": length}, center, rgba, collide))

    def sphere(self, center, radius, rgba, collide: bool = True) -> None:
        self.items.append((p.GEOM_SPHERE, {"radius": radius}, center, rgba, collide))

    def build(self) -> tuple[int, int]:
        col = [it for it in self.items if it[4]]
        col_id = -1
        if col:
            col_id = p.createCollisionShapeArray(
                shapeTypes=[g for g, *_ in col],
                halfExtents=[kw.get("halfExtents", (0, 0, 0)) for _, kw, *_ in col],
                radii=[kw.get("radius", 0.0) for _, kw, *_ in col],
                lengths=[kw.get("length", 0.0) for _, kw, *_ in col],
                collisionFramePositions=[c for _, _, c, _, _ in col],
                physicsClientId=self.cid,
            )
        vis_id = p.createVisualShapeArray(
            shapeTypes=[g for g, *_ in self.items],
            halfExtents=[kw.get("halfExtents", (0, 0, 0)) for _, kw, *_ in self.items],
            radii=[kw.get("radius", 0.0) for _, kw, *_ in self.items],
            lengths=[kw.get("length", 0.0) for _, kw, *_ in self.items],
            rgbaColors=[c for _, _, _, c, _ in self.items],
            visualFramePositions=[c for _, _, c, _, _ in self.items],
            physicsClientId=self.cid,
        )
        return col_id, vis_id


GREY = (0.55, 0.55, 0.58, 1)
DARK = (0.2, 0.2, 0.22, 1)
WHITE = (0.92, 0.92, 0.9, 1)
LED_OFF = (0.1, 0.3, 0.1, 1)
LED_ON = (0.1, 1.0, 0.1, 1)
BULB_OFF = (0.45, 0.45, 0.3, 1)
BULB_ON = (1.0, 0.95, 0.2, 1)


def _static_body(cid: int, shapes: _ShapeList) -> int:
    col, vis = shapes.build()
    return p.createMultiBody(
        baseMass=0,
        baseCollisionShapeIndex=col,
        baseVisualShapeIndex=vis,
        useMaximalCoordinates=True,
        physicsClientId=cid,
    )


def build_desk(cid: int, cfg: SceneConfig) -> Desk:
    """Create the desk: static table and shelf bodies and the multibody of the moving parts."""
    base = _ShapeList(cid)
    base.box((0, 0.05, TABLE_Z - 0.015), (0.6, 0.25, 0.015), cfg.desk_rgba)  # top slab
    for x in (-0.56, 0.56):
        for y in (-0.16, 0.26):
            base.box((x, y, (TABLE_Z - 0.03) / 2), (0.03, 0.03, (TABLE_Z - 0.03) / 2), cfg.desk_rgba)
    # Cabinet behind the shelf carrying the lightbulb; shelf compartments in front are open above.
    base.box((-0.05, 0.235, TABLE_Z + 0.1), (0.45, 0.065, 0.1), cfg.desk_rgba)
    # Switch rail (the switch handle slides up and down in front of it).
    base.box((cfg.switch_x, SWITCH_Y + 0.045, TABLE_Z + 0.07), (0.03, 0.01, 0.07), GREY)
    # Button housing ring (visual only: the button cap itself collides).
    base.cylinder((cfg.button_x, BUTTON_Y, TABLE_Z + 0.004), 0.03, 0.008, DARK, collide=False)

    links: list[tuple[str, _ShapeList, tuple, int, tuple]] = []  # name, shapes, position, joint type, axis

    shelf = _ShapeList(cid)
    shelf.box((-0.085, 0.095, SHELF_TOP_Z - 0.002), (0.28, 0.075, 0.002), GREY)

    door = _ShapeList(cid)
    door.box((0, 0, 0), (0.14, 0.006, 0.04), WHITE)
    door.box((0, 0, DOOR_KNOB_Z - DOOR_Z), (0.012, 0.012, 0.02), DARK)  # knob on top
    links.append(("slider", door, (cfg.door_x0, DOOR_Y, DOOR_Z), p.JOINT_PRISMATIC, (-1, 0, 0)))

    drawer = _ShapeList(cid)
    floor_z = DRAWER_FLOOR_Z - 0.005 - DRAWER_Z
    wall_h = 0.0325
    wall_z = DRAWER_FLOOR_Z + wall_h - DRAWER_Z
    drawer.box((0, 0, floor_z), (0.1, 0.1, 0.005), cfg.drawer_rgba)
    drawer.box((0.095, 0, wall_z), (0.005, 0.1, wall_h), cfg.drawer_rgba)
    drawer.box((-0.095, 0, wall_z), (0.005, 0.1, wall_h), cfg.drawer_rgba)
    drawer.box((0, 0.095, wall_z), (0.1, 0.005, wall_h), cfg.drawer_rgba)
    drawer.box((0, -0.1, 0.0075), (0.11, 0.006, 0.04), cfg.drawer_rgba)  # front panel
    drawer.box(
        (0, (DRAWER_HANDLE_DY - 0.1) / 2, DRAWER_HANDLE_DZ - 0.024),
        (0.008, (0.1 + DRAWER_HANDLE_DY) / -2, 0.006),
        DARK,
    )  # handle arm
    drawer.box((0, DRAWER_HANDLE_DY, DRAWER_HANDLE_DZ), (0.008, 0.008, 0.03), DARK)  # handle post
    links.append(("drawer", drawer, (cfg.drawer_x, DRAWER_Y0, DRAWER_Z), p.JOINT_PRISMATIC, (0, -1, 0)))

    button = _ShapeList(cid)
    button.cylinder((0, 0, 0), 0.022, 0.02, (0.15, 0.15, 0.15, 1))
    links.append(("button", button, (cfg.button_x, BUTTON_Y, TABLE_Z + 0.012), p.JOINT_PRISMATIC, (0, 0, -1)))

    switch = _ShapeList(cid)
    switch.box((0, 0, 0), (0.02, 0.03, 0.008), (0.15, 0.15, 0.15, 1))
    links.append(("switch", switch, (cfg.switch_x, SWITCH_Y, SWITCH_HANDLE_Z0), p.JOINT_PRISMATIC, (0, 0, 1)))

    led = _ShapeList(cid)
    led.box((0, 0, 0), (0.012, 0.012, 0.004), LED_OFF, collide=False)
    links.append(("led", led, (cfg.button_x + 0.055, BUTTON_Y, TABLE_Z + 0.004), p.JOINT_FIXED, (0, 0, 1)))

    bulb = _ShapeList(cid)
    bulb.sphere((0, 0, 0), 0.035, BULB_OFF, collide=False)
    bulb.cylinder((0, 0, -0.04), 0.015, 0.03, GREY, collide=False)
    links.append(("lightbulb", bulb, (cfg.switch_x * 0.8, 0.235, TABLE_Z + 0.25), p.JOINT_FIXED, (0, 0, 1)))

    table_body = _static_body(cid, base)
    shelf_body = _static_body(cid, shelf)
    built = [shapes.build() for _, shapes, *_ in links]
    n = len(links)
    desk = p.createMultiBody(
        baseMass=0,
        baseCollisionShapeIndex=-1,
        baseVisualShapeIndex=-1,
        basePosition=(0, 0, 0),
        linkMasses=[0.0 if jt == p.JOINT_FIXED else 0.5 for _, _, _, jt, _ in links],
        linkCollisionShapeIndices=[c for c, _ in built],
        linkVisualShapeIndices=[v for _, v in built],
        linkPositions=[pos for _, _, pos, _, _ in links],
        linkOrientations=[(0, 0, 0, 1)] * n,
        linkInertialFramePositions=[(0, 0, 0)] * n,
        linkInertialFrameOrientations=[(0, 0, 0, 1)] * n,
        linkParentIndices=[0] * n,
        linkJointTypes=[jt for _, _, _, jt, _ in links],
        linkJointAxis=[ax for *_, ax in links],
        useMaximalCoordinates=False,
        physicsClientId=cid,
    )
    names = {name: i for i, (name, *_) in enumerate(links)}
    limits = {
        "slider": SLIDER_TRAVEL,
        "drawer": DRAWER_TRAVEL,
        "button": BUTTON_TRAVEL,
        "switch": SWITCH_TRAVEL,
    }
    for name, upper in limits.items():
        p.changeDynamics(desk, names[name], jointLowerLimit=0.0, jointUpperLimit=upper, physicsClientId=cid)
    for link in names.values():  # the parts are mounted in the desk: the button sinks into the top
        p.setCollisionFilterPair(table_body, desk, -1, link, enableCollision=0, physicsClientId=cid)
    return Desk(table=table_body, shelf=shelf_body, parts=desk, links=names)


def build_block(cid: int, color: str, size: str, position, yaw: float) -> int:
    half = BLOCK_HALF_EXTENTS[size]
    col = p.createCollisionShape(p.GEOM_BOX, halfExtents=half, physicsClientId=cid)
    vis = p.createVisualShape(
        p.GEOM_BOX, halfExtents=half, rgbaColor=BLOCK_COLORS[color], physicsClientId=cid
    )
    body = p.createMultiBody(
        baseMass=BLOCK_MASS,
        baseCollisionShapeIndex=col,
        baseVisualShapeIndex=vis,
        basePosition=position,
        baseOrientation=p.getQuaternionFromEuler((0, 0, yaw)),
        useMaximalCoordinates=True,  # a free rigid body: cheaper contacts than a one-link multibody
        physicsClientId=cid,
    )
    p.changeDynamics(body, -1, lateralFriction=BLOCK_FRICTION, physicsClientId=cid)
    return body


def symbolic_block_positions(state: dict, rng: np.random.Generator, cfg: SceneConfig) -> dict[str, tuple]:
    """Physical (x, y, z, yaw) for each block of a symbolic start state.

    Table spots are shuffled by ``rng``; yaws are drawn around pi/2 +- pi/8 as in CALVIN.
    """
    spots = list(TABLE_SPOTS)
    order = rng.permutation(len(spots))
    spots = [spots[i] for i in order]
    out: dict[str, tuple] = {}
    table_i = 0
    drawer_i = 0
    for color in BLOCKS:
        where = state.get(f"{color}_block", "table")
        yaw = float(rng.uniform(np.pi / 2 - np.pi / 8, np.pi / 2 + np.pi / 8))
        if where == "table":
            if table_i >= len(spots):
                raise ValueError(f"symbolic state puts more than {len(spots)} blocks on the table: {state}")
            x, y = spots[table_i]
            table_i += 1
            z = TABLE_Z + BLOCK_HALF_HEIGHT
        elif where in SLIDER_SPOTS:
            x, y = SLIDER_SPOTS[where]
            z = SHELF_TOP_Z + BLOCK_HALF_HEIGHT
        elif where == "drawer":
            open_q = DRAWER_TRAVEL if state.get("drawer") == "open" else 0.0
            x = cfg.drawer_x + (-0.04 + 0.08 * drawer_i)
            y = DRAWER_Y0 - open_q
            drawer_i += 1
            z = DRAWER_FLOOR_Z + BLOCK_HALF_HEIGHT
        else:
            raise ValueError(
                f"cannot build a physical start with {color}_block={where!r}; "
                "valid start locations: table, slider_left, slider_right, drawer"
            )
        out[color] = (x, y, z + 0.001, yaw)
    return out
