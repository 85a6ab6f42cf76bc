"""The benchmark model: paper Table 3's 24 x 2048 row (1.6B), vocabulary 102,400, seq 4096, batch 8."""

from dsllm.config import base_config, lock


def get_config():
    c = base_config()
    c.model.update(vocab_size=102400, d_model=2048, n_layers=24, n_heads=16, n_kv_heads=16, ffn_dim=5504)
    c.model.update(attention="cudnn", remat="dots_attn")
    c.optim.update(peak_lr=3e-4, warmup_steps=100)
    c.train.update(seq_len=4096, global_batch=8, steps=30, log_every=5)
    return lock(c)
