"""DeepSeek LLM 67B: paper Table 2 and the released config.json (95 x 8192, 64 heads, 8 KV heads, FFN 22016)."""

from dsllm.config import base_config, lock


def get_config():
    c = base_config()
    c.model.update(vocab_size=102400, d_model=8192, n_layers=95, n_heads=64, n_kv_heads=8, ffn_dim=22016)
    c.model.remat = "full"
    c.optim.update(peak_lr=3.2e-4, warmup_steps=2000)
    c.train.update(seq_len=4096, global_batch=4608, steps=105964)  # 2.0T tokens / (4608 x 4096)
    return lock(c)
