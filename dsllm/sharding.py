"""Mesh construction and the one table that maps logical axis names to mesh axes.

Mesh axes: `data` (pure data parallel: weights replicated), `fsdp` (data parallel with weights,
gradients and optimizer state sharded: ZeRO-3), `tensor` (Megatron-style tensor parallel over
heads and the FFN width). The batch is split over data x fsdp.

Parameters name their dimensions with the logical axes below (dsllm/model/*); activations are
constrained at block boundaries with the same names. A dimension whose size the mesh axis does
not divide is replicated instead, and that choice is reported once (never silently).
"""

from __future__ import annotations

import logging
import math

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

MESH_AXES = ("data", "fsdp", "tensor")

# logical axis -> mesh axis (or tuple of mesh axes), None = replicated
RULES: dict[str, str | tuple[str, ...] | None] = {
    "batch": ("data", "fsdp"),
    "embed": "fsdp",        # the d_model side of every weight: FSDP shards here
    "vocab": "tensor",
    "heads": "tensor",
    "kv_heads": "tensor",
    "mlp": "tensor",
    "head_dim": None,
    "layers": None,         # the scanned stack: every device holds its share of every layer
    "norm": None,
    "seq": None,
    "embed_act": None,      # d_model of activations: the batch is what FSDP splits
}

_reported: set = set()


def make_mesh(data: int = 1, fsdp: int = -1, tensor: int = 1, devices=None) -> Mesh:
    """A (data, fsdp, tensor) mesh; one size may be -1 to take the devices the others leave."""
    devices = jax.devices() if devices is None else devices
    sizes = [data, fsdp, tensor]
    if sizes.count(-1) > 1:
        raise ValueError(f"mesh {dict(zip(MESH_AXES, sizes))}: at most one axis may be -1")
    known = math.prod(s for s in sizes if s != -1)
    if -1 in sizes:
        if len(devices) % known:
            raise ValueError(f"mesh {dict(zip(MESH_AXES, sizes))}: {len(devices)} devices are not a multiple of {known}")
        sizes[sizes.index(-1)] = len(devices) // known
    if math.prod(sizes) != len(devices):
        raise ValueError(f"mesh {dict(zip(MESH_AXES, sizes))} needs {math.prod(sizes)} devices, "
                         f"but {len(devices)} are available; set --config.mesh.* to multiply to {len(devices)}")
    axis_types = (jax.sharding.AxisType.Auto,) * 3
    return Mesh(np.asarray(devices).reshape(sizes), MESH_AXES, axis_types=axis_types)


def _mesh_size(mesh, axis) -> int:
    if axis is None:
        return 1
    names = axis if isinstance(axis, tuple) else (axis,)
    return math.prod(mesh.shape[n] for n in names)


def logical_to_spec(axes, shape, mesh, rules=RULES) -> P:
    """PartitionSpec for a value of `shape` whose dimensions carry logical `axes`."""
    spec, used = [], set()
    for name, dim in zip(axes, shape):
        if name not in rules:
            raise KeyError(f"logical axis {name!r} has no rule in dsllm.sharding.RULES")
        axis = rules[name]
        names = () if axis is None else (axis if isinstance(axis, tuple) else (axis,))
        names = tuple(n for n in names if mesh.shape[n] > 1 and n not in used)
        size = math.prod(mesh.shape[n] for n in names)
        if names and dim % size:
            key = (name, dim, names)
            if key not in _reported:
                _reported.add(key)
                logging.warning("sharding: axis %r of size %d is not divisible by mesh %s (%d); replicating it",
                                name, dim, names, size)
            names = ()
        used.update(names)
        spec.append(None if not names else names[0] if len(names) == 1 else names)
    return P(*spec)


def tree_shardings(axes_tree, abstract_tree, mesh, rules=RULES):
    """NamedShardings for a tree of values, given a matching tree of logical-axis tuples."""
    return jax.tree.map(lambda axes, x: NamedSharding(mesh, logical_to_spec(axes, x.shape, mesh, rules)),
                        axes_tree, abstract_tree, is_leaf=lambda a: isinstance(a, tuple))


def batch_sharding(mesh) -> NamedSharding:
    return NamedSharding(mesh, P(RULES["batch"]))


def constrain(x, axes):
    """Sharding constraint by logical names; a no-op outside a mesh context (e.g. in tests on one device)."""
    mesh = jax.sharding.get_abstract_mesh()
    if mesh is None or mesh.empty:
        return x
    return jax.lax.with_sharding_constraint(x, logical_to_spec(axes, x.shape, mesh))
