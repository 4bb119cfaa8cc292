"""Language instructions for the 34 CALVIN-style tasks.

Each task has several *training* phrasings (what a policy may see while training) and exactly one
*evaluation* phrasing (what the long-horizon evaluation gives it), which differs from every
training phrasing of every task, as in CALVIN's split. Every phrasing names its object without
ambiguity: the block colour, the direction, on/off, and for lifting where the block lies (table,
sliding cabinet or drawer). Tasks that act on "the" block (place, stack, unstack, push into the
drawer) leave the colour out: the symbolic state makes the block unique.

The phrasings are our own. :func:`task_from_instruction` maps any of them back to its task,
ignoring case and runs of whitespace. Training draws many more phrasings of each task from
:mod:`envs.calvin.paraphrases`, which keeps the evaluation phrasings and their near copies out.
"""

from __future__ import annotations

import re

from envs.calvin.chains import BLOCKS, TASKS, check_task_name

__all__ = [
    "EVAL_INSTRUCTIONS",
    "TRAIN_INSTRUCTIONS",
    "eval_instruction",
    "normalize_instruction",
    "task_from_instruction",
    "train_instructions",
]

# --- block tasks, written once per family with the colour (and side) filled in ---------------------
_ROTATE_TRAIN = {
    "right": (
        "rotate the {c} block to the right",
        "turn the {c} block right",
        "twist the {c} block clockwise",
        "grab the {c} block and rotate it right",
        "spin the {c} block to the right",
        "rotate the {c} block clockwise",
        "give the {c} block a quarter turn to the right",
    ),
    "left": (
        "rotate the {c} block to the left",
        "turn the {c} block left",
        "twist the {c} block counterclockwise",
        "grab the {c} block and rotate it left",
        "spin the {c} block to the left",
        "rotate the {c} block anticlockwise",
        "give the {c} block a quarter turn to the left",
    ),
}
_ROTATE_EVAL = {
    "right": "grasp the {c} block and turn it towards the right side",
    "left": "grasp the {c} block and turn it towards the left side",
}
_PUSH_TRAIN = {
    "right": (
        "push the {c} block to the right",
        "slide the {c} block right",
        "nudge the {c} block to the right",
        "push the {c} block rightwards",
        "move the {c} block to the right by pushing it",
        "shove the {c} block over to the right",
    ),
    "left": (
        "push the {c} block to the left",
        "slide the {c} block left",
        "nudge the {c} block to the left",
        "push the {c} block leftwards",
        "move the {c} block to the left by pushing it",
        "shove the {c} block over to the left",
    ),
}
_PUSH_EVAL = {
    "right": "go and push the {c} block a little towards the right",
    "left": "go and push the {c} block a little towards the left",
}
_LIFT_TRAIN = {
    "table": (
        "lift the {c} block from the table",
        "pick up the {c} block on the table",
        "grab the {c} block off the table",
        "take the {c} block from the table",
        "raise the {c} block off the table",
        "pick the {c} block up from the desk",
    ),
    "slider": (
        "lift the {c} block from the sliding cabinet",
        "pick up the {c} block in the slider",
        "take the {c} block out of the sliding cabinet",
        "grab the {c} block from the slider shelf",
        "lift the {c} block off the slider shelf",
        "pick the {c} block up from the sliding cabinet",
    ),
    "drawer": (
        "lift the {c} block from the drawer",
        "pick up the {c} block in the drawer",
        "take the {c} block out of the drawer",
        "grab the {c} block from the drawer",
        "raise the {c} block out of the drawer",
        "pick the {c} block up from inside the drawer",
    ),
}
_LIFT_EVAL = {
    "table": "grasp the {c} block lying on the table and lift it up",
    "slider": "grasp the {c} block lying in the sliding cabinet and lift it up",
    "drawer": "grasp the {c} block lying in the drawer and lift it up",
}

# --- the other tasks --------------------------------------------------------------------------------
_OTHER_TRAIN: dict[str, tuple[str, ...]] = {
    "move_slider_left": (
        "move the sliding door to the left",
        "slide the door to the left",
        "push the slider left",
        "shift the sliding door left",
        "move the slider to the left",
        "grasp the slider handle and slide it left",
        "slide the cabinet door over to the left",
    ),
    "move_slider_right": (
        "move the sliding door to the right",
        "slide the door to the right",
        "push the slider right",
        "shift the sliding door right",
        "move the slider to the right",
        "grasp the slider handle and slide it right",
        "slide the cabinet door over to the right",
    ),
    "open_drawer": (
        "open the drawer",
        "pull the drawer open",
        "grasp the drawer handle and pull it out",
        "pull out the drawer",
        "slide the drawer open",
        "open the drawer by its handle",
    ),
    "close_drawer": (
        "close the drawer",
        "push the drawer shut",
        "push the drawer closed",
        "slide the drawer in",
        "shut the drawer",
        "grasp the drawer handle and push it in",
    ),
    "place_in_slider": (
        "place the block in the sliding cabinet",
        "put the block into the slider",
        "store the grasped block in the sliding cabinet",
        "set the block down on the slider shelf",
        "put the object in the sliding cabinet",
        "drop the held block into the slider",
    ),
    "place_in_drawer": (
        "place the block in the drawer",
        "put the block into the drawer",
        "store the grasped block in the drawer",
        "set the block down in the drawer",
        "put the object in the drawer",
        "drop the held block into the drawer",
    ),
    "turn_on_lightbulb": (
        "turn on the light bulb",
        "switch on the yellow lamp",
        "push the switch up to turn on the bulb",
        "turn the yellow light on",
        "flip the switch to light the bulb",
        "make the light bulb glow",
    ),
    "turn_off_lightbulb": (
        "turn off the light bulb",
        "switch off the yellow lamp",
        "push the switch down to turn off the bulb",
        "turn the yellow light off",
        "flip the switch to put out the bulb",
        "make the light bulb go dark",
    ),
    "turn_on_led": (
        "turn on the LED",
        "switch on the green light",
        "press the button to turn on the LED",
        "push the button to light up the green lamp",
        "turn the green light on",
        "make the LED glow",
    ),
    "turn_off_led": (
        "turn off the LED",
        "switch off the green light",
        "press the button to turn off the LED",
        "push the button to switch the green lamp off",
        "turn the green light off",
        "make the LED go dark",
    ),
    "push_into_drawer": (
        "push the block into the drawer",
        "sweep the block into the open drawer",
        "slide the block from the table into the drawer",
        "push the block off the table into the drawer",
        "shove the block into the drawer",
        "nudge the block over into the drawer",
    ),
    "stack_block": (
        "stack the blocks",
        "put the block on top of another block",
        "place the block on the other block",
        "stack the held block on another block",
        "build a tower with the blocks",
        "set the block on top of the other one",
    ),
    "unstack_block": (
        "unstack the blocks",
        "take the top block off the stack",
        "remove the block from the top of the other block",
        "take the stacked block off",
        "take down the block tower",
        "lift the top block off the stack and put it on the table",
    ),
}
_OTHER_EVAL: dict[str, str] = {
    "move_slider_left": "pull the sliding door over to the left side",
    "move_slider_right": "pull the sliding door over to the right side",
    "open_drawer": "take the drawer handle and draw it open",
    "close_drawer": "press the drawer back in to close it",
    "place_in_slider": "place the grasped block inside the sliding cabinet",
    "place_in_drawer": "place the grasped block inside the drawer",
    "turn_on_lightbulb": "move the switch so that the yellow bulb lights up",
    "turn_off_lightbulb": "move the switch so that the yellow bulb goes out",
    "turn_on_led": "hit the button so that the green LED lights up",
    "turn_off_led": "hit the button so that the green LED goes out",
    "push_into_drawer": "push the block on the table over the edge into the drawer",
    "stack_block": "stack the grasped block onto another block",
    "unstack_block": "take the upper block off the stack and set it down",
}


def _build() -> tuple[dict[str, tuple[str, ...]], dict[str, str]]:
    train: dict[str, tuple[str, ...]] = {}
    evals: dict[str, str] = {}
    for task in TASKS:
        parts = task.split("_")
        if parts[0] in ("rotate", "push") and parts[1] in BLOCKS:  # rotate_red_block_right
            color, side = parts[1], parts[3]
            table_train = _ROTATE_TRAIN if parts[0] == "rotate" else _PUSH_TRAIN
            table_eval = _ROTATE_EVAL if parts[0] == "rotate" else _PUSH_EVAL
            train[task] = tuple(p.format(c=color) for p in table_train[side])
            evals[task] = table_eval[side].format(c=color)
        elif parts[0] == "lift":  # lift_red_block_table
            color, source = parts[1], parts[3]
            train[task] = tuple(p.format(c=color) for p in _LIFT_TRAIN[source])
            evals[task] = _LIFT_EVAL[source].format(c=color)
        else:
            train[task] = _OTHER_TRAIN[task]
            evals[task] = _OTHER_EVAL[task]
    return train, evals


TRAIN_INSTRUCTIONS: dict[str, tuple[str, ...]]
EVAL_INSTRUCTIONS: dict[str, str]
TRAIN_INSTRUCTIONS, EVAL_INSTRUCTIONS = _build()


def normalize_instruction(text: str) -> str:
    """Lower-case ``text`` and collapse whitespace (the key :func:`task_from_instruction` uses)."""
    return re.sub(r"\s+", " ", text).strip().lower()


def _build_lookup() -> dict[str, str]:
    lookup: dict[str, str] = {}
    for task in TASKS:
        for phrase in (*TRAIN_INSTRUCTIONS[task], EVAL_INSTRUCTIONS[task]):
            key = normalize_instruction(phrase)
            if lookup.get(key, task) != task:
                raise RuntimeError(f"instruction {phrase!r} is given to both {lookup[key]} and {task}")
            lookup[key] = task
    return lookup


_LOOKUP = _build_lookup()


def eval_instruction(task: str) -> str:
    """The single evaluation phrasing of ``task``."""
    return EVAL_INSTRUCTIONS[check_task_name(task)]


def train_instructions(task: str) -> tuple[str, ...]:
    """The training phrasings of ``task``."""
    return TRAIN_INSTRUCTIONS[check_task_name(task)]


def task_from_instruction(text: str) -> str:
    """The task an instruction (training or evaluation phrasing) belongs to.

    Matching is exact up to case and whitespace; raises ValueError when nothing matches.
    """
    task = _LOOKUP.get(normalize_instruction(text))
    if task is None:
        raise ValueError(
            f"no task matches the instruction {text!r}: it is none of the {len(_LOOKUP)} known "
            "training/evaluation phrasings (see envs.calvin.language.TRAIN_INSTRUCTIONS)"
        )
    return task
