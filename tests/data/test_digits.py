import math
import sys
from collections import Counter

import pytest
import torch

from sandflow.data import (
    Digits,
    dequantize,
    dequantized_bits_per_dim,
    digits,
    quantize,
    to_symmetric,
    to_unit_interval,
)


@pytest.fixture(scope="module")
def data():
    return digits()


def test_shapes_and_levels(data):
    assert isinstance(data, Digits)
    assert data.train.shape == (1438, 1, 8, 8) and data.test.shape == (359, 1, 8, 8)
    assert data.train_labels.shape == (1438,) and data.test_labels.shape == (359,)
    assert data.shape == (1, 8, 8) and data.levels == 17
    for images in (data.train, data.test):
        assert images.dtype == torch.long
        assert images.min() == 0 and images.max() == 16
    labels = torch.cat([data.train_labels, data.test_labels])
    assert labels.dtype == torch.long and set(labels.tolist()) == set(range(10))


def test_split_is_a_deterministic_partition(data):
    from sklearn.datasets import load_digits

    bunch = load_digits()

    def keys(images, labels):
        return Counter(
            (tuple(image.flatten().tolist()), int(label))
            for image, label in zip(images, labels, strict=True)
        )

    full = keys(torch.from_numpy(bunch.images).long(), bunch.target)
    assert keys(data.train, data.train_labels) + keys(data.test, data.test_labels) == full

    again = digits()
    assert torch.equal(again.train, data.train) and torch.equal(again.test, data.test)
    assert torch.equal(again.test_labels, data.test_labels)
    assert not torch.equal(digits(seed=1).test, data.test)
    assert len(digits(test_fraction=0.5).test) == 898


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1e-4])
def test_bad_test_fraction(fraction):
    with pytest.raises(ValueError, match="test_fraction"):
        digits(test_fraction=fraction)


def test_missing_scikit_learn_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(ImportError, match=r'pip install "sandflow\[data\]"'):
        digits()


def test_dequantize_lies_in_bins_and_floors_back(data, dtype):
    y = dequantize(data.train, generator=torch.Generator().manual_seed(0), dtype=dtype)
    assert y.dtype == dtype and y.shape == data.train.shape
    assert y.min() >= 0 and y.max() < 1
    assert torch.equal(torch.floor(y * 17).long(), data.train)
    assert torch.equal(quantize(y), data.train)
    # the noise spreads each level over its whole bin
    offsets = y * 17 - data.train
    assert offsets.min() < 0.01 and offsets.max() > 0.99


def test_dequantize_never_rounds_onto_the_bin_edge():
    # In float32, 16 + u rounds up to 17 for about one u in a million; this seed
    # draws three such u among its first million, so (16 + u) / 17 hits 1.0.
    x = torch.full((1_000_000,), 16)
    naive = (x + torch.rand(x.shape, generator=torch.Generator().manual_seed(20))) / 17
    assert naive.max() == 1
    y = dequantize(x, generator=torch.Generator().manual_seed(20))
    assert y.max() < 1
    assert torch.equal(quantize(y), x)
    assert torch.equal(torch.floor(y * 17).long(), x)


def test_dequantize_generator_is_reproducible():
    x = torch.arange(17)
    a = dequantize(x, generator=torch.Generator().manual_seed(3))
    b = dequantize(x, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


def test_dequantize_bad_input():
    with pytest.raises(TypeError, match="integer tensor"):
        dequantize(torch.rand(3))
    with pytest.raises(ValueError, match=r"0\.\.16.*0\.\.17"):
        dequantize(torch.tensor([0, 17]))
    with pytest.raises(ValueError, match=r"0\.\.3"):
        dequantize(torch.tensor([-1, 2]), levels=4)
    with pytest.raises(TypeError, match="floating dtype"):
        dequantize(torch.tensor([1, 2]), dtype=torch.int32)


def test_quantize_clips_out_of_range_values():
    assert quantize(torch.tensor([-0.3, 0.0, 0.999, 1.0, 2.5]), levels=4).tolist() == [
        0,
        0,
        3,
        3,
        3,
    ]


def test_symmetric_round_trip():
    y = torch.rand(100, dtype=torch.float64)
    z = to_symmetric(y)
    assert z.min() >= -1 and z.max() < 1
    torch.testing.assert_close(to_unit_interval(z), y)


def test_dequantized_bits_per_dim_uniform_density():
    assert dequantized_bits_per_dim(torch.tensor(0.0), 64).item() == pytest.approx(math.log2(17))
    # uniform on [-1, 1)^64 has log-density -64 log 2
    assert dequantized_bits_per_dim(
        torch.tensor(-64 * math.log(2)), 64, scale=2
    ).item() == pytest.approx(math.log2(17))
    assert dequantized_bits_per_dim(0.0, 10, levels=256).item() == pytest.approx(8.0)


def test_dequantized_bits_per_dim_hand_computation():
    log_prob = torch.tensor([-12.5, 30.0, 0.25], dtype=torch.float64)
    expected = (-log_prob + 64 * math.log(17)) / (64 * math.log(2))
    torch.testing.assert_close(dequantized_bits_per_dim(log_prob, 64), expected)
    expected_sym = (-log_prob - 64 * math.log(2) + 64 * math.log(17)) / (64 * math.log(2))
    torch.testing.assert_close(dequantized_bits_per_dim(log_prob, 64, scale=2), expected_sym)


def test_dequantized_bits_per_dim_of_a_histogram_density_is_the_discrete_code_length():
    # p(y) = levels * P(floor(levels * y)) per pixel: its bpd is -log2 P(k) / D exactly.
    probs = torch.softmax(torch.randn(17, dtype=torch.float64), 0)
    k = torch.randint(17, (5, 64))
    y = dequantize(k, dtype=torch.float64)
    log_density = (math.log(17) + probs[quantize(y)].log()).sum(-1)
    expected = -probs[k].log2().sum(-1) / 64
    torch.testing.assert_close(dequantized_bits_per_dim(log_density, 64), expected)


def test_dequantized_bits_per_dim_bad_arguments():
    with pytest.raises(ValueError, match="num_dims"):
        dequantized_bits_per_dim(torch.tensor(0.0), 0)
    with pytest.raises(ValueError, match="levels"):
        dequantized_bits_per_dim(torch.tensor(0.0), 64, levels=1)
    with pytest.raises(ValueError, match="scale"):
        dequantized_bits_per_dim(torch.tensor(0.0), 64, scale=-2.0)
