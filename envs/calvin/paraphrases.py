"""Extra training phrasings of the 34 tasks, for language augmentation.

A policy trained on a handful of phrasings per task learns those sentences, not the language: an
unseen phrasing of a known task then reads like a new task. These templates give every task many
more phrasings (synonymous verbs, objects and directions in several sentence shapes, written in
the style of CALVIN's annotations), which training draws from in addition to the recorded
phrasings (:mod:`trainer.data.augment`).

A template is a sentence with alternatives in braces: ``"{push|slide} the {c} block left"`` expands
into every combination; ``{c}`` is the block colour. Each brace group of a task's templates is one
*group*: augmentation picks a group uniformly, then one of its sentences, so a template with many
combinations does not crowd out the others.

The evaluation phrasing stays held out: every expansion of a task that equals its evaluation
phrasing or is a near copy of it (word-sequence similarity >= :data:`NEAR_COPY`, about two words
changed in ten) is dropped, and so is any expansion that is also a phrasing (training, evaluation
or paraphrase) of another task.
"""

from __future__ import annotations

import itertools
import re
from difflib import SequenceMatcher
from functools import cache

from envs.calvin.chains import BLOCKS, TASKS, check_task_name
from envs.calvin.language import EVAL_INSTRUCTIONS, TRAIN_INSTRUCTIONS, normalize_instruction

__all__ = ["NEAR_COPY", "expand_template", "paraphrase_groups", "paraphrases"]

NEAR_COPY = 0.8
"""word-sequence similarity (difflib ratio) from which a paraphrase counts as a copy of an eval phrasing"""

_SIDE = {
    "right": "{to the right|right|rightwards|over to the right|towards the right|to the right side}",
    "left": "{to the left|left|leftwards|over to the left|towards the left|to the left side}",
}
_TURN_SIDE = {
    "right": "{to the right|right|clockwise|rightwards}",
    "left": "{to the left|left|counterclockwise|anticlockwise}",
}
_ROTATE = (
    "{rotate|turn|twist|spin} the {c} {block|cube} {side}",
    "{take|grab|pick up|hold} the {c} block and {rotate|turn|twist} it {side}",
    "{rotate|turn} the {c} block {a quarter turn|ninety degrees|a bit} {side}",
    "{twist|turn} the {c} block in place {side}",
)
_PUSH = (
    "{push|nudge|shove|slide} the {c} {block|cube} {side}",
    "{move|shift} the {c} block {side} {by pushing it|with a push|with the gripper}",
    "{go|reach over and} {push|slide} the {c} block {side}",
    "give the {c} block a {push|nudge|shove} {side}",
)
_LIFT_SOURCE = {
    "table": ("{from|off} the {table|desk}", "sitting on the table", "on the desk"),
    "slider": (
        "{from|out of|off} the {sliding cabinet|slider|slider shelf}",
        "inside the sliding cabinet",
        "in the slider",
    ),
    "drawer": ("{from|out of} the {drawer|open drawer}", "inside the drawer", "in the open drawer"),
}
_LIFT = (
    "{lift|pick up|raise|grab|take} the {c} block {source0}",
    "{pick|lift} the {c} block up {source0}",
    "{take|get|grab} the {c} block {source1} {and hold it up|and raise it}",
    "{pick up|lift up} the {c} {block|cube} {source2}",
)
_OTHER: dict[str, tuple[str, ...]] = {
    "move_slider_left": (
        "{push|slide|move|shift} the {sliding door|slider|cabinet door} {side}",
        "{grasp|grab|hold} the {slider|door} handle and {push|slide|move} it {side}",
        "{open|move} the sliding door all the way to the left",
        "slide the door of the cabinet {side}",
    ),
    "move_slider_right": (
        "{push|slide|move|shift} the {sliding door|slider|cabinet door} {side}",
        "{grasp|grab|hold} the {slider|door} handle and {push|slide|move} it {side}",
        "{open|move} the sliding door all the way to the right",
        "slide the door of the cabinet {side}",
    ),
    "open_drawer": (
        "{open|pull open} the drawer",
        "{pull|slide|drag} the drawer {open|out}",
        "{grasp|grab|hold} the {drawer handle|handle of the drawer} and {pull|tug} it {open|out}",
        "pull on the drawer handle {to open it|to open the drawer}",
    ),
    "close_drawer": (
        "{close|shut} the {drawer|open drawer}",
        "{push|slide} the drawer {shut|closed|in|back in}",
        "{grasp|hold} the drawer handle and push it {shut|closed}",
        "push {on|against} the drawer {to close it|until it is closed}",
    ),
    "place_in_slider": (
        "{place|put|set|drop|lay} the {block|cube|held block} {in|into} the {sliding cabinet|slider}",
        "{release|let go of} the block {in|inside} the {slider|sliding cabinet}",
        "move the {held|grasped} block {into|over to} the {slider|sliding cabinet} and {release|drop} it",
        "put the block you are holding {in|into} the {slider|sliding cabinet}",
    ),
    "place_in_drawer": (
        "{place|put|set|drop|lay} the {block|cube|held block} {in|into} the {drawer|open drawer}",
        "{release|let go of} the block {in|inside} the {drawer|open drawer}",
        "move the {held|grasped} block {into|over to} the drawer and {release|drop} it",
        "put the block you are holding {in|into} the drawer",
    ),
    "turn_on_lightbulb": (
        "{turn|switch} on the {light bulb|yellow light|yellow lamp|bulb}",
        "{flip|toggle|push|move} the switch {up|upwards} {to turn on the light bulb|to light the yellow bulb}",
        "{light up|switch on} the yellow {bulb|lamp}",
        "make the yellow {light|lamp} {come on|shine}",
    ),
    "turn_off_lightbulb": (
        "{turn|switch} off the {light bulb|yellow light|yellow lamp|bulb}",
        "{flip|toggle|push|move} the switch {down|downwards} {to turn off the bulb|to switch the yellow light off}",
        "{put out|switch off} the yellow {bulb|lamp}",
        "make the yellow {light|lamp} go {dark|out}",
    ),
    "turn_on_led": (
        "{turn|switch} on the {led|green led|green light|green lamp}",
        "{press|push|tap} the button {to turn on the led|to switch the green light on|and the led turns on}",
        "{light up|switch on} the green {led|lamp}",
        "make the green {light|led} {come on|shine}",
    ),
    "turn_off_led": (
        "{turn|switch} off the {led|green led|green light|green lamp}",
        "{press|push|tap} the button {to turn off the led|to switch the green light off|and the led turns off}",
        "{put out|switch off} the green {led|lamp}",
        "make the green {light|led} go {dark|out}",
    ),
    "push_into_drawer": (
        "{push|sweep|shove|nudge} the {block|cube} {into|in} the {drawer|open drawer}",
        "push the block {off the table|from the table} into the {drawer|open drawer}",
        "{slide|push} the block across the table {and into the drawer|until it falls into the drawer}",
        "knock the block into the open drawer",
    ),
    "stack_block": (
        "{stack|put|place|set} the block {on top of|on} {another block|the other block|the second block}",
        "{stack|pile} the blocks {on top of each other|into a tower}",
        "build a {tower|stack} {of|with} {two|the} blocks",
        "{place|put} the {held|grasped} block on top of the other one",
    ),
    "unstack_block": (
        "{unstack|separate} the {blocks|stacked blocks}",
        "{take|lift|remove|pick} the top block {off|from} the {stack|tower|other block}",
        "take down the {stack|tower|block tower}",
        "remove the {top|upper} block from the {stack|tower} and {put|place} it on the table",
    ),
}
_BRACES = re.compile(r"\{([^{}]*)\}")


def expand_template(template: str) -> list[str]:
    """Every sentence a template stands for, in order: ``"a {b|c} d"`` -> ``["a b d", "a c d"]``."""
    parts = _BRACES.split(template)  # literal, alternatives, literal, alternatives, ...
    choices = [[p] if i % 2 == 0 else p.split("|") for i, p in enumerate(parts)]
    return [normalize_instruction("".join(combo)) for combo in itertools.product(*choices)]


def _templates(task: str) -> tuple[str, ...]:
    parts = task.split("_")
    if parts[0] in ("rotate", "push") and parts[1] in BLOCKS:  # rotate_red_block_right
        color, side = parts[1], parts[3]
        table, sides = (_ROTATE, _TURN_SIDE) if parts[0] == "rotate" else (_PUSH, _SIDE)
        return tuple(t.replace("{c}", color).replace("{side}", sides[side]) for t in table)
    if parts[0] == "lift":  # lift_red_block_table
        color, sources = parts[1], _LIFT_SOURCE[parts[3]]
        fill = {"{c}": color, **{f"{{source{i}}}": s for i, s in enumerate(sources)}}
        return tuple(re.sub(r"\{c\}|\{source\d\}", lambda m: fill[m.group(0)], t) for t in _LIFT)
    side = parts[-1]
    return tuple(t.replace("{side}", _SIDE.get(side, "")) for t in _OTHER[task])


def _near_copy(a: str, b: str) -> bool:
    m = SequenceMatcher(None, a.split(), b.split())
    return m.real_quick_ratio() >= NEAR_COPY and m.quick_ratio() >= NEAR_COPY and m.ratio() >= NEAR_COPY


@cache
def _all_groups() -> dict[str, tuple[tuple[str, ...], ...]]:
    expanded = {task: [expand_template(t) for t in _templates(task)] for task in TASKS}
    owners: dict[str, set[str]] = {}
    for task in TASKS:
        for phrase in (*TRAIN_INSTRUCTIONS[task], EVAL_INSTRUCTIONS[task]):
            owners.setdefault(normalize_instruction(phrase), set()).add(task)
        for group in expanded[task]:
            for phrase in group:
                owners.setdefault(phrase, set()).add(task)
    out = {}
    for task in TASKS:
        held_out = normalize_instruction(EVAL_INSTRUCTIONS[task])
        groups = []
        for group in expanded[task]:
            kept = [p for p in dict.fromkeys(group) if owners[p] == {task} and not _near_copy(p, held_out)]
            if kept:
                groups.append(tuple(kept))
        out[task] = tuple(groups)
    return out


def paraphrase_groups(task: str) -> tuple[tuple[str, ...], ...]:
    """The paraphrases of ``task``, one tuple per template (held-out phrasings removed)."""
    return _all_groups()[check_task_name(task)]


def paraphrases(task: str) -> tuple[str, ...]:
    """All paraphrases of ``task`` (lower case, in template order)."""
    return tuple(p for group in paraphrase_groups(task) for p in group)
