"""Bad input into sandflow.data: a clear error naming the problem, never an impossible level."""

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from sandflow.data import dequantize, dequantized_bits_per_dim, quantize


@given(
    values=st.lists(st.floats(allow_nan=False, width=32), min_size=1, max_size=20),
    levels=st.integers(2, 256),
)
def test_quantize_maps_every_non_nan_value_to_a_level(dtype, values, levels):
    y = torch.tensor(values, dtype=dtype)  # infinities and huge values included
    k = quantize(y, levels)
    assert k.dtype == torch.long and k.min() >= 0 and k.max() <= levels - 1
    inside = (y >= 0) & (y < 1)
    torch.testing.assert_close(k[inside], torch.floor(y[inside] * levels).long())


@given(
    n=st.integers(1, 20),
    where=st.integers(0, 19),
    levels=st.integers(2, 256),
)
def test_quantize_of_nan_is_refused(dtype, n, where, levels):
    y = torch.rand(n, dtype=dtype)
    y[where % n] = math.nan
    with pytest.raises(ValueError, match=r"quantize got NaN in y \(1 of \d+ values\)"):
        quantize(y, levels)


@pytest.mark.parametrize("levels", [0, 1, -3, 2.5, True, "17"])
def test_bad_levels_are_named(levels):
    with pytest.raises(ValueError, match="levels must be an int >= 2"):
        quantize(torch.rand(3), levels)
    with pytest.raises(ValueError, match="levels must be an int >= 2"):
        dequantize(torch.tensor([0, 1]), levels)
    with pytest.raises(ValueError, match="levels must be an int >= 2"):
        dequantized_bits_per_dim(torch.zeros(2), 4, levels)


@pytest.mark.parametrize(
    ("y", "match"),
    [
        (torch.tensor([0, 3]), "quantize expects a floating-point tensor, got a tensor of dtype"),
        ([0.1, 0.5], "quantize expects a floating-point tensor, got list"),
        (0.5, "got float"),
    ],
)
def test_quantize_of_something_else_is_a_type_error(y, match):
    with pytest.raises(TypeError, match=match):
        quantize(y)


@given(levels=st.integers(2, 256), seed=st.integers(0, 2**31 - 1))
def test_dequantize_stays_in_its_bin_in_both_dtypes(dtype, levels, seed):
    # the edges: the first and last levels, where rounding would leave [0, 1)
    x = torch.tensor([0, levels - 1] * 50 + [levels // 2])
    y = dequantize(x, levels, generator=torch.Generator().manual_seed(seed), dtype=dtype)
    assert y.dtype == dtype and (y >= 0).all() and (y < 1).all()
    assert torch.equal(quantize(y, levels), x)


def test_bits_per_dim_of_nan_is_nan():
    bpd = dequantized_bits_per_dim(torch.tensor([0.0, math.nan, -math.inf]), 64)
    assert torch.isfinite(bpd[0]) and torch.isnan(bpd[1]) and bpd[2] == math.inf
