"""DeepSeek LLM 7B: paper Table 2 and the released config.json (30 x 4096, MHA, FFN 11008)."""

from dsllm.config import base_config, lock


def get_config():
    c = base_config()
    c.model.update(vocab_size=102400, d_model=4096, n_layers=30, n_heads=32, n_kv_heads=32, ffn_dim=11008)
    c.optim.update(peak_lr=4.2e-4, warmup_steps=2000)
    c.train.update(seq_len=4096, global_batch=2304, steps=211928)  # 2.0T tokens / (2304 x 4096)
    return lock(c)
