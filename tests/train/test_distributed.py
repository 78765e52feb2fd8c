"""Two ranks on CPU (gloo), started by the test: identical parameters, equal to one process."""

import pytest
import torch

from sandflow.train.distributed import spawn
from tests.train import jobs


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    out = tmp_path_factory.mktemp("ranks")
    spawn(jobs.distributed_worker, 2, str(out))
    return [torch.load(out / f"rank{r}.pt", weights_only=True) for r in range(2)]


@pytest.fixture(scope="module")
def one_process():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    actnorm = []
    glow = jobs.glow_job(actnorm)
    realnvp = jobs.realnvp_job()
    torch.set_num_threads(threads)
    return {"glow": glow, "actnorm": actnorm, "realnvp": realnvp}


def test_every_rank_holds_identical_parameters_actnorm_included(ranks):
    first, second = ranks[0]["glow"], ranks[1]["glow"]
    assert any("loc" in name for name in first)
    for name, value in first.items():
        assert torch.equal(value, second[name]), name


def test_actnorm_is_initialised_from_the_global_first_batch(ranks, one_process):
    assert len(one_process["actnorm"]) == 2
    for rank in ranks:
        for mine, single in zip(rank["actnorm"], one_process["actnorm"], strict=True):
            assert bool(mine["initialized"])
            for name in ("loc", "log_scale"):
                torch.testing.assert_close(mine[name], single[name], rtol=1e-5, atol=1e-6)


def test_two_ranks_equal_one_process_with_the_same_global_batch(ranks, one_process):
    single = one_process["realnvp"].module.state_dict()
    for rank in ranks:
        for name, value in rank["realnvp"].items():
            torch.testing.assert_close(value, single[name], rtol=1e-5, atol=1e-6)


def test_metrics_are_averaged_over_ranks(ranks, one_process):
    single = [row["loss"] for row in one_process["realnvp"].history]
    for rank in ranks:
        assert [row["step"] for row in rank["history"]] == [1, 2, 3, 4, 5]
        assert [row["loss"] for row in rank["history"]] == pytest.approx(single, rel=1e-6)


def test_a_loss_that_bypasses_ddp_is_refused(ranks):
    assert "never called the module it was given" in ranks[0]["refused"]
