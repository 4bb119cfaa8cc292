"""CALVIN's play-table geometry in one place, as our scene, robot and cameras use it.

Every number is read from CALVIN's env (mees/calvin_env, commit 797142c) and given in world
coordinates *after* the 0.8 global scaling that CALVIN applies when it loads the play table and
the blocks (``global_scaling: 0.8`` in ``conf/scene/calvin_scene_{A,B,C,D}.yaml``, used by
``calvin_env/scene/objects/{fixed,movable}_object.py``). Sources, by group:

- desk body, cabinet, compartment, drawer cavity: ``data/calvin_table_?/meshes/base_link.obj``
- joint frames, axes and travel: ``data/calvin_table_?/urdf/calvin_table_?.urdf`` (``base__slide``,
  ``base__drawer``, ``base__button``, ``base__switch``, ``base__led``, ``base__light``,
  ``base__plank``); PyBullet scales prismatic limits with the model (0.35 -> 0.28)
- part shapes: ``meshes/{drawer,slide,switch,plank}_link.obj`` and ``{button,led,light}_link.STL``
- joint forces: ``MAX_FORCE = 4`` in ``calvin_env/scene/objects/{door,button,switch}.py``
- blocks: ``data/blocks/block_{red,blue,pink}_{small,middle,big}.urdf``
- colours: the URDF materials and the textures' median colours (``data/calvin_table_?/textures``)
- robot: ``conf/scene/calvin_scene_?.yaml`` (base pose, initial joints), ``conf/robot/panda.yaml``,
  ``panda_longer_finger.yaml`` and ``data/franka_panda/panda_longer_finger.urdf`` (tcp and
  gripper_cam frames, finger length); ``calvin_env/robot/robot.py`` (the base cylinder)
- cameras: ``conf/cameras/cameras/{static,gripper}.yaml``, ``calvin_env/camera/*.py``
- symbolic start positions: CALVIN's ``get_env_state_for_initial_condition``
  (calvin_models/calvin_agent/evaluation/utils.py)

The cabinet's front face and the sliding door lie on a plane inclined at 60 degrees; the switch
runs up that plane. Shapes on it are given in the *slope frame*: x as in the world, ``u`` up the
slope (0, cos 60, sin 60), ``n`` out of the face (0, -sin 60, cos 60).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

GLOBAL_SCALING = 0.8  # calvin_scene_?.yaml
SLOPE = np.pi / 3  # base__slide / base__switch joint frames: rpy (1.0472, 0, 0) and (2.618, 0, 0)
SLOPE_U = np.array([0.0, np.cos(SLOPE), np.sin(SLOPE)])
SLOPE_N = np.array([0.0, -np.sin(SLOPE), np.cos(SLOPE)])


def slope_point(x: float, u: float, n: float) -> np.ndarray:
    """World point of slope-frame coordinates (see module doc)."""
    return np.array([x, 0.0, 0.0]) + u * SLOPE_U + n * SLOPE_N


# --- desk (base_link.obj) ------------------------------------------------------------------
DESK_HALF_X = 0.44
DESK_Y = (-0.18, 0.18)
TABLE_Z = 0.44  # desk top
DESK_SLAB_BOTTOM = 0.40
FRONT_TOP_Y = 0.02  # the flat desk top ends here; the cabinet rises behind it
LEG_HALF = (0.02, 0.016)  # legs at the four corners, x +-0.42, y +-0.164, z 0..0.4
LEG_CENTRES = ((-0.42, -0.164), (-0.42, 0.164), (0.42, -0.164), (0.42, 0.164))
HOUSING = {"x": 0.42, "y": (-0.16, 0.16), "z": (0.30, 0.40)}  # under the top, holds the drawer
DRAWER_CAVITY = {"half_x": 0.2, "y": (-0.16, 0.06), "z": (0.32, 0.40)}
CABINET_TOP_Z = 0.648
CABINET_BACK_Y = (0.16, 0.18)
CABINET_FACE_N = 0.2027  # slope-frame n of the cabinet's front face
COMPARTMENT = {"half_x": 0.26, "y": (0.02, 0.16), "z": (0.42, 0.628)}  # open shelf behind the door
BUTTON_RING = {"radius": 0.04, "z": (0.44, 0.46)}  # raised ring the button sits in
SWITCH_GROOVES = {"dx": (0.04, 0.06), "u": (0.456, 0.567)}  # two slots beside the switch

# --- parts ---------------------------------------------------------------------------------
SHELF = {"half": (0.26, 0.07, 0.01), "y": 0.09, "z": 0.43}  # plank_link; top at 0.44
DOOR = {"half_x": 0.14, "u": (0.391, 0.611), "n": (0.203, 0.223)}  # slide_link plate; x from the joint
DOOR_HANDLE = {"half_x": 0.016, "u": (0.421, 0.581), "n": (0.223, 0.283), "bar_n": 0.02, "post_u": 0.02}
DRAWER = {
    "panel": {"half_x": 0.22, "y": (-0.18, -0.16), "z": (0.30, 0.40)},
    "box_half_x": 0.2,
    "y": (-0.16, 0.06),
    "floor_z": (0.32, 0.34),
    "wall": 0.02,
    "handle_bar": {"half_x": 0.112, "y": (-0.26, -0.24), "z": (0.348, 0.372)},
    "handle_posts": {"dx": (0.10, 0.12), "y": (-0.252, -0.18), "z": (0.345, 0.375)},
}
DRAWER_FLOOR_Z = 0.34  # inner floor
DRAWER_Y0 = -0.05  # box centre y, drawer closed
BUTTON = {"radius": 0.032, "z": (0.46, 0.484), "y": -0.12}
SWITCH = {"half_x": 0.055, "u": (0.451, 0.483), "n": (0.195, 0.259)}  # at joint 0
LED = {"half": (0.08, 0.02, 0.008), "y": 0.16, "z": 0.6558}
BULB = {"radius": 0.026, "z": 0.674, "base_radius": 0.02, "base_z": (0.648, 0.66), "y": 0.16}

# travel (metres, after scaling) and the joints' friction / button spring force
DRAWER_TRAVEL = 0.22
BUTTON_TRAVEL = 0.02
SWITCH_TRAVEL = 0.088
JOINT_FORCE = 4.0
PART_MASS = {"slider": 1.5435, "drawer": 4.2313, "button": 0.1538, "switch": 0.2388}  # URDF <mass>

# --- blocks --------------------------------------------------------------------------------
BLOCK_HALF_EXTENTS = {
    "small": (0.02, 0.02, 0.02),
    "middle": (0.028, 0.02, 0.02),
    "big": (0.04, 0.02, 0.02),
}
BLOCK_HALF_HEIGHT = 0.02
BLOCK_MASS = 1.0
BLOCK_FRICTION = 0.7
BLOCK_SPINNING_FRICTION = 0.001
BLOCK_COLORS = {"red": (1.0, 0.0, 0.0, 1.0), "blue": (0.0, 0.0, 1.0, 1.0), "pink": (1.0, 0.0, 1.0, 1.0)}

# symbolic start positions (x, y) of get_env_state_for_initial_condition, z = 0.46 (table) / 0.461
TABLE_SPOTS_D = ((0.05, -0.12), (0.23, -0.12))
SLIDER_SPOTS_D = {"slider_left": (-0.2409, 0.0924), "slider_right": (0.0703, 0.0924)}
SLIDER_LEFT_STATE = 0.28  # scene_obs[0] of a "left" slider

# --- colours -------------------------------------------------------------------------------
HANDLE_RGBA = (0.4, 0.4, 0.4, 1.0)  # the textures' grey handles (101/255)
SWITCH_RGBA = (0.4, 0.4, 0.4, 1.0)
BUTTON_RGBA = (0.0, 0.0, 0.0, 1.0)
LIGHT_OFF_RGBA = (1.0, 1.0, 1.0, 1.0)  # calvin_env/scene/objects/light.py
LED_ON_RGBA = (0.0, 1.0, 0.0, 1.0)
BULB_ON_RGBA = (1.0, 1.0, 0.0, 1.0)
FLOOR_RGBA = (0.86, 0.86, 0.88, 1.0)
WOOD = {  # median texture colours
    "dark_wood_A": (121 / 255, 70 / 255, 46 / 255, 1.0),
    "light_wood": (244 / 255, 196 / 255, 140 / 255, 1.0),
    "wood": (160 / 255, 109 / 255, 64 / 255, 1.0),
    "dark_wood_D": (158 / 255, 119 / 255, 79 / 255, 1.0),
}


@dataclass(frozen=True)
class SceneGeometry:
    """What differs between CALVIN's four play tables (world x after scaling)."""

    name: str
    block_sizes: dict[str, str]
    button_x: float
    switch_x: float
    slider_x: float  # base__slide frame x: the door spans slider_x .. slider_x + 0.28 at joint 0
    drawer_x: float
    shelf_x: float  # base__plank frame x: centre of the shelf and its compartment
    led_x: float
    bulb_x: float
    slider_travel: float
    desk_rgba: tuple[float, float, float, float]
    drawer_rgba: tuple[float, float, float, float]  # drawer and sliding door
    table_spots: tuple[tuple[float, float], ...]
    slider_spots: dict[str, tuple[float, float]]

    @property
    def door_x0(self) -> float:
        """Door centre x with the slider joint at 0 (door right)."""
        return self.slider_x + DOOR["half_x"]

    @property
    def slider_left_state(self) -> float:
        """Joint value of a symbolic 'left' slider (CALVIN's 0.28, within this table's travel)."""
        return min(SLIDER_LEFT_STATE, self.slider_travel)


def _shifted(spots, dx: float):
    return tuple((x + dx, y) for x, y in spots)


# B and C carry the shelf 0.18 to the right of A and D; their slider spots move with it. B's
# button sits where D's second table spot is, so B's table spots move left by the same amount.
_SHELF_SHIFT = 0.18
GEOMETRY: dict[str, SceneGeometry] = {
    "A": SceneGeometry(
        "A",
        {"pink": "small", "blue": "big", "red": "middle"},
        button_x=-0.28,
        switch_x=0.30,
        slider_x=-0.10,
        drawer_x=0.10,
        shelf_x=-0.10,
        led_x=-0.28,
        bulb_x=0.30,
        slider_travel=0.28,
        desk_rgba=WOOD["dark_wood_A"],
        drawer_rgba=WOOD["dark_wood_A"],
        table_spots=TABLE_SPOTS_D,
        slider_spots=SLIDER_SPOTS_D,
    ),
    "B": SceneGeometry(
        "B",
        {"red": "small", "blue": "big", "pink": "middle"},
        button_x=0.28,
        switch_x=-0.32,
        slider_x=0.088,
        drawer_x=0.18,
        shelf_x=0.08,
        led_x=0.28,
        bulb_x=-0.32,
        slider_travel=0.304,
        desk_rgba=WOOD["light_wood"],
        drawer_rgba=WOOD["light_wood"],
        table_spots=_shifted(TABLE_SPOTS_D, -_SHELF_SHIFT),
        slider_spots={k: (x + _SHELF_SHIFT, y) for k, (x, y) in SLIDER_SPOTS_D.items()},
    ),
    "C": SceneGeometry(
        "C",
        {"blue": "small", "red": "big", "pink": "middle"},
        button_x=-0.12,
        switch_x=-0.32,
        slider_x=0.06,
        drawer_x=0.10,
        shelf_x=0.08,
        led_x=-0.12,
        bulb_x=-0.32,
        slider_travel=0.24,
        desk_rgba=WOOD["wood"],
        drawer_rgba=WOOD["dark_wood_A"],
        table_spots=TABLE_SPOTS_D,
        slider_spots={k: (x + _SHELF_SHIFT, y) for k, (x, y) in SLIDER_SPOTS_D.items()},
    ),
    "D": SceneGeometry(
        "D",
        {"red": "middle", "blue": "small", "pink": "big"},
        button_x=-0.12,
        switch_x=0.30,
        slider_x=-0.10,
        drawer_x=0.18,
        shelf_x=-0.10,
        led_x=-0.12,
        bulb_x=0.30,
        slider_travel=0.28,
        desk_rgba=WOOD["dark_wood_D"],
        drawer_rgba=WOOD["dark_wood_D"],
        table_spots=TABLE_SPOTS_D,
        slider_spots=SLIDER_SPOTS_D,
    ),
}

# --- robot ---------------------------------------------------------------------------------
ROBOT_BASE = (-0.34, -0.46, 0.24)
ROBOT_INITIAL_JOINTS = (-1.21779206, 1.03987646, 2.11978261, -2.34205014, -0.87015947, 1.64119353, 0.55344866)
ROBOT_BASE_CYLINDER = {"radius": 0.13, "offset_x": -0.05}  # visual pedestal, length = base height
TCP_OFFSET = 0.14  # tcp frame: panda_hand z + 0.14
GRIPPER_CAM_OFFSET = ((-0.1, 0.0, 0.0), (1.3, 0.0, -1.57))  # gripper_cam frame in panda_hand: xyz, rpy
FINGER_LENGTH = 0.0964  # longer_finger_v2 reaches z 0.0964 in the finger frame (stock: 0.0538)
ARM_MAX_FORCE = 200.0  # panda.yaml max_joint_force
ARM_MAX_VELOCITY = 2.0
GRIPPER_FORCE = 200.0  # closing; opening uses 1/100 of it (robot.py control_gripper)
FINGER_OPEN = 0.04

# --- cameras -------------------------------------------------------------------------------
STATIC_CAMERA = {
    "eye": (2.871459009488717, -2.166602199425597, 2.555159848480571),
    "target": (-0.026242351159453392, -0.0302329882979393, 0.3920000493526459),
    "up": (0.4041403970338857, 0.22629790978217404, 0.8862616969685161),
    "fov": 10.0,
    "near": 0.01,
    "far": 10.0,
    "size": 200,
}
GRIPPER_CAMERA = {"fov": 75.0, "near": 0.01, "far": 2.0, "size": 84}
