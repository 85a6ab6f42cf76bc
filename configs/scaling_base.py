"""Base of every scaling-law run (IsoFLOP plans, `python -m dsllm.scaling suggest`).

A plan overrides the model shape (d_model, n_layers, n_heads, n_kv_heads, ffn_dim, vocab_size),
train.steps / global_batch / seq_len / eval_batches / eval_every / ckpt_every, optim.peak_lr and
optim.warmup_steps for each run (docs/scaling.md gives the rules); everything else stays fixed
across runs, as in the paper's study. The values here are a small model that runs on a CPU.
"""

from dsllm.config import base_config, lock


def get_config():
    c = base_config()
    c.model.update(vocab_size=256, d_model=64, n_layers=2, n_heads=1, n_kv_heads=1, ffn_dim=192,
                   attention="auto", remat="none", loss_chunk=256,
                   # 0.006 is the paper's init for 7B/67B; widths of 64..1024 train better from the
                   # GPT-2 value (about 1/sqrt(d_model) at d_model ~ 2500 and below it).
                   init_std=0.02)
    # The paper's multi-step schedule: peak after warmup, 31.6% of it after 80% of the tokens,
    # 10% after 90%; AdamW(0.9, 0.95), weight decay 0.1, clipping 1.0 (base_config's values).
    c.optim.update(schedule="multistep", decay_fractions=(0.8, 0.9), decay_factors=(0.316, 0.1),
                   peak_lr=1e-3, warmup_steps=10)
    c.train.update(seq_len=128, global_batch=8, steps=100, log_every=50, eval_every=100,
                   eval_batches=4, ckpt_every=50, max_to_keep=1)
    c.mesh.update(data=-1, fsdp=1, tensor=1)
    return lock(c)
