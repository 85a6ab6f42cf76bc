"""dsllm.bench.ptxas_report: its parsing (always), and (slow, needs `dsllm/bench/ptxas/setup.sh`)
that no kernel of the default configuration spills registers."""
import pathlib

import pytest

from dsllm.bench import ptxas_report
from dsllm.kernels.mgpu_common import Blocks

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
    assert ptxas_report.parse_blocks("stages=3,trim_blocks=False") == \
        Blocks(stages=3, trim_blocks=False)
    assert ptxas_report.parse_blocks("") == Blocks()


@pytest.mark.slow
@pytest.mark.parametrize("head_dim", [64, 128])
def test_no_kernel_spills(head_dim):
    ptxas_dir = pathlib.Path(ptxas_report.ROOT, ".ptxas")
    if not ptxas_dir.exists():
        pytest.fail("run dsllm/bench/ptxas/setup.sh first (fetches the CUDA plugin and ptxas)")
    modules = ptxas_report.lower_kernels(Blocks(), head_dim, 1, True)
    rows = ptxas_report.report(modules, ptxas_dir)
    assert len(rows) == 3
    for i, (_, stores, loads, serialised) in enumerate(rows):
        assert (stores, loads, serialised) == (0, 0, False), f"kernel {i}: {rows[i]}"
