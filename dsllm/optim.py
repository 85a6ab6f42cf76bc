"""AdamW with global-norm clipping, the DeepSeek multi-step schedule and cosine.

Weight decay (0.1) applies to the matrices (embedding, projections, output head) and not to
the RMSNorm gains: decaying a gain pulls it toward zero, which fights the normalisation it
exists to scale and buys no regularisation (the usual choice of Megatron-LM and MaxText).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax


def multistep_boundaries(total_steps: int, decay_fractions=(0.8, 0.9)) -> list[int]:
    """The steps at which the multi-step schedule drops (the first step at the lower rate)."""
    return [int(round(f * total_steps)) for f in decay_fractions]


def multistep_schedule(peak_lr: float, warmup_steps: int, total_steps: int,
                       decay_fractions=(0.8, 0.9), decay_factors=(0.316, 0.1)):
    """Linear warm-up to the peak, the peak until 80% of training, 31.6% of it until 90%, then 10%.

    The paper places the steps at fractions of the training tokens; with a constant batch
    that is the same fraction of the steps."""
    if len(decay_fractions) != len(decay_factors):
        raise ValueError("optim.decay_fractions and optim.decay_factors must have the same length")
    boundaries = multistep_boundaries(total_steps, decay_fractions)

    def schedule(step):
        step = jnp.asarray(step, jnp.float32)
        lr = peak_lr * jnp.minimum(1.0, (step + 1) / max(warmup_steps, 1))
        for boundary, factor in zip(boundaries, decay_factors):
            lr = jnp.where(step >= boundary, peak_lr * factor, lr)
        return lr

    return schedule


def cosine_schedule(peak_lr: float, warmup_steps: int, total_steps: int, min_lr_ratio: float = 0.1):
    return optax.warmup_cosine_decay_schedule(
        init_value=0.0, peak_value=peak_lr, warmup_steps=max(warmup_steps, 1),
        decay_steps=max(total_steps, warmup_steps + 1), end_value=peak_lr * min_lr_ratio)


def make_schedule(o, total_steps: int):
    if o.schedule == "multistep":
        return multistep_schedule(o.peak_lr, o.warmup_steps, total_steps, tuple(o.decay_fractions),
                                  tuple(o.decay_factors))
    if o.schedule == "cosine":
        return cosine_schedule(o.peak_lr, o.warmup_steps, total_steps, o.min_lr_ratio)
    raise ValueError(f"optim.schedule={o.schedule!r}; choose multistep or cosine")


def decay_mask(param_axes):
    """True for the weights that get weight decay, from their logical axes: all but the norm gains
    (which stay rank 1 per layer, `norm`, also when stacked over layers)."""
    return jax.tree.map(lambda axes: "norm" not in axes, param_axes, is_leaf=lambda a: isinstance(a, tuple))


def make_optimizer(o, total_steps: int, param_axes) -> tuple[optax.GradientTransformation, callable]:
    schedule = make_schedule(o, total_steps)
    tx = optax.chain(
        optax.clip_by_global_norm(o.clip_norm),
        optax.adamw(schedule, b1=o.beta1, b2=o.beta2, eps=o.eps, weight_decay=o.weight_decay,
                    mask=decay_mask(param_axes)),
    )
    return tx, schedule
