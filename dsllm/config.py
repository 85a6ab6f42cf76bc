"""The one configuration schema. Every configs/*.py starts from base_config() and changes values.

Keys are grouped as model / optim / train / data / mesh (docs/interfaces.md lists them). The
dict is locked, so a misspelt key in a config file or on the command line fails at once.
"""

import ml_collections


def base_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()

    c.model = m = ml_collections.ConfigDict()
    m.vocab_size = 102400
    m.d_model = 4096
    m.n_layers = 30
    m.n_heads = 32
    m.n_kv_heads = 32           # equal to n_heads: multi-head attention; a divisor: GQA
    m.ffn_dim = 11008
    m.rope_theta = 10000.0
    m.norm_eps = 1e-6
    m.init_std = 0.006          # the paper's initialisation (HF configs say 0.02; the paper trains with 0.006)
    m.attention = "auto"        # auto (pallas on GPU/TPU, xla on CPU) | xla | cudnn | pallas
    m.attention_backward = "auto"   # pallas on GPU: auto | fused | split (split: bitwise-reproducible
                                    # gradients; kernels.mgpu_common.Blocks.backward)
    m.remat = "dots_attn"       # none | dots | dots_attn | qkv_attn | full (dsllm/model/transformer.py);
                                # dots_attn: fastest where it fits (1.6B +3% over dots, 7B on one H200: docs/perf)
    m.loss_chunk = 1024         # sequence positions per chunk of the fused output projection + cross-entropy
    m.dtype = "bfloat16"        # compute dtype; master weights are float32

    c.optim = o = ml_collections.ConfigDict()
    o.peak_lr = 4.2e-4
    o.warmup_steps = 2000
    o.schedule = "multistep"    # multistep | cosine
    o.decay_fractions = (0.8, 0.9)   # of the training tokens
    o.decay_factors = (0.316, 0.1)   # of the peak learning rate
    o.min_lr_ratio = 0.1        # cosine: final learning rate as a fraction of the peak
    o.beta1 = 0.9
    o.beta2 = 0.95
    o.eps = 1e-8
    o.weight_decay = 0.1
    o.clip_norm = 1.0

    c.train = t = ml_collections.ConfigDict()
    t.steps = 1000
    t.global_batch = 8          # sequences per optimizer step
    t.micro_batches = 1         # gradient accumulation: global_batch is split into this many micro-batches
    t.seq_len = 4096
    t.seed = 0
    t.log_every = 10
    t.eval_every = 500
    t.eval_batches = 8
    t.ckpt_every = 500
    t.max_to_keep = 3
    t.sample_prompt = ""
    t.sample_tokens = 0
    t.peak_flops_per_device = 0.0   # 0: looked up from the device kind (989e12 for H100/H200)

    c.data = d = ml_collections.ConfigDict()
    d.path = ""                 # dataset directory holding manifest.json
    d.train_split = "train"
    d.eval_split = "validation"
    d.workers = 0               # Grain worker processes (0: in the training process)
    d.tokenizer = ""            # for samples; empty: the tokenizer recorded in the dataset's manifest

    c.mesh = ms = ml_collections.ConfigDict()
    ms.data = 1
    ms.fsdp = -1                # -1 takes the devices the other axes leave
    ms.tensor = 1
    return c


def lock(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    c.lock()
    return c


def load_config(path: str, overrides: dict | None = None) -> ml_collections.ConfigDict:
    """Loads configs/<name>.py and applies {"a.b": value} overrides (for tests and tools;
    the CLI uses ml_collections' config_flags, which does the same with type checks)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("dsllm_config_file", path)
    if spec is None:
        raise FileNotFoundError(f"no config file at {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    c = module.get_config()
    for key, value in (overrides or {}).items():
        node = c
        *parents, leaf = key.split(".")
        for p in parents:
            node = node[p]
        if leaf not in node:
            raise KeyError(f"unknown config key {key!r}")
        node[leaf] = value
    return c
