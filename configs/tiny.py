"""A few-hundred-thousand-parameter model for tests: every feature, seconds on a CPU."""

from dsllm.config import base_config, lock


def get_config():
    c = base_config()
    c.model.update(vocab_size=256, d_model=64, n_layers=2, n_heads=4, n_kv_heads=2, ffn_dim=128,
                   attention="xla", remat="none", loss_chunk=16)
    c.optim.update(peak_lr=1e-2, warmup_steps=5)
    c.train.update(seq_len=32, global_batch=8, steps=20, log_every=5, eval_every=10, eval_batches=2,
                   ckpt_every=10)
    c.mesh.update(data=1, fsdp=-1, tensor=1)
    return lock(c)
