"""Batches and their sharding between ranks."""

import pytest
import torch

from sandflow.train.data import EpochBatches, batches, shard

CPU = torch.device("cpu")


def test_the_ranks_shards_make_up_the_one_process_batches():
    whole = list(EpochBatches(50, 12, seed=4, rank=0, world=1, start=0, stop=9))
    parts = [list(EpochBatches(50, 12, seed=4, rank=r, world=3, start=0, stop=9)) for r in range(3)]
    for step, indices in enumerate(whole):
        assert [parts[r][step] for r in range(3)] == [indices[r::3] for r in range(3)]
    for epoch in (0, 1):  # 4 batches of 12 per epoch: 48 distinct examples of the 50
        assert len({i for batch in whole[4 * epoch : 4 * epoch + 4] for i in batch}) == 48
    assert whole[0] != whole[4]  # a new permutation each epoch


def test_starting_at_a_step_equals_skipping_to_it():
    full = list(EpochBatches(30, 8, seed=1, rank=1, world=2, start=0, stop=10))
    assert list(EpochBatches(30, 8, seed=1, rank=1, world=2, start=6, stop=10)) == full[6:]


def test_a_callable_gives_the_global_batch_and_each_rank_keeps_its_rows():
    global_batch = torch.arange(8.0)
    got = [
        next(
            batches(
                lambda step: (global_batch, global_batch + 1),
                batch_size=None,
                seed=0,
                rank=r,
                world=2,
                start=0,
                stop=1,
                device=CPU,
            )
        )
        for r in range(2)
    ]
    assert got[1][0].tolist() == [1.0, 3.0, 5.0, 7.0] and got[1][1].tolist() == [2.0, 4.0, 6.0, 8.0]


def test_a_batch_the_ranks_cannot_share_equally_is_an_error():
    with pytest.raises(ValueError, match="7 rows, which 2 processes cannot share equally"):
        shard(torch.zeros(7), 0, 2)
    with pytest.raises(ValueError, match=r"batch_size must be in 1\.\.5 \(the data size\)"):
        EpochBatches(5, 8, seed=0, rank=0, world=1, start=0, stop=1)
