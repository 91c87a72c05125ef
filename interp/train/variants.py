"""The optimiser variants of Hu et al. (Fig. 5) and Grokfast (Lee et al. 2024), for a stack of
M runs, each with its own noise scales, filter settings and noise generator.

Per step: ``with perturbed_weights():`` forward and backward (Hu et al.: each weight W
replaced by W + sigma eps at every forward, eps ~ N(0, 1); the gradient taken there is applied
to the clean W); ``filter_gradients()`` (Grokfast: g <- g + lamb h, with h the EMA
h <- alpha h + (1 - alpha) g, initialised to the first gradient, or the mean of the last
``filter_window`` gradients once the window is full); the optimiser step;
``add_update_noise(lr)`` (Hu et al.: W <- W + lr (dW + n), n ~ N(0, sigma^2)).

Each run draws its noise from its own generator (seeded from its schedule seed + 1), weight by
weight in optimiser order, exactly the draws it makes when trained alone; a run whose scale is
0 draws nothing. ``run_state``/``load_run_states`` keep each run's part in the single-run
resume format, so a killed run resumes bit-identically, alone or in its stack.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

import torch

from interp.config import OptimConfig
from interp.train.flat import FlatLayout


def variants_active(config: OptimConfig) -> bool:
    """Whether a run uses any variant (and so keeps variant state)."""
    return bool(config.weight_noise or config.update_noise or config.grad_filter)


class StackedVariants:
    """Weight noise, gradient filters and update noise around the step of a stack.

    flat: the stack's flat trainable weights [M, P] (``interp.train.flat``), laid out by
    ``layout``; configs: each run's optimiser settings (the filter kind and window shared, as
    ``interp.train.stacks`` requires); seeds: each run's noise seed.
    """

    def __init__(self, flat: torch.Tensor, layout: FlatLayout, configs: Sequence[OptimConfig],
                 seeds: Sequence[int]):
        self.flat, self.layout, self.configs = flat, layout, list(configs)
        device, dtype = flat.device, flat.dtype
        self.generators = [torch.Generator(device=device).manual_seed(seed) for seed in seeds]
        self.weight_noise = [c.weight_noise for c in configs]
        self.update_noise = torch.tensor([c.update_noise for c in configs],
                                         dtype=torch.float64, device=device)[:, None]
        self.filter = configs[0].grad_filter
        self.window = configs[0].filter_window
        alpha = torch.tensor([c.filter_alpha for c in configs], dtype=torch.float64)
        self.filter_alpha = alpha.to(device=device, dtype=dtype)[:, None]
        self.filter_rest = (1 - alpha).to(device=device, dtype=dtype)[:, None]
        self.filter_lamb = torch.tensor([c.filter_lamb for c in configs], dtype=torch.float64
                                        ).to(device=device, dtype=dtype)[:, None]
        self.buffer: torch.Tensor | None = None  # EMA h [M, P], or the window [M, w, P]
        self.seen = 0  # gradients the filter has taken in

    def _noise(self, sigmas: Sequence[float]) -> torch.Tensor:
        """[M, P] sigma_m * N(0, 1), each run's drawn from its own generator weight by weight
        in optimiser order (the draws it makes alone), zero where its sigma is 0."""
        flat = self.flat
        rows = [sigma * self.layout.row([torch.randn(shape, generator=generator,
                                                     device=flat.device, dtype=flat.dtype)
                                         for shape in self.layout.shapes])
                if sigma else torch.zeros_like(flat[0])
                for sigma, generator in zip(sigmas, self.generators, strict=True)]
        return torch.stack(rows)

    @contextmanager
    def perturbed_weights(self) -> Iterator[None]:
        """Add each run's N(0, weight_noise^2) to its weights inside the block, then restore
        the exact clean values (gradients computed inside stay)."""
        if not any(self.weight_noise):
            yield
            return
        clean = self.flat.detach().clone()
        with torch.no_grad():
            self.flat.add_(self._noise(self.weight_noise))
        try:
            yield
        finally:
            with torch.no_grad():
                self.flat.copy_(clean)

    @torch.no_grad()
    def filter_gradients(self) -> None:
        """Grokfast's EMA or MA filter, in place on the gradient."""
        if self.filter is None:
            return
        if self.flat.grad is None:
            self.flat.grad = torch.zeros_like(self.flat)
        grad = self.flat.grad
        if self.filter == "ema":
            if self.buffer is None:
                self.buffer = grad.clone()
            else:
                self.buffer.mul_(self.filter_alpha).add_(grad * self.filter_rest)
            filtered = self.buffer
        else:
            if self.buffer is None:
                self.buffer = grad.new_zeros(grad.shape[0], self.window, grad.shape[1])
            self.buffer[:, self.seen % self.window] = grad
            filtered = self.buffer.mean(dim=1) if self.seen + 1 >= self.window else None
        self.seen += 1
        if filtered is not None:
            grad.add_(filtered * self.filter_lamb)

    @torch.no_grad()
    def add_update_noise(self, rates: torch.Tensor, spans: Sequence[tuple[int, int]]) -> None:
        """W <- W + lr * n with n ~ N(0, update_noise^2): ``rates`` [M, G] the learning rate
        each parameter group took this step, group g the columns ``spans[g]``
        (``StackedOptimizer.step``, ``.spans``)."""
        sigmas = self.update_noise[:, 0].tolist()
        if not any(sigmas):
            return
        noise = self._noise([1.0 if s else 0.0 for s in sigmas])
        for g, (start, stop) in enumerate(spans):
            scale = (rates[:, g:g + 1] * self.update_noise).to(self.flat.dtype)
            self.flat[:, start:stop].add_(noise[:, start:stop] * scale)

    def run_state(self, index: int) -> dict[str, torch.Tensor]:
        """Run ``index``'s variant state in the single-run format (empty if it uses none)."""
        if not variants_active(self.configs[index]):
            return {}
        state = {"generator": self.generators[index].get_state(),
                 "seen": torch.tensor(self.seen)}
        if self.buffer is not None:
            for position, piece in enumerate(self.layout.pieces(self.buffer[index])):
                state[f"buffer/{position}"] = piece.clone()
        return state

    def load_run_states(self, states: Sequence[Mapping[str, torch.Tensor]]) -> None:
        """Continue from the runs' saved states (``run_state`` form)."""
        for generator, state, config in zip(self.generators, states, self.configs,
                                            strict=True):
            if variants_active(config):
                generator.set_state(state["generator"])
        active = [s for s, c in zip(states, self.configs, strict=True) if variants_active(c)]
        if not active:
            return
        self.seen = int(active[0]["seen"])
        if self.filter is not None and "buffer/0" in active[0]:
            lead = 1 if self.filter == "ma" else 0
            positions = range(len(self.layout.names))
            self.buffer = torch.stack([
                self.layout.row([s[f"buffer/{p}"] for p in positions], lead=lead)
                for s in states]).to(self.flat)
