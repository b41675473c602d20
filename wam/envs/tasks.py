"""Meta-World task names, their language instructions, and named task sets.

The language text is what a World Action Model is conditioned on, so every task has one
short imperative sentence in the style of the instructions robot datasets ship with.
"""

from __future__ import annotations

TASK_TEXT: dict[str, str] = {
    "assembly-v3": "put the ring on the peg",
    "basketball-v3": "dunk the ball into the basket",
    "bin-picking-v3": "move the cube from one bin to the other",
    "box-close-v3": "put the lid on the box",
    "button-press-topdown-v3": "press the button from the top",
    "button-press-topdown-wall-v3": "press the button behind the wall from the top",
    "button-press-v3": "press the button",
    "button-press-wall-v3": "press the button behind the wall",
    "coffee-button-v3": "press the button on the coffee machine",
    "coffee-pull-v3": "pull the mug from the coffee machine",
    "coffee-push-v3": "push the mug under the coffee machine",
    "dial-turn-v3": "turn the dial",
    "disassemble-v3": "pick the ring off the peg",
    "door-close-v3": "close the door",
    "door-lock-v3": "lock the door by turning the lock",
    "door-open-v3": "open the door",
    "door-unlock-v3": "unlock the door by turning the lock",
    "hand-insert-v3": "insert the gripper into the hole",
    "drawer-close-v3": "close the drawer",
    "drawer-open-v3": "open the drawer",
    "faucet-open-v3": "turn the faucet on",
    "faucet-close-v3": "turn the faucet off",
    "hammer-v3": "hammer the nail into the wall",
    "handle-press-side-v3": "press the handle down sideways",
    "handle-press-v3": "press the handle down",
    "handle-pull-side-v3": "pull the handle up sideways",
    "handle-pull-v3": "pull the handle up",
    "lever-pull-v3": "pull the lever up",
    "pick-place-wall-v3": "pick up the puck and place it behind the wall",
    "pick-out-of-hole-v3": "pick the peg out of the hole",
    "pick-place-v3": "pick up the puck and place it at the goal",
    "plate-slide-v3": "slide the plate into the cabinet",
    "plate-slide-side-v3": "slide the plate sideways into the cabinet",
    "plate-slide-back-v3": "slide the plate out of the cabinet",
    "plate-slide-back-side-v3": "slide the plate sideways out of the cabinet",
    "peg-insert-side-v3": "insert the peg sideways into the hole",
    "peg-unplug-side-v3": "unplug the peg sideways",
    "soccer-v3": "kick the ball into the goal",
    "stick-push-v3": "grasp the stick and push the box with it",
    "stick-pull-v3": "grasp the stick and pull the box with it",
    "push-v3": "push the puck to the goal",
    "push-wall-v3": "push the puck past the wall to the goal",
    "push-back-v3": "push the puck back to the goal",
    "reach-v3": "reach the goal position",
    "reach-wall-v3": "reach over the wall to the goal position",
    "shelf-place-v3": "place the puck on the shelf",
    "sweep-into-v3": "sweep the puck into the hole",
    "sweep-v3": "sweep the puck off the table",
    "window-open-v3": "slide the window open",
    "window-close-v3": "slide the window closed",
}

MT10: tuple[str, ...] = (
    "reach-v3",
    "push-v3",
    "pick-place-v3",
    "door-open-v3",
    "drawer-open-v3",
    "drawer-close-v3",
    "button-press-topdown-v3",
    "peg-insert-side-v3",
    "window-open-v3",
    "window-close-v3",
)
MT50: tuple[str, ...] = tuple(TASK_TEXT)

TASK_SETS: dict[str, tuple[str, ...]] = {"mt10": MT10, "mt50": MT50}


def resolve_tasks(spec: str) -> list[str]:
    """Turn `mt10`, `mt50` or a comma list (`reach-v3,push` also accepts a missing `-v3`) into task names."""
    spec = spec.strip()
    if spec.lower() in TASK_SETS:
        return list(TASK_SETS[spec.lower()])
    names = []
    for raw in spec.split(","):
        name = raw.strip().removeprefix("metaworld/")
        if not name:
            continue
        if name not in TASK_TEXT and f"{name}-v3" in TASK_TEXT:
            name = f"{name}-v3"
        if name not in TASK_TEXT:
            raise ValueError(
                f"unknown Meta-World task {raw.strip()!r}: use mt10, mt50 or names like reach-v3 "
                f"(known: {', '.join(sorted(TASK_TEXT)[:5])}, ...)"
            )
        names.append(name)
    if not names:
        raise ValueError(f"no tasks in {spec!r}")
    return list(dict.fromkeys(names))


def task_text(name: str) -> str:
    """The language instruction for a Meta-World task name."""
    try:
        return TASK_TEXT[name]
    except KeyError:
        raise ValueError(f"unknown Meta-World task {name!r}") from None


def instruction(name: str) -> str:
    """The language instruction of a task of any family (Meta-World's, the hand scenes'); any other name is taken as
    the instruction itself (a dream of other data names its tasks by their text)."""
    from wam.envs.hands.tasks import TASKS as HAND_TASKS

    if name in TASK_TEXT:
        return TASK_TEXT[name]
    hand = HAND_TASKS.get(name.removeprefix("hand/"))
    return hand.text if hand is not None else name
