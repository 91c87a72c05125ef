"""Student-teacher regression (Omnigrok, Liu et al. 2022; Kumar et al. appendix 8.3.1): a
random teacher MLP labels standard Gaussian inputs. The data are stored in the run
directory (``Task.stored``)."""

from __future__ import annotations

import torch

from interp.config import TeacherTask
from interp.tasks.base import Task


def teacher_task(config: TeacherTask, stored: dict[str, torch.Tensor] | None = None) -> Task:
    """Draw (or, given ``stored``, restore) inputs [N, input_dim] and teacher outputs
    [N, output_dim]; the first n_train are train."""
    if stored is None:
        from interp.models.mlp import MLP

        teacher = MLP(config.input_dim, config.hidden, config.output_dim, config.activation,
                      True, torch.Generator().manual_seed(config.teacher_seed))
        generator = torch.Generator().manual_seed(config.data_seed)
        inputs = torch.randn(config.n_train + config.n_test, config.input_dim,
                             generator=generator)
        with torch.no_grad():
            stored = {"inputs": inputs, "targets": teacher(inputs)}
    n = config.n_train + config.n_test
    return Task(stored["inputs"], stored["targets"], torch.arange(config.n_train),
                torch.arange(config.n_train, n), n_outputs=config.output_dim,
                target_type="real", stored=stored)
