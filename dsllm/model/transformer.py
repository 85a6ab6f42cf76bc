"""The DeepSeek LLM decoder (LLaMA-like): embedding, pre-norm blocks, final RMSNorm, untied head.

Dimension legend used in names throughout dsllm/model:
  B batch   S sequence   D d_model   H query heads   K key/value heads   G = H / K
  E head_dim   F FFN width   V vocabulary   L layers

    h = embed(tokens)
    for each of L blocks (stacked weights, one lax.scan):
        h = h + attention(rmsnorm(h))      # RoPE, GQA, causal within each packed document
        h = h + swiglu(rmsnorm(h))
    logits = rmsnorm(h) @ W_out            # untied from the embedding
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from dsllm.model.attention import Attention, attention_plan, resolve_attention
from dsllm.model.mlp import SwiGLU
from dsllm.model.norms import RMSNorm
from dsllm.model.params import normal_param
from dsllm.sharding import constrain

# Forward primitives of the fused attention kernels (cuDNN through jax; splash's `pallas_call` on
# TPU): saving their outputs keeps the output and the log-sum-exp the backward pass needs. Our
# Mosaic GPU kernels are not seen as a primitive by the policy (plgpu.kernel wraps its `mpmd_map` in
# a `custom_vmap_call`), so their forward names its out and lse (flash_attention.RESIDUALS_NAME).
_ATTENTION_PRIMITIVES = ("dot_product_attention_fwd", "dot_product_attention_fwd_wrapper", "pallas_call")
_ATTENTION_RESIDUAL_NAMES = ("flash_attention_residuals",)   # dsllm.kernels.flash_attention.RESIDUALS_NAME
_save_named_residuals = jax.checkpoint_policies.save_only_these_names(*_ATTENTION_RESIDUAL_NAMES)


def _attention_kernel_saveable(prim, *avals, **params) -> bool:
    return prim.name in _ATTENTION_PRIMITIVES or _save_named_residuals(prim, *avals, **params)


REMAT_POLICIES = {
    "none": None,  # no rematerialisation: every activation is kept
    # keep the projections' outputs, redo norms, RoPE, SwiGLU's elementwise part and attention
    "dots": jax.checkpoint_policies.dots_with_no_batch_dims_saveable,
    # as dots, and keep the attention kernel's output and statistics too: only elementwise work is redone
    "dots_attn": jax.checkpoint_policies.save_from_both_policies(
        jax.checkpoint_policies.dots_with_no_batch_dims_saveable, _attention_kernel_saveable),
    # keep q, k, v and the attention kernel's results; redo the MLP (and norms): leaner on memory
    "qkv_attn": jax.checkpoint_policies.save_from_both_policies(
        jax.checkpoint_policies.save_only_these_names("qkv"), _attention_kernel_saveable),
    "full": jax.checkpoint_policies.nothing_saveable,  # keep only each block's input
}


class Block(nnx.Module):
    def __init__(self, cfg, dtype, rngs: nnx.Rngs):
        self.attn_norm = RMSNorm(cfg.d_model, cfg.norm_eps, dtype)
        self.attn = Attention(cfg, dtype, rngs)
        self.mlp_norm = RMSNorm(cfg.d_model, cfg.norm_eps, dtype)
        self.mlp = SwiGLU(cfg.d_model, cfg.ffn_dim, cfg.init_std, dtype, rngs)

    def __call__(self, h_BSD, segment_ids_BS, positions_BS, attn_plan=None):
        h_BSD = h_BSD + self.attn(self.attn_norm(h_BSD), segment_ids_BS, positions_BS, attn_plan)
        h_BSD = h_BSD + self.mlp(self.mlp_norm(h_BSD))
        return constrain(h_BSD, ("batch", "seq", "embed_act"))


def _stack_blocks(cfg, dtype, rngs: nnx.Rngs) -> Block:
    """L blocks with their weights stacked on a leading `layers` axis, for lax.scan."""
    keys = jax.random.split(rngs.params(), cfg.n_layers)
    blocks = nnx.vmap(lambda key: Block(cfg, dtype, nnx.Rngs(params=key)))(keys)
    for _, var in nnx.iter_graph(blocks):
        if isinstance(var, nnx.Param):
            var.set_metadata("axes", ("layers",) + var.get_metadata()["axes"])
    return blocks


class Transformer(nnx.Module):
    def __init__(self, cfg, rngs: nnx.Rngs):
        if cfg.remat not in REMAT_POLICIES:
            raise ValueError(f"model.remat={cfg.remat!r}; choose one of {sorted(REMAT_POLICIES)}")
        dtype = jnp.dtype(cfg.dtype)
        self.cfg = cfg
        self.dtype = dtype
        self.embed_VD = normal_param(rngs, (cfg.vocab_size, cfg.d_model), cfg.init_std, ("vocab", "embed"))
        self.blocks = _stack_blocks(cfg, dtype, rngs)
        self.final_norm = RMSNorm(cfg.d_model, cfg.norm_eps, dtype)
        self.head_DV = normal_param(rngs, (cfg.d_model, cfg.vocab_size), cfg.init_std, ("embed", "vocab"))

    def hidden(self, tokens_BS, segment_ids_BS, positions_BS):
        """Final-normed hidden states [B, S, D]: everything but the output projection."""
        # Gather float32 rows, then cast: the backward scatter-add then sums a frequent token's
        # gradients in float32 (casting the table first would sum them in bf16).
        h_BSD = jnp.take(self.embed_VD[...], tokens_BS, axis=0).astype(self.dtype)
        h_BSD = constrain(h_BSD, ("batch", "seq", "embed_act"))
        graphdef, stacked = nnx.split(self.blocks)
        # Derived from the segment ids once, here, rather than in every layer's attention call
        # (and again in its rematerialisation and backward).
        attn_plan = attention_plan(segment_ids_BS, resolve_attention(self.cfg.attention),
                                   backward=self.cfg.attention_backward)

        def layer(h, weights):
            return nnx.merge(graphdef, weights)(h, segment_ids_BS, positions_BS, attn_plan), None

        policy = REMAT_POLICIES[self.cfg.remat]
        if self.cfg.remat != "none":
            layer = jax.checkpoint(layer, policy=policy, prevent_cse=False)
        h_BSD, _ = jax.lax.scan(layer, h_BSD, stacked)
        return self.final_norm(h_BSD)

    def head(self):
        """The float32 output projection [D, V] (the loss casts it per chunk)."""
        return self.head_DV[...]

    def __call__(self, tokens_BS, segment_ids_BS, positions_BS):
        """Logits [B, S, V] in float32: for generation and tests. Training never builds these
        at once; it uses hidden() with the chunked loss in dsllm.losses.cross_entropy."""
        h_BSD = self.hidden(tokens_BS, segment_ids_BS, positions_BS)
        return jnp.einsum("bsd,dv->bsv", h_BSD, self.head().astype(self.dtype), preferred_element_type=jnp.float32)
