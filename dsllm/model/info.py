"""python -m dsllm.model.info --config=configs/<name>.py [--config.a.b=value]

A config's parameter count (total, embedding, non-embedding), FLOPs per token (DESIGN.md's
count for MFU) and the paper's model scale M, from abstract evaluation: nothing is allocated,
so the 67B config answers on a laptop.
"""

from absl import app
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file("config", None, "configs/<name>.py", lock_config=True)


def describe(cfg) -> dict:
    from dsllm.train.state import flops_per_token, model_spec, paper_m

    m, seq = cfg.model, cfg.train.seq_len
    total = model_spec(m).param_count
    embedding = m.vocab_size * m.d_model
    return {"params": total, "embedding_params": embedding, "non_embedding_params": total - embedding,
            "flops_per_token": flops_per_token(m, seq), "paper_m": paper_m(m, seq), "seq_len": seq}


def main(argv):
    del argv
    info = describe(_CONFIG.value)
    print(f"parameters:            {info['params']:,} ({info['params'] / 1e9:.2f}B)")
    print(f"  embedding (input):   {info['embedding_params']:,}")
    print(f"  the rest:            {info['non_embedding_params']:,}")
    print(f"FLOPs/token (MFU):     {info['flops_per_token']:.4g}  (6 x matmul params + 6 L d s, seq {info['seq_len']})")
    print(f"paper M:               {info['paper_m']:.4g}  (72 L d^2 + 12 L d s)")


if __name__ == "__main__":
    app.run(main)
