"""The batch sources: a batch is a pure function of (seed, step), loaded here or in workers."""

import pytest
import torch

from wam.train.sources import LoaderSource, RandomWindowSource, step_indices


class Numbers(torch.utils.data.Dataset):
    def __init__(self, n: int):
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict:
        return {"index": i}


def test_step_indices_depend_on_seed_and_step_alone():
    first = step_indices(1000, 16, seed=5, step=12)
    torch.manual_seed(123)  # the global RNG plays no part
    assert step_indices(1000, 16, seed=5, step=12) == first
    assert step_indices(1000, 16, seed=5, step=13) != first
    assert step_indices(1000, 16, seed=6, step=12) != first
    assert all(0 <= i < 1000 for i in first) and len(first) == 16


def test_random_window_source_repeats_a_step_exactly():
    source = RandomWindowSource(Numbers(50), batch_size=4, seed=0)
    later = source.batch(9)
    source.batch(1)
    assert torch.equal(source.batch(9)["index"], later["index"])


@pytest.mark.parametrize("make", [lambda d: RandomWindowSource(d, 4, 0), lambda d: LoaderSource(d, 4, 0, num_workers=1)])
def test_an_empty_dataset_is_refused_with_the_source_named(make):
    with pytest.raises(ValueError, match="Source: the dataset is empty"):
        make(Numbers(0))
