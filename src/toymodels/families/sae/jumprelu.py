"""JumpReLU SAE (Rajamanoharan et al. 2024, *Jumping Ahead*; docs/dictionary_learning.md).

f_i = z_i H(z_i - theta_i) with z the pre-activations and a learned threshold theta_i = exp(log_threshold_i) > 0 per
latent. The penalty is L0 = sum_i H(z_i - theta_i) (mean over the batch) times the config field ``l1``. H has no
useful gradient, so theta learns through the paper's straight-through pseudo-derivatives with a rectangle kernel of
bandwidth eps (config field ``sae_bandwidth``):
d f_i / d theta_i = -(theta_i / eps) K((z_i - theta_i) / eps) and d H / d theta_i = -(1 / eps) K((z_i - theta_i) / eps),
K(u) = 1 for |u| < 1/2; the gradient of H with respect to z is 0. Initial thresholds: ``sae_threshold``.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch
from jaxtyping import Float
from torch import Tensor

from toymodels.config import ExperimentConfig
from toymodels.families.sae.architecture import SAE, per_instance, register_architecture


def _kernel(z: Tensor, theta: Tensor, bandwidth: Tensor) -> Tensor:
    """(1 / eps) K((z - theta) / eps) with the rectangle kernel K."""
    return ((z - theta).abs() < bandwidth / 2).to(z.dtype) / bandwidth


class JumpReLUFn(torch.autograd.Function):
    """z H(z - theta), with the straight-through gradient for theta (module docstring)."""

    @staticmethod
    def forward(ctx: Any, z: Tensor, theta: Tensor, bandwidth: Tensor) -> Tensor:
        ctx.save_for_backward(z, theta, bandwidth)
        return z * (z > theta).to(z.dtype)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, Tensor, None]:
        z, theta, bandwidth = ctx.saved_tensors
        grad_theta = -(grad * theta * _kernel(z, theta, bandwidth)).sum(dim=1, keepdim=True)
        return grad * (z > theta).to(z.dtype), grad_theta, None


class StepFn(torch.autograd.Function):
    """H(z - theta), with the straight-through gradient for theta and none for z (module docstring)."""

    @staticmethod
    def forward(ctx: Any, z: Tensor, theta: Tensor, bandwidth: Tensor) -> Tensor:
        ctx.save_for_backward(z, theta, bandwidth)
        return (z > theta).to(z.dtype)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[None, Tensor, None]:
        z, theta, bandwidth = ctx.saved_tensors
        return None, -(grad * _kernel(z, theta, bandwidth)).sum(dim=1, keepdim=True), None


class JumpReLUSAE(SAE):
    name = "jumprelu"
    summary = "latents pass above a learned threshold per latent, L0 penalty (l1), straight-through gradients"
    fields = ("l1", "sae_threshold", "sae_bandwidth")
    extra_params = ("log_threshold",)

    @classmethod
    def buffer_names(cls) -> tuple[str, ...]:
        return ("bandwidth",)

    @classmethod
    def settings(cls, cfgs: Sequence[ExperimentConfig]) -> dict[str, Tensor]:
        L = cfgs[0].sae.sae_width
        log_t = per_instance(cfgs, lambda c: math.log(c.sae.sae_threshold))
        return {"log_threshold": log_t[:, None].expand(-1, L).contiguous(),
                "bandwidth": per_instance(cfgs, lambda c: c.sae.sae_bandwidth)}

    def threshold(self) -> Float[Tensor, "instances 1 latents"]:
        return self.log_threshold.exp().unsqueeze(1)

    def activate(self, pre: Float[Tensor, "instances batch latents"]) -> Float[Tensor, "instances batch latents"]:
        return JumpReLUFn.apply(pre, self.threshold(), self.bandwidth.view(-1, 1, 1))

    def penalty(self, pre: Float[Tensor, "instances batch latents"], f: Float[Tensor, "instances batch latents"]
                ) -> Float[Tensor, " instances"]:
        fired = StepFn.apply(pre, self.threshold(), self.bandwidth.view(-1, 1, 1))
        return fired.sum(dim=(1, 2)) / pre.shape[1]


register_architecture(JumpReLUSAE)
