"""ptxas's register report of our Mosaic GPU kernels, on a machine without a GPU.

  bash dsllm/bench/ptxas/setup.sh          # once: fetches the CUDA plugin and ptxas (.ptxas/)
  python -m dsllm.bench.ptxas_report [--blocks=stages=3,trim_blocks=False] [--head_dim=64] [--seq=16384]
  python -m dsllm.bench.ptxas_report --sass    # and the SASS opcodes of each kernel's loops
  python -m dsllm.bench.ptxas_report --pipeline  # and where each loop's waits and arrivals landed

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
# allow_override: ptxas_report and kernel_trace both define --blocks, and the tests import both.
BLOCKS = flags.DEFINE_string("blocks", "", "Blocks fields, e.g. stages=3,backward=split",
                             allow_override=True)
HEAD_DIM = flags.DEFINE_integer("head_dim", 128, "head dimension")
GQA = flags.DEFINE_integer("gqa", 1, "query heads per key/value head")
CAUSAL = flags.DEFINE_bool("causal", True, "causal attention")
SEQ = flags.DEFINE_integer("seq", 1024, "sequence length lowered for (16384: the persistent "
                           "kernels' item loops stay loops; see lower_kernels)")
SASS = flags.DEFINE_bool("sass", False, "also count each kernel's loop bodies' SASS opcodes")
PIPELINE = flags.DEFINE_bool("pipeline", False, "also print each loop's pipeline shape "
                             "(wgmma issues and waits, exps, barriers; loop_pipeline)")
KEY_OPCODES = ("HGMMA", "MUFU", "FFMA", "FMUL", "FADD", "FMNMX", "FSEL", "ISETP", "F2FP", "LDL",
               "STL")


def lower_kernels(blocks, head_dim, gqa, causal, seq=1024):
    """The Mosaic GPU modules (bytecode) of flash_attention's forward and backward, in
    lowering order. At the default seq each persistent program gets one work item and its
    item loop folds away; seq=16384 (256 items for 132 programs) keeps it (NOTES.md v12)."""
    import jax
    import jax.numpy as jnp
    from jax.experimental.mosaic.gpu import core
    from dsllm.kernels.flash_attention import flash_attention
    q = jax.ShapeDtypeStruct((1, seq, 4 * gqa, head_dim), jnp.bfloat16)
    kv = jax.ShapeDtypeStruct((1, seq, 4, head_dim), jnp.bfloat16)
    loss = lambda q, k, v: flash_attention(q, k, v, None, causal=causal, blocks=blocks,
                                           backend="mosaic_gpu", interpret=False
                                           ).astype(jnp.float32).sum()
    core.KNOWN_KERNELS.clear()
    jax.jit(jax.grad(loss, argnums=(0, 1, 2))).trace(q, kv, kv).lower(lowering_platforms=("cuda",))
    return list(core.KNOWN_KERNELS.values())


_INSTRUCTION = re.compile(r"/\*([0-9a-f]{4,})\*/\s+(?:@!?U?P[T0-9]+\s+)?([A-Z][A-Z0-9_.]*)([^;]*);")


def instructions(sass):
    """[(address, opcode, operands)] of a cuobjdump -sass listing, in order (predicates
    dropped)."""
    return [(int(a, 16), op, rest) for a, op, rest in _INSTRUCTION.findall(sass)]


def loop_bodies(sass, min_length=50):
    """[(first address, [(opcode, operands), ...])] of each loop body in a cuobjdump -sass
    listing: the instructions from a backward branch's target to the branch. ptxas puts
    barrier spin-waits out of line, after the last EXIT, and branches back from there; those
    branches are left out, so the bodies left are the kernels' own loops (the consumers' block
    loops, the producer's). min_length drops short ones."""
    code = instructions(sass)
    last_exit = max(a for a, op, _ in code if op == "EXIT")
    loops = []
    for i, (addr, op, rest) in enumerate(code):
        if addr > last_exit:
            break
        target = re.match(r"\s*(?:\.[A-Z.]+\s+)?0x([0-9a-f]+)", rest) if op == "BRA" else None
        if target and int(target.group(1), 16) < addr:
            body = [(o, r) for a, o, r in code[:i + 1] if a >= int(target.group(1), 16)]
            if len(body) >= min_length:
                loops.append((int(target.group(1), 16), body))
    return loops


def innermost_loops(sass, min_length=50):
    """The loop bodies of at least min_length instructions (loop_bodies) that hold no other
    such loop: the kernels' block loops, not the persistent kernels' item loops around them.
    SASS instructions are 16 bytes apart."""
    loops = loop_bodies(sass, min_length)
    spans = [(start, start + 16 * (len(body) - 1)) for start, body in loops]
    return [(start, body) for (start, body), (lo, hi) in zip(loops, spans)
            if not any(lo < other < hi for other, _ in spans)]


def opcode_counts(body):
    """Counter of a loop body's opcodes without their modifiers (HGMMA, not
    HGMMA.64x128x16.F32.BF16)."""
    import collections
    return collections.Counter(op.split(".")[0] for op, _ in body)


def loop_opcodes(sass, min_length=50):
    """[(first address, instructions, opcode_counts)] of each loop body (loop_bodies)."""
    return [(start, len(body), opcode_counts(body)) for start, body in loop_bodies(sass, min_length)]


# What a loop's pipeline shape shows, in program order (loop_pipeline).
PIPELINE_EVENTS = (
    ("G", lambda op, rest: op.startswith("HGMMA") and "gsb0" in rest),   # a wgmma group issued
    ("W", lambda op, rest: op.startswith("WARPGROUP.DEPBAR")),           # W<n>: wait for all but n
    ("e", lambda op, rest: op == "MUFU.EX2"),
    ("A", lambda op, rest: op.startswith("SYNCS.ARRIVE")),               # an mbarrier arrival
    ("T", lambda op, rest: op.startswith("SYNCS.PHASECHK")),             # an mbarrier wait
    ("B", lambda op, rest: op.startswith("BAR.SYNC")),
    ("S", lambda op, rest: op.startswith("STS")),
)


def loop_pipeline(body):
    """A loop body's wgmma issues and waits, exps, barrier arrivals and waits, warpgroup
    barriers and SMEM stores, in program order, repeats counted: e.g. "G T A e64 A T W0".
    Shows where ptxas put them, which is not always where the program did (NOTES.md v8: an
    arrival hoisted above the exps it was meant to follow; a wait hoisted above the math it
    was meant to overlap)."""
    seq = []
    for op, rest in body:
        for key, match in PIPELINE_EVENTS:
            if match(op, rest):
                if key == "W":
                    key += re.search(r"0x([0-9a-f]+)", rest).group(1)
                if seq and seq[-1][0] == key and key in "eS":
                    seq[-1][1] += 1
                else:
                    seq.append([key, 1])
                break
    return " ".join(k + (str(n) if n > 1 else "") for k, n in seq)


def sass_of(module_path, plugin, env, tmp):
    """cuobjdump -sass of one kernel: its PTX dumped by MosaicGpuCompile, then ptxas."""
    bin_dir = pathlib.Path(env["PATH"].split(":")[0])
    dump = pathlib.Path(tmp, "dump")
    dump.mkdir(exist_ok=True)
    for f in dump.glob("*"):
        f.unlink()
    subprocess.run([sys.executable, "-c", "import sys; from dsllm.bench.ptxas_report import "
                    "compile_module; compile_module(sys.argv[1], sys.argv[2])",
                    str(module_path), str(plugin)],
                   env=dict(env, MOSAIC_GPU_DUMP_PTX="1", MOSAIC_GPU_DUMP_TO=str(dump)),
                   capture_output=True, timeout=900)
    ptx = next(dump.glob("*.ptx"))
    cubin = dump / "kernel.cubin"
    subprocess.run([str(bin_dir / "ptxas"), "-arch=sm_90a", "-O3", str(ptx), "-o", str(cubin)],
                   check=True, capture_output=True)
    return subprocess.run([str(bin_dir / "cuobjdump"), "-sass", str(cubin)], env=env, check=True,
                          capture_output=True, text=True).stdout


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


def report(modules, ptxas_dir, sass=False):
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
            row = ptxas_summary(proc.stdout + proc.stderr)
            if sass:
                row += (sass_of(path, plugins[0], env, tmp),)
            rows.append(row)
    return rows


def main(argv):
    del argv
    from dsllm.kernels.mgpu_common import parse_blocks
    blocks = parse_blocks(BLOCKS.value)
    modules = lower_kernels(blocks, HEAD_DIM.value, GQA.value, CAUSAL.value, SEQ.value)
    print(f"{blocks}, head_dim {HEAD_DIM.value}, gqa {GQA.value}, causal {CAUSAL.value}: "
          f"{len(modules)} kernels (forward first, in lowering order)")
    for i, (regs, stores, loads, serialised, *sass) in enumerate(
            report(modules, PTXAS_DIR.value, sass=SASS.value or PIPELINE.value)):
        print(f"kernel {i}: {regs} registers (launch bound; setmaxnreg raises the consumers'), "
              f"spill stores {stores} B, spill loads {loads} B"
              + (", wgmma SERIALISED" if serialised else ""), flush=True)
        if not sass:
            continue
        for start, body in loop_bodies(sass[0]):
            ops = opcode_counts(body)
            if not any(ops[op] for op in KEY_OPCODES):
                continue
            if SASS.value:
                print(f"  loop at {start:#x}: {len(body)} instructions, "
                      + ", ".join(f"{op} {ops[op]}" for op in KEY_OPCODES if ops[op]))
            if PIPELINE.value:
                print(f"  loop at {start:#x}: {loop_pipeline(body)}")


if __name__ == "__main__":
    app.run(main)
