"""The demo: a small DeepSeek-architecture model (GQA included) trained on Python's own docs on a CPU.

float32 compute: XLA's CPU backend runs bfloat16 matmuls slower than float32 (1.6x here)."""

from dsllm.config import base_config, lock


def get_config():
    c = base_config()
    c.model.update(vocab_size=2048, d_model=128, n_layers=4, n_heads=4, n_kv_heads=2, ffn_dim=384,
                   attention="xla", remat="none", loss_chunk=128, init_std=0.02, dtype="float32")
    c.optim.update(peak_lr=3e-3, warmup_steps=40)
    c.train.update(steps=1200, global_batch=16, seq_len=128, log_every=25, eval_every=200, eval_batches=8,
                   ckpt_every=200, sample_prompt="The Python interpreter", sample_tokens=40)
    return lock(c)
