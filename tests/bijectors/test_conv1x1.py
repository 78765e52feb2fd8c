import pytest
import torch

from sandflow.bijectors import Conv1x1, ShapeError
from sandflow.testing import perturb


@pytest.mark.parametrize("lu", [True, False])
def test_log_det_is_positions_times_log_abs_det_w(lu):
    conv = perturb(Conv1x1(5, lu=lu)).double()
    _, log_det = conv.forward_and_log_det(torch.randn(2, 5, 3, 4, dtype=torch.float64))
    expected = 12 * torch.linalg.slogdet(conv.matrix())[1]
    torch.testing.assert_close(log_det, expected.expand(2))


def test_lu_inverse_matrix_by_triangular_solves():
    conv = perturb(Conv1x1(6)).double()
    eye = torch.eye(6, dtype=torch.float64)
    torch.testing.assert_close(conv.matrix() @ conv.inverse_matrix(), eye)


def test_starts_as_a_rotation():
    w = Conv1x1(4).matrix().detach()
    torch.testing.assert_close(w @ w.T, torch.eye(4), atol=1e-5, rtol=0)


def test_lu_factors_stay_triangular_after_training_steps():
    conv = Conv1x1(4)
    optimizer = torch.optim.SGD(conv.parameters(), lr=0.01)
    for _ in range(3):
        y, log_det = conv.forward_and_log_det(torch.randn(8, 4, 2, 2))
        loss = (y**2).sum() - log_det.sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    w = conv.matrix().detach()
    torch.testing.assert_close(conv.inverse_matrix().detach() @ w, torch.eye(4), atol=1e-4, rtol=0)


def test_wrong_channels_are_named():
    with pytest.raises(ShapeError, match="built for 4 features along dim -3"):
        Conv1x1(4)(torch.randn(3, 2, 2))
