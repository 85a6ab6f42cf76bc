"""dsllm.bench.ptxas_report: its parsing (always), and (slow, needs `dsllm/bench/ptxas/setup.sh`)
that no kernel of the default configuration spills registers."""
import pathlib

import pytest

from dsllm.bench import ptxas_report
from dsllm.kernels.mgpu_common import Blocks, parse_blocks

LOG = """ptxas info    : Compiling entry function 'anonymous_mosaic_gpu_kernel' for 'sm_90a'
ptxas info    : Function properties for anonymous_mosaic_gpu_kernel
    232 bytes stack frame, 596 bytes spill stores, 664 bytes spill loads
ptxas info    : (C7512) Potential Performance Loss: wgmma.mma_async instructions are serialized
ptxas info    : Used 168 registers, used 16 barriers, 232 bytes cumulative stack size, 1 bytes smem
"""


def test_summary_reads_spills_and_serialisation():
    assert ptxas_report.ptxas_summary(LOG) == (168, 596, 664, True)
    clean = "ptxas info    : Used 168 registers, used 16 barriers, 1 bytes smem\n"
    assert ptxas_report.ptxas_summary(clean) == (168, 0, 0, False)
    with pytest.raises(RuntimeError, match="no ptxas report"):
        ptxas_report.ptxas_summary("JIT session error: ...")


def test_blocks_from_flag():
    assert parse_blocks("stages=3,trim_blocks=False,backward=split") == \
        Blocks(stages=3, trim_blocks=False, backward="split")
    assert parse_blocks("") == Blocks()


@pytest.mark.slow
@pytest.mark.parametrize("head_dim", [64, 128])
def test_no_kernel_spills(head_dim):
    ptxas_dir = pathlib.Path(ptxas_report.ROOT, ".ptxas")
    if not ptxas_dir.exists():
        pytest.fail("run dsllm/bench/ptxas/setup.sh first (fetches the CUDA plugin and ptxas)")
    # A shape where the persistent kernels loop over items (at the default one, their item
    # loops fold away). No spill at all in a block loop; around them, in the item loops, a few
    # scalars (4-12 bytes measured at this shape, NOTES.md v12), read once per item.
    modules = ptxas_report.lower_kernels(Blocks(), head_dim, 1, True, seq=16384)
    rows = ptxas_report.report(modules, ptxas_dir, sass=True)
    assert len(rows) == 4   # forward, and the fused backward or the split dQ and dK/dV (auto)
    for i, (_, stores, loads, serialised, sass) in enumerate(rows):
        assert not serialised, f"kernel {i}: wgmma serialised"
        assert stores <= 16 and loads <= 16, f"kernel {i}: {stores} B spilled, {loads} B reloaded"
        loops = ptxas_report.innermost_loops(sass)
        assert loops, f"kernel {i}: no block loop found"
        for start, body in loops:
            ops = ptxas_report.opcode_counts(body)
            assert ops["LDL"] == ops["STL"] == 0, f"kernel {i}: spills in the loop at {start:#x}"


SASS = """
        /*0100*/                   HGMMA.64x64x16.F32.BF16 R24, gdesc[UR4], R24 ;  /* 0x0 */
        /*0110*/                   FMUL R2, R3, 0.5 ;                               /* 0x0 */
        /*0120*/              @!P1 BRA 0x0300 ;                                     /* 0x0 */
        /*0130*/                   MUFU.EX2 R4, R2 ;                                /* 0x0 */
        /*0140*/               @P2 BRA 0x0100 ;                                     /* 0x0 */
        /*0150*/                   EXIT ;                                           /* 0x0 */
        /*0300*/                   SYNCS.PHASECHK.TRANS64 P1, [R5+URZ], R4 ;       /* 0x0 */
        /*0310*/                   BRA 0x0110 ;                                     /* 0x0 */
"""


def test_loop_opcodes_counts_loop_bodies_not_out_of_line_waits():
    loops = ptxas_report.loop_opcodes(SASS, min_length=1)
    assert len(loops) == 1   # the retry branch after EXIT is not a loop
    start, length, ops = loops[0]
    assert (start, length) == (0x100, 5)
    assert (ops["HGMMA"], ops["FMUL"], ops["MUFU"], ops["BRA"]) == (1, 1, 1, 2)


# A loop in cuobjdump's format (the listing's encoding lines left out): the wait for the second
# matmul (DEPBAR 0x0) right after the first's, and an arrival among the exps.
PIPELINE_SASS = "\n".join(f"        /*{a:04x}*/                   {i} ;" for a, i in enumerate([
    "MOV R1, c[0x0][0x28]",
    "HGMMA.64x64x16.F32.BF16 R24, gdesc[UR4], R24, gsb0",
    "HGMMA.64x64x16.F32.BF16 R56, gdesc[UR8], R56, gsb0",
    "WARPGROUP.DEPBAR.LE gsb0, 0x1",
    "WARPGROUP.DEPBAR.LE gsb0, 0x0",
    "MUFU.EX2 R2, R2",
    "SYNCS.ARRIVE.TRANS64.A1T0 RZ, [UR7+0x318c0], RZ",
    "MUFU.EX2 R3, R3",
    "MUFU.EX2 R4, R4",
    "STS [R9+0x30400], R4",
    "STS [R9+0x30420], R3",
    "SYNCS.PHASECHK.TRANS64.TRYWAIT P1, [UR7+0x318c0], R13",
    "@P1 BRA 0x1",
    "EXIT",
    "@!P1 BRA 0xb",
]))


def test_innermost_loops_leave_out_the_loops_around_them():
    [(start, body)] = ptxas_report.innermost_loops(NESTED_SASS, min_length=1)
    assert start == 0x0110 and [op for op, _ in body] == ["FMUL", "BRA"]


NESTED_SASS = """
        /*0100*/                   FADD R1, R1, 1 ;                                 /* 0x0 */
        /*0110*/                   FMUL R2, R3, 0.5 ;                               /* 0x0 */
        /*0120*/               @P1 BRA 0x0110 ;                                     /* 0x0 */
        /*0130*/               @P2 BRA 0x0100 ;                                     /* 0x0 */
        /*0140*/                   EXIT ;                                           /* 0x0 */
"""


def test_loops_opcodes_and_pipeline_of_a_listing():
    [(start, body)] = ptxas_report.loop_bodies(PIPELINE_SASS, min_length=5)
    assert start == 1 and len(body) == 12   # HGMMA .. BRA; the spin-wait's branch after EXIT left out
    [(_, n, ops)] = ptxas_report.loop_opcodes(PIPELINE_SASS, min_length=5)
    assert n == 12 and ops["MUFU"] == 3 and ops["HGMMA"] == 2 and ops["STS"] == 2
    assert ptxas_report.loop_pipeline(body) == "G G W1 W0 e A e2 S2 T"
