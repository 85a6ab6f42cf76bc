"""SwiGLU feed-forward: down(silu(x W_gate) * (x W_up))."""

import jax
from flax import nnx
from jax.ad_checkpoint import checkpoint_name

from dsllm.model.params import normal_param
from dsllm.sharding import constrain


class SwiGLU(nnx.Module):
    def __init__(self, d_model: int, ffn_dim: int, init_std: float, dtype, rngs: nnx.Rngs):
        self.w_gate_DF = normal_param(rngs, (d_model, ffn_dim), init_std, ("embed", "mlp"))
        self.w_up_DF = normal_param(rngs, (d_model, ffn_dim), init_std, ("embed", "mlp"))
        self.w_down_FD = normal_param(rngs, (ffn_dim, d_model), init_std, ("mlp", "embed"))
        self.dtype = dtype

    def __call__(self, x_BSD):
        w = lambda p: p[...].astype(self.dtype)
        gate_BSF = x_BSD @ w(self.w_gate_DF)
        up_BSF = x_BSD @ w(self.w_up_DF)
        h_BSF = checkpoint_name(jax.nn.silu(gate_BSF) * up_BSF, "mlp_hidden")
        h_BSF = constrain(h_BSF, ("batch", "seq", "mlp"))
        return h_BSF @ w(self.w_down_FD)
