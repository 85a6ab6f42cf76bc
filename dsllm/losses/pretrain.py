"""Pretraining's next-token loss: mean nats per target token, through the fused chunked head."""

import jax.numpy as jnp

from dsllm.losses.cross_entropy import chunked_cross_entropy


def next_token_loss(model, batch):
    """loss(model, batch) -> (mean nats over loss_mask, metrics).

    metrics carry sums (`nats`, `weight` = target tokens, `bytes`) so that the step can
    combine micro-batches exactly and evaluation can report bits-per-byte."""
    h_BSD = model.hidden(batch["inputs"], batch["segment_ids"], batch["positions"])
    mask_BS = batch["loss_mask"].astype(jnp.float32)
    nats = chunked_cross_entropy(h_BSD, model.head(), batch["targets"], mask_BS, model.cfg.loss_chunk)
    weight = jnp.sum(mask_BS)
    metrics = {"nats": nats, "weight": weight, "bytes": jnp.sum(batch["target_bytes"] * mask_BS)}
    return nats / jnp.maximum(weight, 1.0), metrics
