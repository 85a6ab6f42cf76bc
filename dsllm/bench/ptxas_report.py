"""ptxas's register report of our Mosaic GPU kernels, on a machine without a GPU.

  bash dsllm/bench/ptxas/setup.sh          # once: fetches the CUDA plugin and ptxas (.ptxas/)
  python -m dsllm.bench.ptxas_report [--blocks=stages=3,trim_blocks=False] [--head_dim=64]

These kernels run at the register limit, and spills cost speed (NOTES.md v6: the fused
backward ran 12% behind the split kernels with 592 bytes spilled, 4% behind with 544). ptxas
reports spills at compile time, which needs no GPU: the function's gradient is lowered for
CUDA in Python, then each Mosaic kernel's module goes through the CUDA PJRT plugin's
MosaicGpuCompile (MLIR -> PTX -> ptxas) with MOSAIC_GPU_DUMP_PTXAS set, against a fake
libcuda that claims one sm_90 device and refuses to load the result. One subprocess per
kernel. The ptxas here (CUDA 13.5) is not the GPU machine's: spill counts agree within a
few tens of bytes (v6: 52 vs 48, 8 vs 4-8), so compare versions here, time them there.
"""
import ctypes
import os
import pathlib
import re
import subprocess
import sys
import tempfile

from absl import app, flags

ROOT = pathlib.Path(__file__).resolve().parents[2]
PTXAS_DIR = flags.DEFINE_string("ptxas_dir", str(ROOT / ".ptxas"), "what setup.sh fetched")
BLOCKS = flags.DEFINE_string("blocks", "", "Blocks fields, e.g. stages=3,trim_blocks=False")
HEAD_DIM = flags.DEFINE_integer("head_dim", 128, "head dimension")
GQA = flags.DEFINE_integer("gqa", 1, "query heads per key/value head")
CAUSAL = flags.DEFINE_bool("causal", True, "causal attention")


def parse_blocks(text):
    """'a=1,b=x' -> Blocks(a=1, b='x') (ints and booleans parsed, the rest strings)."""
    from dsllm.kernels.mgpu_common import Blocks
    kwargs = {}
    for item in filter(None, text.split(",")):
        key, _, val = item.partition("=")
        if val in ("True", "False"):
            kwargs[key] = val == "True"
        else:
            kwargs[key] = int(val) if val.lstrip("-").isdigit() else val
    return Blocks(**kwargs)


def lower_kernels(blocks, head_dim, gqa, causal):
    """The Mosaic GPU modules (bytecode) of flash_attention's forward and backward, in
    lowering order."""
    import jax
    import jax.numpy as jnp
    from jax.experimental.mosaic.gpu import core
    from dsllm.kernels.flash_attention import flash_attention
    q = jax.ShapeDtypeStruct((1, 1024, 4 * gqa, head_dim), jnp.bfloat16)
    kv = jax.ShapeDtypeStruct((1, 1024, 4, head_dim), jnp.bfloat16)
    loss = lambda q, k, v: flash_attention(q, k, v, None, causal=causal, blocks=blocks,
                                           backend="mosaic_gpu", interpret=False
                                           ).astype(jnp.float32).sum()
    core.KNOWN_KERNELS.clear()
    jax.jit(jax.grad(loss, argnums=(0, 1, 2))).trace(q, kv, kv).lower(lowering_platforms=("cuda",))
    return list(core.KNOWN_KERNELS.values())


def compile_module(path, plugin):
    """In a subprocess: MosaicGpuCompile(module) (ptxas reports on stderr; loading fails)."""
    asm = pathlib.Path(path).read_bytes()
    compile_fn = ctypes.CDLL(plugin).MosaicGpuCompile
    compile_fn.argtypes = [ctypes.c_char_p, ctypes.c_int]
    compile_fn.restype = ctypes.c_void_p
    compile_fn(asm, len(asm))


def ptxas_summary(log):
    """(registers, spill stores, spill loads, wgmma serialised) from a ptxas -v log."""
    regs = re.findall(r"Used (\d+) registers", log)
    spill = re.findall(r"(\d+) bytes spill stores, (\d+) bytes spill loads", log)
    if not regs:
        raise RuntimeError("no ptxas report in the compile log:\n" + log[-3000:])
    stores, loads = spill[-1] if spill else ("0", "0")
    return int(regs[-1]), int(stores), int(loads), "serialized" in log


def report(modules, ptxas_dir):
    ptxas_dir = pathlib.Path(ptxas_dir)
    plugins = sorted(ptxas_dir.glob("unpacked/jax_plugins/*/xla_cuda_plugin.so"))
    if not plugins:
        raise SystemExit(f"no CUDA plugin under {ptxas_dir}: run dsllm/bench/ptxas/setup.sh first")
    env = dict(os.environ, MOSAIC_GPU_DUMP_PTXAS="1",
               PATH=f"{ptxas_dir}/unpacked/nvidia/cu13/bin:{os.environ['PATH']}",
               LD_LIBRARY_PATH=f"{ptxas_dir}/stub")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, asm in enumerate(modules):
            path = pathlib.Path(tmp, f"kernel{i}.mlirbc")
            path.write_bytes(asm)
            proc = subprocess.run(
                [sys.executable, "-c", "import sys; from dsllm.bench.ptxas_report import "
                 "compile_module; compile_module(sys.argv[1], sys.argv[2])",
                 str(path), str(plugins[0])],
                env=env, capture_output=True, text=True, errors="replace", timeout=900)
            rows.append(ptxas_summary(proc.stdout + proc.stderr))
    return rows


def main(argv):
    del argv
    blocks = parse_blocks(BLOCKS.value)
    modules = lower_kernels(blocks, HEAD_DIM.value, GQA.value, CAUSAL.value)
    print(f"{blocks}, head_dim {HEAD_DIM.value}, gqa {GQA.value}, causal {CAUSAL.value}: "
          f"{len(modules)} kernels (forward first, in lowering order)")
    for i, (regs, stores, loads, serialised) in enumerate(report(modules, PTXAS_DIR.value)):
        print(f"kernel {i}: {regs} registers (launch bound; setmaxnreg raises the consumers'), "
              f"spill stores {stores} B, spill loads {loads} B"
              + (", wgmma SERIALISED" if serialised else ""), flush=True)


if __name__ == "__main__":
    app.run(main)
