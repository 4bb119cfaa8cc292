"""Measured fidelity of our play table against CALVIN's own env, on matched states.

``python -m bench.fidelity calvin --json FILE [--scenes A B C D] [--states 20] [--figures DIR]``
(what it measures: README, "Measured fidelity against CALVIN's env"). For the start states of the
first N official chains, CALVIN's env is reset as its evaluation resets it and our table is put in
exactly that state (:func:`match_state`), nothing stepped in between; then both cameras' per-object
IoU (every body/link mapped to one name of :data:`OBJECTS`; :data:`EXTRA` reported apart), the mean
absolute RGB difference, every part's position difference in mm and the oracle's agreement are
taken (:func:`measure`), averaged per object over the states where it shows, then over objects.
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
