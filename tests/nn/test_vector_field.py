import pytest
import torch

from sandflow.nn import MLPVectorField, SinusoidalEmbedding


def test_shapes_and_time_broadcast():
    field = MLPVectorField(3, hidden=(8,))
    torch.nn.init.normal_(field.net[-1].weight)
    x = torch.randn(4, 5, 3)
    scalar = field(x, torch.tensor(0.3))
    assert scalar.shape == (4, 5, 3)
    torch.testing.assert_close(field(x, torch.full((4, 5), 0.3)), scalar)
    assert not torch.allclose(field(x, torch.tensor(0.7)), scalar)


def test_starts_at_zero_and_reuses_the_sinusoidal_embedding():
    field = MLPVectorField(2, hidden=(8, 8), embedding_dim=6)
    assert isinstance(field.embed, SinusoidalEmbedding)
    assert field(torch.randn(7, 2), torch.rand(7)).abs().max() == 0


def test_context_is_required_and_used():
    field = MLPVectorField(2, hidden=(8,), context=3)
    torch.nn.init.normal_(field.net[-1].weight)
    x, t = torch.randn(4, 2), torch.tensor(0.5)
    out = field(x, t, torch.randn(4, 3))
    assert out.shape == (4, 2) and not torch.allclose(out, field(x, t, torch.randn(4, 3)))
    assert field(x, t, torch.randn(3)).shape == (4, 2)  # one context for the batch
    with pytest.raises(ValueError, match="conditional"):
        field(x, t)


def test_double_precision():
    field = MLPVectorField(2, hidden=(8,)).double()
    assert field(torch.randn(3, 2, dtype=torch.float64), torch.tensor(0.1)).dtype == torch.float64


@pytest.mark.parametrize("bad", [{"features": 0}, {"features": 2, "context": -1}])
def test_bad_sizes(bad):
    with pytest.raises(ValueError, match="must be an int"):
        MLPVectorField(**bad)
