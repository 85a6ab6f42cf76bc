"""Model scale: parameters and FLOPs per token (DeepSeek LLM, Formula 2 and Table 3).

    6 N1 = 72 L D^2                      non-embedding parameters (Kaplan), times 6
    6 N2 = 72 L D^2 + 6 V D              complete parameters (Chinchilla), times 6
    M    = 72 L D^2 + 12 L D S           non-embedding FLOPs per token (DeepSeek)

L = layers, D = d_model, S = sequence length, V = vocabulary. M counts the attention
operation (12 L D S: scores and values, forward and backward) and leaves out the vocabulary
computation. The compute of a run is C = M * tokens (not 6 N tokens).
"""

from __future__ import annotations

# Table 3 of the paper: (n_layers, d_model, 6N1/M, 6N2/M) as printed, n_vocab 102400, l_seq 4096.
# The 32/4096 row prints 0.85 where the formulas give 0.857 (a rounding slip in the paper).
TABLE3_VOCAB = 102400
TABLE3_SEQ_LEN = 4096
TABLE3 = (
    (8, 512, 0.43, 1.32),
    (12, 768, 0.53, 1.02),
    (24, 1024, 0.60, 0.81),
    (24, 2048, 0.75, 0.88),
    (32, 4096, 0.85, 0.91),
    (40, 5120, 0.88, 0.92),
    (80, 8192, 0.92, 0.94),
)


def n1(n_layer: int, d_model: int) -> int:
    """Non-embedding parameters, 12 L D^2 (attention 4 D^2 + FFN 8 D^2 per layer)."""
    return 12 * n_layer * d_model * d_model


def n2(n_layer: int, d_model: int, vocab: int) -> int:
    """Complete parameters as the paper counts them: N1 + V D (one vocabulary matrix)."""
    return n1(n_layer, d_model) + vocab * d_model


def m_flops(n_layer: int, d_model: int, seq_len: int) -> int:
    """Non-embedding FLOPs per token M = 72 L D^2 + 12 L D S (training: forward + backward)."""
    return 72 * n_layer * d_model * d_model + 12 * n_layer * d_model * seq_len


def train_flops_per_token(n_layer: int, d_model: int, seq_len: int, vocab: int, ffn_dim: int | None = None,
                          n_heads: int | None = None, n_kv_heads: int | None = None) -> int:
    """FLOPs per token actually executed, the project's MFU convention (DESIGN.md): 6 x matmul
    parameters (output head included, input embedding excluded) + 6 L D S for causal attention.
    Used to estimate wall time; the scaling laws use M."""
    ffn_dim = ffn_dim if ffn_dim is not None else 8 * d_model // 3  # SwiGLU at 8/3 D
    kv_width = d_model if not n_heads or not n_kv_heads else d_model // n_heads * n_kv_heads
    attn = d_model * (2 * d_model + 2 * kv_width)  # q, o full; k, v shrink with GQA
    mlp = 3 * d_model * ffn_dim
    matmul_params = n_layer * (attn + mlp) + vocab * d_model
    return int(6 * matmul_params + 6 * n_layer * d_model * seq_len)


def model_scale(n_layer: int, d_model: int, seq_len: int, vocab: int) -> dict:
    """The quantities of Table 3 for one shape, keys as the CLI prints them."""
    a, b, m = n1(n_layer, d_model), n2(n_layer, d_model, vocab), m_flops(n_layer, d_model, seq_len)
    return dict(n_layer=n_layer, d_model=d_model, seq_len=seq_len, vocab=vocab,
                n1=a, n2=b, m=m, six_n1_over_m=6 * a / m, six_n2_over_m=6 * b / m)
