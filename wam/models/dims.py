"""A robot's sizes are the data's, never a default: configs hold 0 ("not set") until a stage sets them from the
dataset's feature spec (wam.data.spec.read_spec), and a model built before that is refused, naming the size."""

from __future__ import annotations

FROM_DATA = 0  # the default of every robot size in a model config


def require_from_data(model: str, **sizes: int) -> None:
    unset = [name for name, value in sizes.items() if value <= 0]
    if unset:
        raise ValueError(f"{model}: {', '.join(unset)} not set; a robot's sizes come from its dataset's feature spec "
                         "(wam.data.spec.read_spec), which pretraining and finetuning read")
