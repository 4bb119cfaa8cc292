"""SimplerEnv-style suite without the simulator: success rules, layouts, variants, action conversion."""

from __future__ import annotations

import numpy as np
import pytest

from envs.simpler import GROUPS, TASKS, check_mode, rules, select_tasks
from envs.simpler.env import to_controller
from envs.simpler.variants import BASE, VARIANTS, appearance


def test_can_rule_thresholds() -> None:
    assert rules.can_picked(0.011, touches_other=False, held_steps=0)
    assert not rules.can_picked(0.011, touches_other=True, held_steps=0)  # still on the table
    assert not rules.can_picked(0.009, touches_other=False, held_steps=0)
    assert rules.can_picked(0.03, touches_other=True, held_steps=5)  # > 2 cm for 5 steps
    assert not rules.can_picked(0.03, touches_other=True, held_steps=4)


def test_drawer_rules() -> None:
    assert rules.drawer_open(0.15) and not rules.drawer_open(0.149)
    assert rules.drawer_closed(0.05) and not rules.drawer_closed(0.051)
    assert rules.DRAWER_CLOSE_START_M == 0.2


def test_move_near_rule() -> None:
    assert rules.moved_near([0.0, 0.0], [0.08, 0.0], others_moved=[0.01, 0.0], upright=[True])
    assert not rules.moved_near([0.0, 0.0], [0.12, 0.0], others_moved=[0.0], upright=[True])  # too far
    assert not rules.moved_near(
        [0.0, 0.0], [0.05, 0.0], others_moved=[0.04], upright=[True]
    )  # pushed another
    assert not rules.moved_near([0.0, 0.0], [0.05, 0.0], others_moved=[0.0], upright=[False])  # knocked over
    assert rules.is_upright([0.0, 0.3, 1.0]) and not rules.is_upright([1.0, 0.0, 0.2])


def test_on_top_rule() -> None:
    half_src, half_tgt = [0.02, 0.02, 0.02], [0.02, 0.02, 0.02]
    stacked = ([0.0, 0.0, 0.06], half_src, [0.0, 0.0, 0.02], half_tgt)
    assert rules.on_top(*stacked, contact_force=1.0)
    assert not rules.on_top(*stacked, contact_force=0.0)  # hovering, not pressing
    beside = ([0.05, 0.0, 0.06], half_src, [0.0, 0.0, 0.02], half_tgt)
    assert not rules.on_top(*beside, contact_force=1.0)  # 5 cm > half diagonal 2.83 cm + 3 mm
    high = ([0.0, 0.0, 0.09], half_src, [0.0, 0.0, 0.02], half_tgt)
    assert not rules.on_top(*high, contact_force=1.0)  # 3 cm gap > 2 cm
    below = ([0.0, 0.0, 0.01], half_src, [0.0, 0.0, 0.02], half_tgt)
    assert not rules.on_top(*below, contact_force=1.0)


def test_inside_and_world_extents() -> None:
    assert rules.inside([0.0, 0.0, 0.0], [0.1, 0.1, 0.03])
    assert not rules.inside([0.11, 0.0, 0.0], [0.1, 0.1, 0.03])
    assert rules.inside([0.0, 0.0, 0.05], [0.1, 0.1, 0.03], above=0.03)
    quarter = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    np.testing.assert_allclose(rules.world_half_extents([0.1, 0.02, 0.01], quarter), [0.02, 0.1, 0.01])


def test_tasks_match_the_reference() -> None:
    assert len(TASKS) == 15
    steps = {t.name: t.max_steps for t in TASKS.values()}
    assert steps["pick_can_standing"] == 80 and steps["move_near"] == 80
    assert steps["open_drawer_middle"] == 113 and steps["place_apple_in_top_drawer"] == 200
    assert steps["put_spoon_on_towel"] == 60 and steps["put_eggplant_in_basket"] == 120
    episodes = {t.group: t.episodes for t in TASKS.values()}
    assert episodes == {
        "pick_coke_can": 25,
        "move_near": 60,
        "open_drawer": 27,
        "close_drawer": 27,
        "place_apple_in_top_drawer": 27,
        "put_spoon_on_towel": 24,
        "put_carrot_on_plate": 24,
        "stack_green_on_yellow": 24,
        "put_eggplant_in_basket": 24,
    }
    assert set(GROUPS["pick_coke_can"]) == {"pick_can_horizontal", "pick_can_vertical", "pick_can_standing"}


def test_layouts_are_fixed_and_distinct() -> None:
    can = TASKS["pick_can_standing"]
    positions = {
        (can.layout(i).objects["coke_can"].x, can.layout(i).objects["coke_can"].y) for i in range(25)
    }
    assert len(positions) == 25  # the 5 x 5 grid
    assert can.layout(3) == can.layout(3) == can.layout(28)  # wraps round
    near = TASKS["move_near"]
    pairs = {(near.layout(i).source, near.layout(i).target, tuple(near.layout(i).objects)) for i in range(60)}
    assert len({(s, t, o) for s, t, o in pairs}) >= 30
    with pytest.raises(ValueError, match=">= 0"):
        can.layout(-1)


def test_instructions() -> None:
    apple = TASKS["place_apple_in_top_drawer"]
    layout = apple.layout(0)
    assert apple.instruction(layout, 99) == "open top drawer"
    assert apple.instruction(layout, 100) == "place apple into top drawer"
    assert (
        TASKS["close_drawer_bottom"].instruction(TASKS["close_drawer_bottom"].layout(0))
        == "close bottom drawer"
    )
    near = TASKS["move_near"]
    assert near.instruction(near.layout(0)).startswith("move ")


def test_unknown_names_list_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="valid tasks: pick_can_horizontal"):
        select_tasks(["pick_cup"])
    with pytest.raises(ValueError, match="valid: visual_matching, variant_aggregation"):
        check_mode("visual")
    assert [t.name for t in select_tasks(["open_drawer"])] == [
        "open_drawer_top",
        "open_drawer_middle",
        "open_drawer_bottom",
    ]
    assert len(select_tasks(["bridge"])) == 4


def test_variants_change_what_they_claim() -> None:
    for name, variant in VARIANTS.items():
        for family in BASE:
            base, changed = appearance(family, "base"), appearance(family, name)
            differing = {k for k in base.__dataclass_fields__ if getattr(base, k) != getattr(changed, k)}
            assert differing == set(variant.changes), (name, family)
    assert [v for v in VARIANTS.values() if not v.in_aggregate] == [
        VARIANTS["camera_orientation_1"],
        VARIANTS["camera_orientation_2"],
    ]
    assert check_mode("visual_matching") == ("base",)


def test_action_conversion() -> None:
    cmd, closed = to_controller(np.array([0.05, -0.2, 0.0, 0.0, 0.0, 0.0, 1.0]), 0.0, "relative")
    np.testing.assert_allclose(cmd[:3], [0.5, -1.0, 0.0])  # 0.1 m per unit, clipped
    assert closed == 1.0 and cmd[6] == -1.0  # Google robot: +1 closes
    _, closed = to_controller(np.array([0, 0, 0, 0, 0, 0, -0.5]), 1.0, "relative")
    assert closed == 0.5  # relative: half opened
    cmd, closed = to_controller(np.array([0, 0, 0, 0, 0, 0, 1.0]), 1.0, "absolute")
    assert closed == 0.0 and cmd[6] == 1.0  # WidowX: +1 is open
    cmd, _ = to_controller(np.array([0, 0, 0, 0, 0, 0.5, 0.0]), 0.0, "absolute", rot_unit=-0.1)
    np.testing.assert_allclose(cmd[3:6], [0, 0, -1.0], atol=1e-6)  # clipped to 0.1 rad, sign of rot_lower
    with pytest.raises(ValueError, match="shape"):
        to_controller(np.zeros(6), 0.0, "absolute")
    with pytest.raises(ValueError, match="NaN"):
        to_controller(np.array([np.nan] * 7), 0.0, "absolute")


def test_bridge_rule_as_simplerenv_writes_it() -> None:
    from envs.simpler.rules import bridge_on_target

    plate, carrot = np.array([0.055, 0.055, 0.003]), np.array([0.0575, 0.016, 0.019])
    kw = {"z_margin": 0.02, "xy_margin": 0.003}
    resting = [0.02, -0.03, 0.003 + 0.019 + 0.005]
    assert bridge_on_target(resting, carrot, plate, False, **kw)
    assert not bridge_on_target(resting, carrot, plate, True, **kw)  # touches the table as well
    reach = float(np.linalg.norm(plate[:2])) + 0.003  # the target's half diagonal plus 3 mm
    assert bridge_on_target([reach - 1e-4, 0.0, 0.03], carrot, plate, False, **kw)
    assert not bridge_on_target([reach + 1e-4, 0.0, 0.03], carrot, plate, False, **kw)
    assert not bridge_on_target([0.0, 0.0, 0.003 + 0.019 + 0.021], carrot, plate, False, **kw)  # held high
    assert bridge_on_target([0.0, 0.0, 0.06], carrot, plate, False, z_margin=0.06, xy_margin=0.003)
    assert not bridge_on_target([0.0, 0.0, -0.001], carrot, plate, False, **kw)  # below the target


def test_overlay_replaces_only_background_pixels() -> None:
    import torch

    from envs.simpler.overlay import composite

    rgb = torch.full((1, 2, 3, 3), 7, dtype=torch.uint8)
    seg = torch.tensor([[[[1], [5], [2]], [[5], [0], [9]]]], dtype=torch.int16)
    overlay = np.full((2, 3, 3), 200, dtype=np.uint8)
    out = composite(rgb, seg, torch.tensor([5, 9]), overlay)[0, ..., 0].numpy()
    np.testing.assert_array_equal(out, [[200, 7, 200], [7, 200, 7]])
