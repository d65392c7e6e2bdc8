"""The hypernetwork g_phi: MEND's gradient transform for each edited weight, plus step sizes.

For a linear weight W (out x in) the gradient of a loss over T tokens is sum_t delta_t u_t^T,
with u_t the layer input and delta_t the gradient at its output. The hypernetwork maps each
pair (u_t, delta_t) to (u~_t, delta~_t) and the update is -alpha * sum_t delta~_t u~_t^T, with a
learned step size alpha per weight (Mitchell et al. 2022; PropMEND paper, Appendix B.4).

As in MEND's reference configuration the pair is concatenated, normalised with running
statistics gathered during training, and passed through residual low-rank blocks that start as
the identity. `rank` is the bottleneck of those blocks: Table 25's "hidden dim 1920" is this
value in the reference configuration. With `shared=True` one transform serves all weights of
the same shape, with a per-weight scale and offset (FiLM) on each block's output.
"""

from __future__ import annotations

from collections import defaultdict

import torch
from torch import nn


class RunningNorm(nn.Module):
    """Per-feature mean and standard deviation, accumulated while training (Chan's update)."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.register_buffer("count", torch.zeros(()))
        self.register_buffer("mean", torch.zeros(size))
        self.register_buffer("m2", torch.zeros(size))

    @torch.no_grad()
    def update(self, x: torch.Tensor) -> None:
        n = x.shape[0]
        batch_mean = x.mean(0)
        total = self.count + n
        delta = batch_mean - self.mean
        self.m2 += ((x - batch_mean) ** 2).sum(0) + delta**2 * self.count * n / total
        self.mean += delta * n / total
        self.count.fill_(total)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.count < 2:
            raise RuntimeError("The hypernetwork's input statistics are empty: train it before editing.")
        std = (self.m2 / (self.count - 1)).sqrt()
        return (x - self.mean) / (std + 1e-7)


class ResidualBlock(nn.Module):
    """x + relu(film(up(down(x)))): exactly the identity at initialisation (`up` is zero)."""

    def __init__(self, size: int, rank: int, n_modes: int | None) -> None:
        super().__init__()
        self.down = nn.Linear(size, rank, bias=False)
        self.up = nn.Linear(rank, size)
        nn.init.normal_(self.down.weight)  # MEND initialises this factor from N(0, 1)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)
        self.scale = self.shift = None
        if n_modes is not None:
            self.scale = nn.Embedding(n_modes, size)
            self.shift = nn.Embedding(n_modes, size)
            nn.init.ones_(self.scale.weight)
            nn.init.zeros_(self.shift.weight)

    def forward(self, x: torch.Tensor, mode: int) -> torch.Tensor:
        hidden = self.up(self.down(x))
        if self.scale is not None:
            hidden = hidden * self.scale.weight[mode] + self.shift.weight[mode]
        return x + hidden.clamp(min=0)


class GradientTransform(nn.Module):
    """Maps token-wise gradient factors (u, delta) of one weight shape to edited factors."""

    def __init__(self, in_dim: int, out_dim: int, rank: int, n_hidden: int, n_modes: int | None) -> None:
        super().__init__()
        self.in_dim, self.out_dim = in_dim, out_dim
        self.norm = RunningNorm(in_dim + out_dim)
        self.blocks = nn.ModuleList(ResidualBlock(in_dim + out_dim, rank, n_modes) for _ in range(n_hidden + 1))

    def forward(self, u: torch.Tensor, delta: torch.Tensor, mode: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.cat((u, delta), -1)
        if self.training:
            self.norm.update(x)
        x = self.norm(x)
        for block in self.blocks:
            x = block(x, mode)
        return x.split([self.in_dim, self.out_dim], -1)


class HyperNetwork(nn.Module):
    """Gradient transforms for a set of weights, and one learned step size alpha per weight.

    `shapes` maps each edited weight's parameter name to its (out, in) shape, in a fixed order.
    """

    def __init__(
        self,
        shapes: dict[str, tuple[int, int]],
        rank: int,
        n_hidden: int = 1,
        shared: bool = False,
        edit_lr: float = 1e-4,
    ) -> None:
        super().__init__()
        self.names = list(shapes)
        self.slot: dict[str, tuple[str, int]] = {}  # weight name -> (transform key, FiLM mode)
        if shared:
            by_shape: dict[tuple[int, int], list[str]] = defaultdict(list)
            for name, shape in shapes.items():
                by_shape[tuple(shape)].append(name)
            transforms = {}
            for (out_dim, in_dim), names in by_shape.items():
                key = f"{out_dim}x{in_dim}"
                transforms[key] = GradientTransform(in_dim, out_dim, rank, n_hidden, len(names))
                self.slot.update({name: (key, mode) for mode, name in enumerate(names)})
        else:
            transforms = {}
            for name, (out_dim, in_dim) in shapes.items():
                key = name.replace(".", "#")
                transforms[key] = GradientTransform(in_dim, out_dim, rank, n_hidden, None)
                self.slot[name] = (key, 0)
        self.transforms = nn.ModuleDict(transforms)
        self.step_sizes = nn.Parameter(torch.full((len(self.names),), float(edit_lr)))

    def transform_parameters(self) -> list[nn.Parameter]:
        """Everything but the step sizes (they train with their own learning rate)."""
        return list(self.transforms.parameters())

    def updates(self, factors: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> dict[str, torch.Tensor]:
        """The weight update of each edited weight from its gradient factors (u: T x in, delta: T x out)."""
        result = {}
        for index, name in enumerate(self.names):
            u, delta = factors[name]
            key, mode = self.slot[name]
            new_u, new_delta = self.transforms[key](u, delta, mode)
            result[name] = -self.step_sizes[index] * (new_delta.T @ new_u)
        return result
