"""Attention benchmark: our Pallas flash attention against cuDNN (and tokamax) on one GPU.

  python -m dsllm.bench.attention [--shapes=1,2,3] [--impls=pallas,cudnn,tokamax]

Shapes (bf16, head_dim 128 unless said, causal):
  1. B4 S4096 H32            (the shape shared/bench/anchors.py measures)
  2. B2 S8192 H64, 8 KV heads (the 67B's GQA)
  3. B4 S4096 H32, packed rows of about 8 documents of mixed lengths
  4. (only when asked for) B2 S8192 H64, 8 KV heads, packed rows of about 16 documents
  5. (only when asked for) B4 S4096 H64 D64 (shape 1's FLOPs at head_dim 64)
  6. (only when asked for) B4 S4096 H64 D64, 16 KV heads, packed rows of about 8 documents
(dsllm/bench/packed_rows.py SHAPES); --docs=N times them on about N documents a row instead.
On packed rows cuDNN runs its packed ("THD") layout through jax's private API and tokamax
its per-row key start.
Prints forward and forward+backward TFLOP/s: forward = 4 * D * H * (allowed query-key
pairs), with S^2/2 pairs per row for plain causal and sum L(L+1)/2 over documents for
packed rows; backward = 2.5 x forward. Before timing, each implementation's output
and gradients are checked against the fp32 reference on a subset of heads (one
key/value group); a wrong kernel gets no speed printed. --small runs tiny shapes
(on CPU through the kernels' interpreters) to test this script itself.
Timing: after the checks, --rounds rounds (default 3) each time every implementation of a
shape in turn, after --warm_seconds of calls that bring the GPU's clocks up; each figure is
the median round, each ratio the median of the per-round ratios (printed with their range).
--variants time again the default config beside them, as pallas_default; each variant's
per-round ratios are printed against the default and against the variants listed before it.
Writes the results as JSON to --out (default $OUT/bench_attention.json if $OUT is set),
with when each timing ran (shape<N>.spans), which dsllm.bench.clocks matches with the GPU's
clock samples.
--profile_dir=DIR also traces 5 forward+backward calls of each implementation and prints
where their device time goes (dsllm.bench.profile_summary): per kernel, launches and the
mean time per launching op, e.g. our forward, dQ and dK/dV kernels apart.
"""
import json
import os
import statistics
import sys
import traceback

from absl import app, flags
import jax
import jax.numpy as jnp

import dsllm
from dsllm.kernels.flash_attention import flash_attention
from dsllm.kernels.mgpu_common import Blocks
from dsllm.bench import timing
from dsllm.bench.packed_rows import (SHAPES, allowed_pairs, document_offsets, packed_segments,
                                     shape_of)
from dsllm.kernels.block_math import document_bounds
from dsllm.kernels.reference import reference_attention

SHAPE_NAMES = flags.DEFINE_string("shapes", "1,2,3", "comma-separated shape numbers")
DOCS = flags.DEFINE_integer("docs", None, "packed documents per row of every shape, in place of "
                            "the shape's own (0: one document per row)")
IMPLS = flags.DEFINE_string("impls", "pallas,cudnn,tokamax", "implementations to time")
ITERS = flags.DEFINE_integer("iters", 20, "timed bursts of calls per round (median reported)")
WARMUP = flags.DEFINE_integer("warmup", 3, "untimed calls before each timing")
ROUNDS = flags.DEFINE_integer("rounds", 3, "rounds of timing per shape, each timing every "
                              "implementation in turn; the median round is reported")
WARM_SECONDS = flags.DEFINE_float("warm_seconds", 2.0, "seconds of calls before a shape's "
                                  "first round, to bring the GPU's clocks up from idle")
SMALL = flags.DEFINE_bool("small", False, "tiny shapes, for a CPU run of this script (timed "
                          "once unless --rounds, --iters, --warmup or --warm_seconds say otherwise)")
OUT_PATH = flags.DEFINE_string("out", None, "JSON results path")
OUT_TOL = flags.DEFINE_float("out_tol", 1e-2, "max relative L2 error of the output")
VARIANT_SHAPES = flags.DEFINE_string("variant_shapes", "1,2,3", "shapes that time the variants")
VARIANTS = flags.DEFINE_string(
    "variants", "", "extra pallas block configs to time, e.g. bkv64,bkv64s3,maskall "
    "(see VARIANT_BLOCKS); the default config is always timed as 'pallas'")
EXTRA = flags.DEFINE_bool("extra_checks", True, "also check EXTRA_CHECKS cases (pallas only)")
PROFILE_DIR = flags.DEFINE_string("profile_dir", "", "trace fwd+bwd of each implementation under here")
GRAD_TOL = flags.DEFINE_float("grad_tol", 2e-2, "max relative L2 error of dq, dk, dv")

VARIANT_BLOCKS = {
    "bkv64": Blocks(block_kv=64),
    "bkv64s3": Blocks(block_kv=64, stages=3),
    # 256 keys a block: at head_dim 64 the SMEM of 128 at head_dim 128 (NOTES.md v17)
    "bkv256": Blocks(block_kv=256),
    "dq128": Blocks(block_kv_dq=128),
    "maskall": Blocks(mask_all_blocks=True),   # diagnostic: what masking every block costs
    # the forward with one program per tile instead of the persistent forward
    "pertile": Blocks(persistent_forward=False),
    # every warpgroup visiting its whole tile's blocks, and no half blocks
    "notrim": Blocks(trim_blocks=False),
    # the backward forced to one kind (the default picks per call: Blocks.backward)
    "fused": Blocks(backward="fused"),
    "split": Blocks(backward="split"),
    # the split backward with one dK/dV program per key tile (mgpu_backward.dkv), and with
    # the persistent dK/dV (mgpu_backward_persistent); the default picks by GQA ratio
    "tiledkv": Blocks(backward="split", dkv_kernel="per_tile"),
    "pdkv": Blocks(backward="split", dkv_kernel="persistent"),
}

# Correctness only (no timing): what the bench shapes leave out.
# (B, S, H, KVH, D, docs, causal)
EXTRA_CHECKS = {
    "d64_gqa4_packed_ragged": (2, 1000, 16, 4, 64, 6, True),
    "d128_noncausal_packed": (2, 2048, 8, 8, 128, 5, False),
    "d64_noncausal_plain": (1, 1024, 4, 2, 64, 0, False),
}


def implementations(packed, variants):
    """name -> f(q, k, v, segment_ids): pallas, cuDNN and tokamax, or (variants=True) only
    the pallas variants. On packed rows cuDNN runs its packed ("THD") layout through jax's
    private API (jax.nn.dot_product_attention has no segment ids) and tokamax its
    per-row key start (Mask(k_start=..., is_causal=True))."""
    wanted = IMPLS.value.split(",")
    if variants:
        return {f"pallas_{name}": lambda q, k, v, seg, b=VARIANT_BLOCKS[name]: flash_attention(
                    q, k, v, seg, causal=True, blocks=b)
                for name in filter(None, VARIANTS.value.split(",")) if "pallas" in wanted}
    impls = {}
    if "pallas" in wanted:
        impls["pallas"] = lambda q, k, v, seg: flash_attention(q, k, v, seg, causal=True)
    if "cudnn" in wanted:
        impls["cudnn"] = cudnn_packed if packed else lambda q, k, v, seg: (
            jax.nn.dot_product_attention(q, k, v, is_causal=True, implementation="cudnn"))
    if "tokamax" in wanted:
        tokamax = _import_tokamax()
        if tokamax is not None:
            impls["tokamax_mosaic"] = tokamax_packed if packed else lambda q, k, v, seg: (
                tokamax.dot_product_attention(q, k, v, is_causal=True, implementation="mosaic"))
    return impls


def cudnn_packed(q, k, v, seg):
    """cuDNN flash attention on packed rows: each document a segment of the THD layout."""
    from jax._src.cudnn import fused_attention_stablehlo as cudnn
    offsets, lengths = document_offsets(seg)
    return cudnn.dot_product_attention(
        q, k, v, q_seqlen=lengths, kv_seqlen=lengths, q_offsets=offsets, kv_offsets=offsets,
        scale=q.shape[-1] ** -0.5, mask_type=cudnn.MaskType.PADDING_CAUSAL, qkv_layout="BTNH")


def tokamax_packed(q, k, v, seg):
    """tokamax's Mosaic GPU kernel on packed rows: causal, each query's keys starting at its
    document's start (its public dot_product_attention takes only a dense boolean mask)."""
    from tokamax._src.ops.attention import api, base
    doc_start, _ = document_bounds(seg)
    return api.IMPLEMENTATIONS["mosaic_gpu"](
        q, k, v, mask=base.Mask(k_start=doc_start[:, None, :], is_causal=True),
        logits_scale=q.shape[-1] ** -0.5)


def _import_tokamax():
    try:
        try:
            import xprof.cli.tools  # noqa: F401  (tokamax's benchmarking imports it at load)
        except ImportError:
            import types
            for name in ["xprof", "xprof.cli", "xprof.cli.tools"]:
                sys.modules.setdefault(name, types.ModuleType(name))
            sys.modules["xprof.cli.tools"].get_kernel_stats_tool = None
        import tokamax
        return tokamax
    except Exception as e:  # an optional comparison: say why it is missing, go on
        print(f"tokamax unavailable: {e!r}"[:300], flush=True)
        return None


def median_seconds(f, *args, burst=5):
    """timing.median_seconds with --iters and --warmup."""
    return timing.median_seconds(f, *args, burst=burst, iters=ITERS.value, warmup=WARMUP.value)


def profile(f, args, directory, calls=5):
    """Trace `calls` calls of f and print the summary's first lines. Run with
    XLA_FLAGS=--xla_gpu_enable_command_buffer= to see XLA op names (e.g. mpmd_map.N per kernel)
    rather than the command buffer that holds them."""
    from dsllm.bench.profile_summary import summarize
    with jax.profiler.trace(directory):
        outs = [f(*args) for _ in range(calls)]
        jax.block_until_ready(outs)
    print(f"-- profile of {calls} calls, {directory}\n" + "\n".join(summarize(directory, 6).splitlines()[:14]),
          flush=True)


def rel_err(x, ref):
    x, ref = x.astype(jnp.float32), ref.astype(jnp.float32)
    return float(jnp.linalg.norm(x - ref) / jnp.linalg.norm(ref))


def check(f, q, k, v, seg, do, causal=True):
    """Relative errors of out, dq, dk, dv against the fp32 reference, on key/value head 0
    and its query heads (attention is separable over heads, so the full problem's
    gradients restricted to them equal the subset's)."""
    G = q.shape[2] // k.shape[2]
    heads = max(G, 2) if q.shape[2] == k.shape[2] else G
    kvh = heads if G == 1 else 1

    def loss(fn, q, k, v):
        out = fn(q, k, v)
        return jnp.sum(out.astype(jnp.float32) * do[:, :, :out.shape[2]].astype(jnp.float32)), out

    ours = jax.jit(jax.value_and_grad(lambda q, k, v: loss(lambda *a: f(*a, seg), q, k, v),
                                      argnums=(0, 1, 2), has_aux=True))
    (_, out), (dq, dk, dv) = ours(q, k, v)
    ref_fn = lambda q, k, v: reference_attention(q, k, v, seg, causal=causal)
    sub = (q[:, :, :heads].astype(jnp.float32), k[:, :, :kvh].astype(jnp.float32),
           v[:, :, :kvh].astype(jnp.float32))
    refj = jax.jit(jax.value_and_grad(lambda q, k, v: loss(ref_fn, q, k, v),
                                      argnums=(0, 1, 2), has_aux=True))
    (_, rout), (rdq, rdk, rdv) = refj(*sub)
    errs = {"out": rel_err(out[:, :, :heads], rout), "dq": rel_err(dq[:, :, :heads], rdq),
            "dk": rel_err(dk[:, :, :kvh], rdk), "dv": rel_err(dv[:, :, :kvh], rdv)}
    finite = all(bool(jnp.isfinite(x).all()) for x in (out, dq, dk, dv))
    ok = finite and errs["out"] < OUT_TOL.value and all(
        errs[n] < GRAD_TOL.value for n in ("dq", "dk", "dv"))
    return ok, errs


def run_extra_checks(results):
    for name, (B, S, H, KVH, D, docs, causal) in EXTRA_CHECKS.items():
        if SMALL.value:
            B, S, H, KVH = 1, 200, 4, 2
        keys = jax.random.split(jax.random.key(7), 4)
        q = jax.random.normal(keys[0], (B, S, H, D), jnp.bfloat16)
        k = jax.random.normal(keys[1], (B, S, KVH, D), jnp.bfloat16)
        v = jax.random.normal(keys[2], (B, S, KVH, D), jnp.bfloat16)
        do = jax.random.normal(keys[3], (B, S, H, D), jnp.bfloat16)
        seg = packed_segments(B, S, docs) if docs else None
        f = lambda q, k, v, seg, causal=causal: flash_attention(q, k, v, seg, causal=causal)
        try:
            ok, errs = check(f, q, k, v, seg, do, causal=causal)
            results[f"check.{name}"] = {"ok": ok, **errs}
            print(f"check {name}: {'ok' if ok else 'WRONG'} " +
                  " ".join(f"{n}={e:.2e}" for n, e in errs.items()), flush=True)
        except Exception:
            results[f"check.{name}.error"] = traceback.format_exc()[-3000:]
            print(f"check {name}: ERROR\n{results[f'check.{name}.error']}", flush=True)


# The compiled functions of the shapes' pallas runs, {(shape, "fwd"|"fwdbwd"): f}: the variant
# pass times them again beside the variants, so that each variant has a paired baseline.
_PALLAS_TIMED = {}


def timing_settings():
    """timing.interleaved_seconds' settings from the flags; under --small, one call per timing
    wherever a flag was not given: the interpreter takes seconds a call, and --small checks the
    script, not speeds."""
    settings = dict(rounds=ROUNDS.value, warm_seconds=WARM_SECONDS.value, iters=ITERS.value,
                    warmup=WARMUP.value, burst=5)
    if SMALL.value:
        once = dict(rounds=1, warm_seconds=0.0, iters=1, warmup=0, burst=1)
        settings.update({name: value for name, value in once.items()
                         if name == "burst" or not flags.FLAGS[name].present})
    return settings


def run_shape(name, results, save, variants):
    B, S, H, KVH, D, docs = shape_of(name, small=SMALL.value, docs=DOCS.value)
    keys = jax.random.split(jax.random.key(int(name)), 4)
    q = jax.random.normal(keys[0], (B, S, H, D), jnp.bfloat16)
    k = jax.random.normal(keys[1], (B, S, KVH, D), jnp.bfloat16)
    v = jax.random.normal(keys[2], (B, S, KVH, D), jnp.bfloat16)
    do = jax.random.normal(keys[3], (B, S, H, D), jnp.bfloat16)
    seg = packed_segments(B, S, docs) if docs else None
    fwd_flops = 4 * D * H * allowed_pairs(seg, B, S)
    flops = {"fwd": fwd_flops, "fwdbwd": 3.5 * fwd_flops}
    label = f"shape{name} B{B} S{S} H{H} KV{KVH} D{D}" + (f" packed~{docs}docs" if docs else "")
    results[f"shape{name}.dims"] = dict(B=B, S=S, H=H, KVH=KVH, D=D, docs=docs)
    print(f"== {label}: {fwd_flops / 1e12:.2f} TFLOP forward" + (" (variants)" if variants else ""),
          flush=True)

    # Check every implementation first (a wrong one is not timed), then time them together.
    timed = {}
    if variants and (name, "fwd") in _PALLAS_TIMED:   # the default again, as the variants' pair
        timed.update({f"shape{name}.pallas_default.{part}": _PALLAS_TIMED[name, part]
                      for part in ("fwd", "fwdbwd")})
    for impl, f in implementations(bool(docs), variants).items():
        key = f"shape{name}.{impl}"
        try:
            ok, errs = check(f, q, k, v, seg, do)
            results[key + ".relerr"] = errs
            print(f"{key}: relerr " + " ".join(f"{n}={e:.2e}" for n, e in errs.items()), flush=True)
            if not ok:
                results[key + ".status"] = "WRONG"
                print(f"{key}: WRONG, not timed", flush=True)
                continue
            timed[key + ".fwd"] = jax.jit(lambda q, k, v, f=f: f(q, k, v, seg))
            timed[key + ".fwdbwd"] = jax.jit(jax.grad(
                lambda q, k, v, f=f: f(q, k, v, seg).astype(jnp.float32).sum(), argnums=(0, 1, 2)))
            if impl == "pallas":
                for part in ("fwd", "fwdbwd"):
                    _PALLAS_TIMED[name, part] = timed[f"{key}.{part}"]
            if PROFILE_DIR.value:
                profile(timed[key + ".fwdbwd"], (q, k, v), os.path.join(PROFILE_DIR.value, key))
        except Exception:
            results[key + ".error"] = traceback.format_exc()[-3000:]
            print(f"{key}: ERROR\n{results[key + '.error']}", flush=True)
        save()
    spans = []
    try:
        times = timing.interleaved_seconds(timed, (q, k, v), spans=spans, **timing_settings())
        # when each timing ran (seconds since the epoch), for clock samples taken beside it
        results[f"shape{name}.{'variant_' if variants else ''}spans"] = spans
    except Exception:
        results[f"shape{name}.timing_error"] = traceback.format_exc()[-3000:]
        print(f"shape{name}: timing ERROR\n{results[f'shape{name}.timing_error']}", flush=True)
        save()
        return
    impls = list(dict.fromkeys(k.rsplit(".", 1)[0] for k in times))
    for key in impls:
        for part in ("fwd", "fwdbwd"):
            t = statistics.median(times[f"{key}.{part}"])
            results[f"{key}.{part}_ms"] = t * 1e3
            results[f"{key}.{part}_tflops"] = flops[part] / t / 1e12
            results[f"{key}.{part}_ms_rounds"] = [r * 1e3 for r in times[f"{key}.{part}"]]
        print(f"{key}: " + " | ".join(
            f"{label} {results[f'{key}.{part}_ms']:.3f} ms "
            f"{results[f'{key}.{part}_tflops']:.1f} TFLOP/s"
            for part, label in (("fwd", "fwd"), ("fwdbwd", "fwd+bwd"))), flush=True)
    # Per-round (paired) speed-ups: ours against cuDNN and tokamax; in the variant pass each
    # pallas config against those timed before it in the same rounds (the default first).
    impl = lambda key: key.split(".")[1]
    ours_all = [k for k in impls if impl(k).startswith("pallas")]
    theirs = [k for k in impls if not impl(k).startswith("pallas")]
    for i, ours in enumerate(ours_all):
        for other in theirs + (ours_all[:i] if variants else []):
            parts = []
            for part in ("fwd", "fwdbwd"):
                r = timing.paired_ratios(times, f"{ours}.{part}", f"{other}.{part}")
                results[f"{ours}.over_{impl(other)}.{part}_rounds"] = r
                parts.append(f"{part} {statistics.median(r):.3f}x ({min(r):.3f}-{max(r):.3f})")
            print(f"  {impl(ours)}/{impl(other)} per round: " + ", ".join(parts), flush=True)
    save()


def summary(results):
    print("\n== summary (TFLOP/s fwd/fwd+bwd, medians over rounds; ratios: the median of the "
          "per-round ratios)")
    for s in SHAPES:
        impls = sorted({k.split(".")[1] for k in results if k.startswith(f"shape{s}.")
                        and k.endswith(".fwd_tflops")})
        row = {i: (results[f"shape{s}.{i}.fwd_tflops"], results[f"shape{s}.{i}.fwdbwd_tflops"])
               for i in impls}
        if row:
            print(f"shape{s}: " + ", ".join(f"{i} {a:.1f}/{b:.1f}" for i, (a, b) in row.items()))
        for ours in impls:
            for other in impls:
                fwd, fwdbwd = (results.get(f"shape{s}.{ours}.over_{other}.{part}_rounds")
                               for part in ("fwd", "fwdbwd"))
                if fwd and fwdbwd:
                    print(f"  {ours}/{other}: fwd {statistics.median(fwd):.2f}x, "
                          f"fwd+bwd {statistics.median(fwdbwd):.2f}x")
    for impl in sorted({k.split(".")[1] for k in results if k.startswith("shape3.")
                        and k.endswith(".fwd_tflops")}):
        one = results.get(f"shape1.{impl}.fwd_tflops")
        if one:
            print(f"  packed shape3/shape1 ({impl}): fwd {results[f'shape3.{impl}.fwd_tflops'] / one:.2f}, "
                  f"fwd+bwd {results[f'shape3.{impl}.fwdbwd_tflops'] / results[f'shape1.{impl}.fwdbwd_tflops']:.2f}")


def main(argv):
    del argv
    # Which dsllm runs: comparing trees by PYTHONPATH needs `python -P -m`, since `python -m`
    # puts the working directory's dsllm first (NOTES.md v10: v5-v9 compared main to itself).
    results = {"devices": str(jax.devices()), "jax": jax.__version__,
               "dsllm": os.path.dirname(dsllm.__file__)}
    print(results, flush=True)
    path = OUT_PATH.value or (os.path.join(os.environ["OUT"], "bench_attention.json")
                              if os.environ.get("OUT") else None)

    def save():  # after every implementation, so a run cut short keeps what it measured
        if path:
            with open(path + ".tmp", "w") as f:
                json.dump(results, f, indent=1)
            os.replace(path + ".tmp", path)

    # Every shape's pallas, cuDNN and tokamax first, then the variants: a variant that fails
    # or hangs (until the caller's timeout) then costs only the variants after it.
    for name in SHAPE_NAMES.value.split(","):
        run_shape(name, results, save, variants=False)
    for name in VARIANT_SHAPES.value.split(","):
        if VARIANTS.value and name in SHAPE_NAMES.value.split(","):
            run_shape(name, results, save, variants=True)
    if EXTRA.value and "pallas" in IMPLS.value:
        run_extra_checks(results)
    summary(results)
    save()


if __name__ == "__main__":
    app.run(main)
