"""Measured fidelity of our play table against CALVIN's own env, on matched states.

``python -m bench.fidelity calvin --json FILE [--scenes A B C D] [--states 20] [--figures DIR]``

For the start states of the first N official chains of each scene, CALVIN's ``PlayTableSimEnv`` is
reset as CALVIN's evaluation resets it (:mod:`envs.calvin.official.reset`, robot at CALVIN's initial
joints), and our table is then put in exactly that state: the joints of the slider, drawer, button
and switch, the lights, every block's pose (matched by colour: CALVIN lists its blocks in each
scene's yaml order) and every joint of the arm and fingers (matched by name). Nothing is stepped in
between, so both envs show the same configuration. Then, per state:

- both cameras of both envs are rendered by PyBullet's TinyRenderer with segmentation masks; every
  body/link of each env is mapped to one object name (:data:`OBJECTS`; the floor and the arm's
  pedestal are :data:`EXTRA`, reported but outside the means), and each object's intersection over
  union between the two masks is taken where the object shows in either image;
- the mean absolute RGB difference of each camera image (0..255, over all pixels and channels);
- every part's position difference in mm: the centres of the world bounding boxes of the desk, the
  shelf, the moving parts, the lights and the blocks, and the world frames of the arm's links that
  both robots name alike;
- the largest difference of the two envs' ``scene_obs`` after matching (a check of the matching).

Means: per object over the states where it shows, then over objects (per camera); per scene and
overall. ``oracle_agreement`` is :func:`envs.calvin.official.oracle.oracle_agreement`.
The JSON (a new file; an existing one is refused) holds ``static_iou``, ``gripper_iou``,
``max_part_error_mm`` and ``oracle_agreement`` with per-scene, per-object and per-part breakdowns;
``--figures`` (default ``results/figures``) gets ``calvin_side_by_side_<scene>.png`` per scene: the
first state's CALVIN static, ours static, CALVIN gripper, ours gripper, with the object masks below.
"""

from bench.fidelity.cli import main, print_table
from bench.fidelity.measure import CAMERAS, TARGETS, measure, measure_scene, side_by_side
from bench.fidelity.objects import (
    EXTRA,
    OBJECTS,
    calvin_segments,
    ious,
    label_image,
    match_state,
    our_segments,
    part_positions,
    unmapped_bodies,
)

__all__ = [
    "CAMERAS",
    "EXTRA",
    "OBJECTS",
    "TARGETS",
    "calvin_segments",
    "ious",
    "label_image",
    "main",
    "match_state",
    "measure",
    "measure_scene",
    "our_segments",
    "part_positions",
    "print_table",
    "side_by_side",
    "unmapped_bodies",
]
