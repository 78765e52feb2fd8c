"""The 8x8 digits images (scikit-learn's bundled copy), split into train and test."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["Digits", "digits"]


@dataclass(frozen=True, eq=False)
class Digits:
    """The 8x8 digits as integer grey levels ``0 .. levels - 1``, split into train and test.

    Attributes:
        train: training images, ``torch.long`` of shape ``(N_train, 1, 8, 8)``.
        test: test images, ``torch.long`` of shape ``(N_test, 1, 8, 8)``.
        train_labels: digit classes ``0..9`` of the training images, shape ``(N_train,)``.
        test_labels: digit classes of the test images, shape ``(N_test,)``.
        levels: number of grey levels (17: each pixel counts the 0..16 on pixels
            of a 4 x 4 block of the original 32 x 32 bitmaps).

    Example:
        >>> data = sandflow.data.digits()
        >>> data.train.shape, data.test.shape, data.levels
        (torch.Size([1438, 1, 8, 8]), torch.Size([359, 1, 8, 8]), 17)
    """

    train: Tensor
    test: Tensor
    train_labels: Tensor
    test_labels: Tensor
    levels: int = 17

    @property
    def shape(self) -> torch.Size:
        """Shape of one image, ``(1, 8, 8)``.

        Example:
            >>> sandflow.data.digits().shape
            torch.Size([1, 8, 8])
        """
        return self.train.shape[1:]


def digits(test_fraction: float = 0.2, seed: int = 0) -> Digits:
    """The 1,797 8x8 digits images of ``sklearn.datasets.load_digits``, split at random.

    The split is a ``torch.randperm`` of the images under a generator seeded
    with ``seed``: the first ``round(test_fraction * 1797)`` indices form the
    test set, the rest the training set (same seed, same split). Nothing is
    downloaded: scikit-learn ships the images. For a flow or a diffusion model,
    dequantise the levels with :func:`sandflow.data.dequantize` and report
    :func:`sandflow.data.dequantized_bits_per_dim`.

    Args:
        test_fraction: fraction of the images held out for testing, in ``(0, 1)``.
        seed: seed of the random split.

    Returns:
        The split images and labels as a :class:`Digits`.

    Raises:
        ImportError: if scikit-learn (the ``[data]`` extra) is not installed.
        ValueError: if ``test_fraction`` leaves an empty train or test set.

    Example:
        >>> data = sandflow.data.digits(test_fraction=0.5)
        >>> len(data.train) + len(data.test), int(data.train.max())
        (1797, 16)
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError as error:
        raise ImportError(
            'sandflow.data.digits needs scikit-learn: pip install "sandflow[data]"'
        ) from error
    bunch = load_digits()
    images = torch.from_numpy(bunch.images).round().long().unsqueeze(1)
    labels = torch.from_numpy(bunch.target).long()
    num_test = round(test_fraction * len(images))
    if not 0 < num_test < len(images):
        raise ValueError(
            f"test_fraction={test_fraction} leaves an empty train or test set of the "
            f"{len(images)} images; pass a value in (0, 1)"
        )
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))
    test, train = order[:num_test], order[num_test:]
    return Digits(images[train], images[test], labels[train], labels[test])
