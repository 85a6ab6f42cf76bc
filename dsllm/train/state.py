"""The training state and where it lives: parameters, optimizer state and step, sharded by the rules.

The state is a plain pytree {"params", "opt_state", "step"}; the model's structure (an NNX
graphdef) is static and rebuilt with nnx.merge inside the step. Shapes and shardings come from
abstract evaluation, so nothing is allocated before it is placed on its devices.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import optax
from flax import nnx
from jax.sharding import NamedSharding, PartitionSpec as P

from dsllm import optim, sharding
from dsllm.scaling import flops as scaling_flops
from dsllm.model.transformer import Transformer


def _nested(flat_items):
    out = {}
    for path, value in flat_items:
        node = out
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = value
    return out


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """What is known about a model without allocating it."""
    graphdef: nnx.GraphDef
    shapes: dict   # pure dict of jax.ShapeDtypeStruct
    axes: dict     # the same tree, logical axis tuples at the leaves

    @property
    def param_count(self) -> int:
        return sum(math.prod(x.shape) for x in jax.tree.leaves(self.shapes))


def model_spec(model_cfg) -> ModelSpec:
    abstract = nnx.eval_shape(lambda: Transformer(model_cfg, nnx.Rngs(params=0)))
    graphdef, state = nnx.split(abstract)
    flat = list(nnx.to_flat_state(state))
    shapes = _nested((path, jax.ShapeDtypeStruct(v.shape, v.dtype)) for path, v in flat)
    axes = _nested((path, tuple(v.get_metadata()["axes"])) for path, v in flat)
    return ModelSpec(graphdef, shapes, axes)


def init_params(model_cfg, seed: int) -> dict:
    return nnx.to_pure_dict(nnx.split(Transformer(model_cfg, nnx.Rngs(params=seed)))[1])


def flops_per_token(m, seq_len: int) -> int:
    """DESIGN.md's count for MFU: 6 x matmul parameters (output head included, embedding lookup
    not) + 6 L d s for causal attention (half of the dense 12 L d s)."""
    return scaling_flops.train_flops_per_token(m.n_layers, m.d_model, seq_len, m.vocab_size, m.ffn_dim,
                                               m.n_heads, m.n_kv_heads)


def paper_m(m, seq_len: int) -> int:
    """The paper's model scale M: non-embedding FLOPs per token, 72 L d^2 + 12 L d s."""
    return scaling_flops.m_flops(m.n_layers, m.d_model, seq_len)


@dataclasses.dataclass
class TrainSetup:
    mesh: jax.sharding.Mesh
    spec: ModelSpec
    optimizer: optax.GradientTransformation
    schedule: callable
    state_shardings: dict
    batch_sharding: NamedSharding


def make_setup(cfg, mesh) -> TrainSetup:
    spec = model_spec(cfg.model)
    optimizer, schedule = optim.make_optimizer(cfg.optim, cfg.train.steps, spec.axes)
    param_sh = sharding.tree_shardings(spec.axes, spec.shapes, mesh)
    replicated = NamedSharding(mesh, P())
    abstract_opt = jax.eval_shape(optimizer.init, spec.shapes)
    # Adam's moments mirror the parameters and take their shardings; counters are replicated.
    opt_sh = optax.tree_map_params(optimizer, lambda _, s: s, abstract_opt, param_sh,
                                   transform_non_params=lambda _: replicated)
    state_sh = {"params": param_sh, "opt_state": opt_sh, "step": replicated}
    return TrainSetup(mesh, spec, optimizer, schedule, state_sh, sharding.batch_sharding(mesh))


def abstract_state(setup: TrainSetup) -> dict:
    """ShapeDtypeStructs with shardings: the restore target of a checkpoint on this mesh."""
    shapes = {"params": setup.spec.shapes, "opt_state": jax.eval_shape(setup.optimizer.init, setup.spec.shapes),
              "step": jax.ShapeDtypeStruct((), jnp.int32)}
    return jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), shapes,
                        setup.state_shardings)


def init_state(cfg, setup: TrainSetup) -> dict:
    """A fresh state, created directly in its shards (never whole on one device)."""
    def init():
        params = init_params(cfg.model, cfg.train.seed)
        return {"params": params, "opt_state": setup.optimizer.init(params), "step": jnp.zeros((), jnp.int32)}

    with jax.set_mesh(setup.mesh):
        return jax.jit(init, out_shardings=setup.state_shardings)()
