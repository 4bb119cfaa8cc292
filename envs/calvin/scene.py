"""The play table as CALVIN builds it, made of PyBullet primitives.

Geometry, travel, forces and colours come from :mod:`envs.calvin.geometry` (CALVIN's numbers after
its 0.8 scaling, each with its source). The desk carries a drawer under its top, a cabinet behind
it whose front face is inclined at 60 degrees with an open shelf compartment and a sliding door
on that face, a switch that slides up that face and drives a yellow lightbulb on the cabinet top,
a button on the desk that toggles a green LED on the cabinet top, and red/blue/magenta blocks.
A floor body lies under it all. Everything is boxes, cylinders and spheres so that TinyRenderer
draws it fast.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pybullet as p

from envs.calvin import geometry as g
from envs.calvin.geometry import SceneGeometry

SceneConfig = SceneGeometry  # what differs between the four tables
SCENES: dict[str, SceneGeometry] = g.GEOMETRY
BLOCKS = ("red", "blue", "pink")

TABLE_Z = g.TABLE_Z
SHELF_TOP_Z = g.SHELF["z"] + g.SHELF["half"][2]
DRAWER_FLOOR_Z = g.DRAWER_FLOOR_Z
DRAWER_Y0 = g.DRAWER_Y0
BLOCK_HALF_HEIGHT = g.BLOCK_HALF_HEIGHT
BLOCK_HALF_EXTENTS = g.BLOCK_HALF_EXTENTS
BLOCK_COLORS = g.BLOCK_COLORS
DRAWER_TRAVEL = g.DRAWER_TRAVEL
BUTTON_TRAVEL = g.BUTTON_TRAVEL
SWITCH_TRAVEL = g.SWITCH_TRAVEL
BUTTON_Y = g.BUTTON["y"]
JOINT_FORCE = g.JOINT_FORCE

LED_OFF = g.LIGHT_OFF_RGBA
LED_ON = g.LED_ON_RGBA
BULB_OFF = g.LIGHT_OFF_RGBA
BULB_ON = g.BULB_ON_RGBA
SLOPE_ORN = p.getQuaternionFromEuler((g.SLOPE, 0.0, 0.0))
IDENTITY = (0.0, 0.0, 0.0, 1.0)


def get_scene(name: str) -> SceneGeometry:
    try:
        return SCENES[name]
    except KeyError:
        raise ValueError(f"unknown scene {name!r}; valid scenes: {', '.join(SCENES)}") from None


def door_handle_position(cfg: SceneGeometry, slider: float) -> np.ndarray:
    """World centre of the sliding door's grip bar at slider joint value ``slider``."""
    h = g.DOOR_HANDLE
    u = sum(h["u"]) / 2
    n = h["n"][1] - h["bar_n"] / 2
    return g.slope_point(cfg.door_x0 - slider, u, n)


def switch_position(cfg: SceneGeometry, q: float) -> np.ndarray:
    """World centre of the switch at joint value ``q`` (it runs up the 60 degree face)."""
    s = g.SWITCH
    return g.slope_point(cfg.switch_x, sum(s["u"]) / 2 + q, sum(s["n"]) / 2)


def drawer_handle_position(cfg: SceneGeometry, drawer: float) -> np.ndarray:
    """World centre of the drawer's handle bar at drawer joint value ``drawer``."""
    bar = g.DRAWER["handle_bar"]
    return np.array([cfg.drawer_x, sum(bar["y"]) / 2 - drawer, sum(bar["z"]) / 2])


@dataclass(frozen=True)
class Desk:
    """Body ids of a built desk.

    The static parts are plain rigid bodies (PyBullet handles their contacts with resting blocks
    several times faster than links of a multibody); the moving parts are links of one multibody.
    """

    table: int  # desk, cabinet and legs: contacts with it are named "table"
    shelf: int  # the shelf in the cabinet's compartment: "slider_shelf"
    floor: int  # the ground: "floor"
    parts: int  # multibody of slider, drawer, button, switch, led, lightbulb
    links: dict[str, int]  # part name -> link index in ``parts``


HIDDEN = None  # rgba of a shape that collides but is never seen (inside the desk): not drawn


class _ShapeList:
    """Compound shapes via createCollisionShapeArray / createVisualShapeArray."""

    def __init__(self, cid: int) -> None:
        self.cid = cid
        self.items: list[tuple[int, dict, tuple, tuple, tuple, bool]] = []

    def box(self, center, half, rgba, collide: bool = True, orn=IDENTITY) -> None:
        self.items.append((p.GEOM_BOX, {"halfExtents": half}, tuple(center), tuple(orn), rgba, collide))

    def span(self, lo, hi, rgba, collide: bool = True) -> None:
        """An axis-aligned box between corners ``lo`` and ``hi``."""
        lo, hi = np.asarray(lo, float), np.asarray(hi, float)
        self.box((lo + hi) / 2, tuple((hi - lo) / 2), rgba, collide)

    def slope_box(self, x, u, n, rgba, collide: bool = True, origin=(0.0, 0.0, 0.0)) -> None:
        """A box on the 60 degree face: ``x`` (centre, half), ``u`` and ``n`` (low, high)."""
        centre = g.slope_point(x[0], sum(u) / 2, sum(n) / 2) - np.asarray(origin)
        half = (x[1], (u[1] - u[0]) / 2, (n[1] - n[0]) / 2)
        self.box(centre, half, rgba, collide, orn=SLOPE_ORN)

    def cylinder(self, center, radius, length, rgba, collide: bool = True) -> None:
        kw = {"radius": radius, "length": length}
        self.items.append((p.GEOM_CYLINDER, kw, tuple(center), IDENTITY, rgba, collide))

    def sphere(self, center, radius, rgba, collide: bool = True) -> None:
        self.items.append((p.GEOM_SPHERE, {"radius": radius}, tuple(center), IDENTITY, rgba, collide))

    def build(self) -> tuple[int, int]:
        def arrays(items):
            return {
                "shapeTypes": [it[0] for it in items],
                "halfExtents": [it[1].get("halfExtents", (0, 0, 0)) for it in items],
                "radii": [it[1].get("radius", 0.0) for it in items],
                "lengths": [it[1].get("length", 0.0) for it in items],
            }

        col = [it for it in self.items if it[5]]
        col_id = -1
        if col:
            col_id = p.createCollisionShapeArray(
                **arrays(col),
                collisionFramePositions=[it[2] for it in col],
                collisionFrameOrientations=[it[3] for it in col],
                physicsClientId=self.cid,
            )
        vis = [it for it in self.items if it[4] is not HIDDEN]
        vis_id = -1
        if vis:
            vis_id = p.createVisualShapeArray(
                **arrays(vis),
                rgbaColors=[it[4] for it in vis],
                visualFramePositions=[it[2] for it in vis],
                visualFrameOrientations=[it[3] for it in vis],
                physicsClientId=self.cid,
            )
        return col_id, vis_id


MAX_SHAPES = 16  # PyBullet's createVisualShapeArray holds at most 16 shapes


def _static_body(cid: int, shapes: _ShapeList) -> int:
    """A fixed body; past 16 shapes the rest go on fixed links of it (still one body id)."""
    chunks = []
    for i in range(0, len(shapes.items), MAX_SHAPES):
        part = _ShapeList(cid)
        part.items = shapes.items[i : i + MAX_SHAPES]
        chunks.append(part.build())
    (col, vis), rest = chunks[0], chunks[1:]
    n = len(rest)
    return p.createMultiBody(
        baseMass=0,
        baseCollisionShapeIndex=col,
        baseVisualShapeIndex=vis,
        linkMasses=[0.0] * n,
        linkCollisionShapeIndices=[c for c, _ in rest],
        linkVisualShapeIndices=[v for _, v in rest],
        linkPositions=[(0, 0, 0)] * n,
        linkOrientations=[IDENTITY] * n,
        linkInertialFramePositions=[(0, 0, 0)] * n,
        linkInertialFrameOrientations=[IDENTITY] * n,
        linkParentIndices=[0] * n,
        linkJointTypes=[p.JOINT_FIXED] * n,
        linkJointAxis=[(0, 0, 1)] * n,
        useMaximalCoordinates=n == 0,
        physicsClientId=cid,
    )


def _desk_shapes(cid: int, cfg: SceneGeometry) -> _ShapeList:
    """Desk top, legs, drawer housing and the cabinet with its open compartment (base_link)."""
    wood = cfg.desk_rgba
    s = _ShapeList(cid)
    hx, (y0, y1) = g.DESK_HALF_X, g.DESK_Y
    top, bottom, front = g.TABLE_Z, g.DESK_SLAB_BOTTOM, g.FRONT_TOP_Y
    comp = g.COMPARTMENT
    c0, c1 = cfg.shelf_x - comp["half_x"], cfg.shelf_x + comp["half_x"]
    floor_z = comp["z"][0]
    s.span((-hx, y0, bottom), (hx, front, top), wood)  # desk top in front of the cabinet
    s.span((-hx, front, bottom), (hx, y1, floor_z), HIDDEN)  # under the cabinet and compartment
    for x, y in g.LEG_CENTRES:
        lx, ly = g.LEG_HALF
        s.span((x - lx, y - ly, 0.0), (x + lx, y + ly, bottom), wood)
    # drawer housing under the top, open where the drawer sits
    hz0, hz1 = g.HOUSING["z"]
    hy0, hy1 = g.HOUSING["y"]
    cav = g.DRAWER_CAVITY
    d0, d1 = cfg.drawer_x - cav["half_x"], cfg.drawer_x + cav["half_x"]
    s.span((-g.HOUSING["x"], hy0, hz0), (g.HOUSING["x"], hy1, cav["z"][0]), wood)
    s.span((-g.HOUSING["x"], hy0, cav["z"][0]), (d0, hy1, hz1), wood)
    s.span((d1, hy0, cav["z"][0]), (g.HOUSING["x"], hy1, hz1), wood)
    s.span((d0, cav["y"][1], cav["z"][0]), (d1, hy1, hz1), HIDDEN)  # behind the drawer
    # cabinet: back wall, roof, and the two solid sides of its 60 degree front beside the compartment
    cz = g.CABINET_TOP_Z
    s.span((-hx, g.CABINET_BACK_Y[0], floor_z), (hx, g.CABINET_BACK_Y[1], cz), wood)
    roof_y = front + (comp["z"][1] - top) / np.tan(g.SLOPE)
    s.span((-hx, roof_y, comp["z"][1]), (hx, g.CABINET_BACK_Y[0], cz), wood)
    slope_len = (cz - top) / np.sin(g.SLOPE)
    u_bottom = g.SLOPE_U @ (0.0, front, top)
    face = g.CABINET_FACE_N
    for a, b in ((-hx, c0), (c1, hx)):
        if b - a < 1e-6:
            continue
        half_x = (b - a) / 2
        mid = (a + b) / 2
        # a 4.6 cm slab under the inclined face, then the wedge's back behind it
        s.slope_box((mid, half_x), (u_bottom, u_bottom + slope_len), (face - 0.046, face), wood)
        s.span((a, 0.10, top), (b, g.CABINET_BACK_Y[0], 0.52), HIDDEN)
        s.span((a, 0.14, top), (b, g.CABINET_BACK_Y[0], cz), wood)
    # the button's raised ring and the switch's two grooves (dark strips on the face)
    ring = g.BUTTON_RING
    rz0, rz1 = ring["z"]
    s.cylinder((cfg.button_x, g.BUTTON["y"], (rz0 + rz1) / 2), ring["radius"], rz1 - rz0, wood)
    gx0, gx1 = g.SWITCH_GROOVES["dx"]
    for side in (-1.0, 1.0):
        x = cfg.switch_x + side * (gx0 + gx1) / 2
        s.slope_box((x, (gx1 - gx0) / 2), g.SWITCH_GROOVES["u"], (face, face + 0.002), g.HANDLE_RGBA, False)
    return s


def build_desk(cid: int, cfg: SceneGeometry) -> Desk:
    """Create the desk: static table, shelf and floor bodies and the multibody of the moving parts."""
    floor = _ShapeList(cid)
    floor.box((0, 0, -0.005), (3.0, 3.0, 0.005), g.FLOOR_RGBA)
    floor_body = _static_body(cid, floor)
    table_body = _static_body(cid, _desk_shapes(cid, cfg))

    shelf = _ShapeList(cid)
    shelf.box((cfg.shelf_x, g.SHELF["y"], g.SHELF["z"]), g.SHELF["half"], cfg.desk_rgba)
    shelf_body = _static_body(cid, shelf)

    # name, shapes, link position, link orientation, joint type, joint axis (link frame)
    links: list[tuple[str, _ShapeList, tuple, tuple, int, tuple]] = []

    door_origin = g.slope_point(cfg.door_x0, sum(g.DOOR["u"]) / 2, sum(g.DOOR["n"]) / 2)
    door = _ShapeList(cid)
    door.box((0, 0, 0), (g.DOOR["half_x"], (g.DOOR["u"][1] - g.DOOR["u"][0]) / 2, 0.01), cfg.drawer_rgba)
    h = g.DOOR_HANDLE
    du, dn = sum(g.DOOR["u"]) / 2, sum(g.DOOR["n"]) / 2

    def local(u0, u1, n0, n1):
        return ((u0 + u1) / 2 - du, (n0 + n1) / 2 - dn), ((u1 - u0) / 2, (n1 - n0) / 2)

    (cu, cn), (hu, hn) = local(h["u"][0], h["u"][1], h["n"][1] - h["bar_n"], h["n"][1])
    door.box((0, cu, cn), (h["half_x"], hu, hn), g.HANDLE_RGBA)  # grip bar
    for u0, u1 in ((h["u"][0], h["u"][0] + h["post_u"]), (h["u"][1] - h["post_u"], h["u"][1])):
        (cu, cn), (hu, hn) = local(u0, u1, h["n"][0], h["n"][1] - h["bar_n"])
        door.box((0, cu, cn), (h["half_x"], hu, hn), g.HANDLE_RGBA)  # posts
    links.append(("slider", door, tuple(door_origin), SLOPE_ORN, p.JOINT_PRISMATIC, (-1, 0, 0)))

    dr = g.DRAWER
    dx, dy = cfg.drawer_x, g.DRAWER_Y0
    drawer = _ShapeList(cid)
    dz = sum(dr["floor_z"]) / 2  # link origin: centre of the floor

    def rel(lo, hi):
        return (np.asarray(lo) - (dx, dy, dz), np.asarray(hi) - (dx, dy, dz))

    bx, w = dr["box_half_x"], dr["wall"]
    (by0, by1), (fz0, fz1) = dr["y"], dr["floor_z"]
    top = g.DRAWER_CAVITY["z"][1]
    pieces = [
        ((dx - bx, by0, fz0), (dx + bx, by1, fz1)),  # floor
        ((dx - bx, by0, fz1), (dx - bx + w, by1, top)),  # side walls
        ((dx + bx - w, by0, fz1), (dx + bx, by1, top)),
        ((dx - bx + w, by1 - w, fz1), (dx + bx - w, by1, top)),  # back wall
        (
            (dx - dr["panel"]["half_x"], dr["panel"]["y"][0], dr["panel"]["z"][0]),
            (dx + dr["panel"]["half_x"], dr["panel"]["y"][1], dr["panel"]["z"][1]),
        ),  # front panel
    ]
    for lo, hi in pieces:
        drawer.span(*rel(lo, hi), cfg.drawer_rgba)
    bar, posts = dr["handle_bar"], dr["handle_posts"]
    drawer.span(
        *rel((dx - bar["half_x"], bar["y"][0], bar["z"][0]), (dx + bar["half_x"], bar["y"][1], bar["z"][1])),
        g.HANDLE_RGBA,
    )
    for side in (-1.0, 1.0):
        xs = sorted((dx + side * posts["dx"][0], dx + side * posts["dx"][1]))
        drawer.span(
            *rel((xs[0], posts["y"][0], posts["z"][0]), (xs[1], posts["y"][1], posts["z"][1])), g.HANDLE_RGBA
        )
    links.append(("drawer", drawer, (dx, dy, dz), IDENTITY, p.JOINT_PRISMATIC, (0, -1, 0)))

    button = _ShapeList(cid)
    bz0, bz1 = g.BUTTON["z"]
    button.cylinder((0, 0, 0), g.BUTTON["radius"], bz1 - bz0, g.BUTTON_RGBA)
    links.append(
        (
            "button",
            button,
            (cfg.button_x, g.BUTTON["y"], (bz0 + bz1) / 2),
            IDENTITY,
            p.JOINT_PRISMATIC,
            (0, 0, -1),
        )
    )

    sw = g.SWITCH
    switch = _ShapeList(cid)
    switch.box(
        (0, 0, 0), (sw["half_x"], (sw["u"][1] - sw["u"][0]) / 2, (sw["n"][1] - sw["n"][0]) / 2), g.SWITCH_RGBA
    )
    links.append(
        ("switch", switch, tuple(switch_position(cfg, 0.0)), SLOPE_ORN, p.JOINT_PRISMATIC, (0, 1, 0))
    )

    led = _ShapeList(cid)
    led.box((0, 0, 0), g.LED["half"], LED_OFF)
    links.append(("led", led, (cfg.led_x, g.LED["y"], g.LED["z"]), IDENTITY, p.JOINT_FIXED, (0, 0, 1)))

    bulb = _ShapeList(cid)
    b = g.BULB
    bulb.sphere((0, 0, 0), b["radius"], BULB_OFF)
    base_len = b["base_z"][1] - b["base_z"][0]
    bulb.cylinder((0, 0, sum(b["base_z"]) / 2 - b["z"]), b["base_radius"], base_len, BULB_OFF)
    links.append(("lightbulb", bulb, (cfg.bulb_x, b["y"], b["z"]), IDENTITY, p.JOINT_FIXED, (0, 0, 1)))

    built = [shapes.build() for _, shapes, *_ in links]
    n = len(links)
    desk = p.createMultiBody(
        baseMass=0,
        baseCollisionShapeIndex=-1,
        baseVisualShapeIndex=-1,
        basePosition=(0, 0, 0),
        linkMasses=[g.PART_MASS.get(lk[0], 0.0) for lk in links],
        linkCollisionShapeIndices=[c for c, _ in built],
        linkVisualShapeIndices=[v for _, v in built],
        linkPositions=[lk[2] for lk in links],
        linkOrientations=[lk[3] for lk in links],
        linkInertialFramePositions=[(0, 0, 0)] * n,
        linkInertialFrameOrientations=[(0, 0, 0, 1)] * n,
        linkParentIndices=[0] * n,
        linkJointTypes=[lk[4] for lk in links],
        linkJointAxis=[lk[5] for lk in links],
        useMaximalCoordinates=False,
        physicsClientId=cid,
    )
    names = {name: i for i, (name, *_) in enumerate(links)}
    limits = {
        "slider": cfg.slider_travel,
        "drawer": DRAWER_TRAVEL,
        "button": BUTTON_TRAVEL,
        "switch": SWITCH_TRAVEL,
    }
    for name, upper in limits.items():
        p.changeDynamics(desk, names[name], jointLowerLimit=0.0, jointUpperLimit=upper, physicsClientId=cid)
    table_links = range(-1, p.getNumJoints(table_body, physicsClientId=cid))
    for link in names.values():  # the parts are mounted in the desk: no contacts between them and it
        for body, body_link in [(table_body, t) for t in table_links] + [(shelf_body, -1)]:
            p.setCollisionFilterPair(body, desk, body_link, link, enableCollision=0, physicsClientId=cid)
    return Desk(table=table_body, shelf=shelf_body, floor=floor_body, parts=desk, links=names)


def build_block(cid: int, color: str, size: str, position, yaw: float) -> int:
    half = BLOCK_HALF_EXTENTS[size]
    col = p.createCollisionShape(p.GEOM_BOX, halfExtents=half, physicsClientId=cid)
    vis = p.createVisualShape(
        p.GEOM_BOX, halfExtents=half, rgbaColor=BLOCK_COLORS[color], physicsClientId=cid
    )
    body = p.createMultiBody(
        baseMass=g.BLOCK_MASS,
        baseCollisionShapeIndex=col,
        baseVisualShapeIndex=vis,
        basePosition=position,
        baseOrientation=p.getQuaternionFromEuler((0, 0, yaw)),
        useMaximalCoordinates=True,  # a free rigid body: cheaper contacts than a one-link multibody
        physicsClientId=cid,
    )
    p.changeDynamics(
        body,
        -1,
        lateralFriction=g.BLOCK_FRICTION,
        spinningFriction=g.BLOCK_SPINNING_FRICTION,
        physicsClientId=cid,
    )
    return body


def symbolic_block_positions(state: dict, rng: np.random.Generator, cfg: SceneGeometry) -> dict[str, tuple]:
    """Physical (x, y, z, yaw) for each block of a symbolic start state.

    CALVIN's spots (``get_env_state_for_initial_condition``; see :mod:`envs.calvin.geometry` for
    B and C); table spots are shuffled by ``rng``; yaws are drawn around pi/2 +- pi/8 as in CALVIN.
    """
    spots = list(cfg.table_spots)
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
        elif where in cfg.slider_spots:
            x, y = cfg.slider_spots[where]
            z = SHELF_TOP_Z + BLOCK_HALF_HEIGHT
        elif where == "drawer":
            open_q = DRAWER_TRAVEL if state.get("drawer") == "open" else 0.0
            x = cfg.drawer_x + (-0.06 + 0.12 * drawer_i)
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
