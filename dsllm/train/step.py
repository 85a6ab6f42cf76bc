"""The one train step: any loss(model, batch) -> (loss, metrics), gradient accumulation, AdamW.

Pretraining is the one loss so far; SFT and DPO (not written yet) are meant to differ only in the
loss module passed here and in their data.
A loss's metrics may carry `weight` (e.g. the number of target tokens): micro-batches are
then combined in proportion to it, so accumulating M micro-batches gives the same gradient
as one batch of the whole (a loss without `weight` counts each micro-batch equally).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax
from flax import nnx
from jax.sharding import NamedSharding, PartitionSpec as P

from dsllm.train.state import TrainSetup


def _split_micro(batch, micro_batches: int):
    """[B, ...] -> [M, B/M, ...]; micro-batch j takes rows j, M + j, 2M + j, ... so that every
    micro-batch stays spread over the devices that hold the batch."""
    def split(x):
        B = x.shape[0]
        if B % micro_batches:
            raise ValueError(f"batch of {B} rows does not split into train.micro_batches={micro_batches}")
        return jnp.swapaxes(x.reshape(B // micro_batches, micro_batches, *x.shape[1:]), 0, 1)
    return jax.tree.map(split, batch)


def loss_and_grads(graphdef, loss_fn, params, batch, micro_batches: int = 1):
    """(loss, metrics, grads), the micro-batches combined by their `weight`."""
    def f(p, b):
        loss, metrics = loss_fn(nnx.merge(graphdef, p), b)
        return loss, metrics

    grad_fn = jax.value_and_grad(f, has_aux=True)
    if micro_batches == 1:
        (loss, metrics), grads = grad_fn(params, batch)
        return loss, metrics, grads

    def body(acc, mb):
        (loss, metrics), grads = grad_fn(params, mb)
        w = metrics.get("weight", jnp.ones((), jnp.float32))
        acc_grads, acc_loss, acc_metrics = acc
        acc_grads = jax.tree.map(lambda a, g: a + w * g.astype(jnp.float32), acc_grads, grads)
        acc_metrics = jax.tree.map(jnp.add, acc_metrics, {**metrics, "weight": w})
        return (acc_grads, acc_loss + w * loss, acc_metrics), None

    micro = _split_micro(batch, micro_batches)
    first = jax.tree.map(lambda x: x[0], micro)
    metrics_shape = jax.eval_shape(lambda: f(params, first)[1])
    zero_metrics = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), {**metrics_shape, "weight": jax.ShapeDtypeStruct((), jnp.float32)})
    zero_grads = jax.tree.map(lambda p: jnp.zeros(p.shape, jnp.float32), params)
    (grads, loss_sum, metrics), _ = jax.lax.scan(body, (zero_grads, jnp.zeros((), jnp.float32), zero_metrics), micro)
    total = jnp.maximum(metrics["weight"], 1e-9)
    grads = jax.tree.map(lambda g: g / total, grads)
    if "weight" not in metrics_shape:
        metrics = {k: v for k, v in metrics.items() if k != "weight"}
    return loss_sum / total, metrics, grads


def make_train_step(setup: TrainSetup, loss_fn, micro_batches: int = 1):
    """jit(step)(state, batch) -> (state, metrics) with explicit shardings; the state is donated."""
    graphdef, optimizer, schedule = setup.spec.graphdef, setup.optimizer, setup.schedule

    def step(state, batch):
        loss, metrics, grads = loss_and_grads(graphdef, loss_fn, state["params"], batch, micro_batches)
        updates, opt_state = optimizer.update(grads, state["opt_state"], state["params"])
        params = optax.apply_updates(state["params"], updates)
        metrics = {**metrics, "loss": loss, "grad_norm": optax.tree.norm(grads),
                   "learning_rate": schedule(state["step"])}
        return {"params": params, "opt_state": opt_state, "step": state["step"] + 1}, metrics

    replicated = NamedSharding(setup.mesh, P())
    return jax.jit(step, in_shardings=(setup.state_shardings, setup.batch_sharding),
                   out_shardings=(setup.state_shardings, replicated), donate_argnums=0)


def make_eval_step(setup: TrainSetup, loss_fn, micro_batches: int = 1):
    """jit(eval)(params, batch) -> the loss module's metrics summed over the batch (for loss and
    bits-per-byte), in the training's micro-batches so that evaluation fits wherever training does."""
    graphdef = setup.spec.graphdef

    def evaluate(params, batch):
        def one(mb):
            return loss_fn(nnx.merge(graphdef, params), mb)[1]
        if micro_batches == 1:
            return one(batch)
        return jax.tree.map(lambda x: x.sum(0), jax.lax.map(one, _split_micro(batch, micro_batches)))

    replicated = NamedSharding(setup.mesh, P())
    return jax.jit(evaluate, in_shardings=(setup.state_shardings["params"], setup.batch_sharding),
                   out_shardings=replicated)
