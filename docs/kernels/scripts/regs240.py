"""The bench's shape 1 (pallas and the fused variant) with 240 registers per compute warpgroup
and 24 for the producer (mgpu_common's constants set before tracing)."""
import sys
import dsllm.kernels.mgpu_common as mc
mc.COMPUTE_REGISTERS, mc.MEMORY_REGISTERS = 240, 24
from absl import app
from dsllm.bench import attention
sys.argv = ["attention", "--shapes=1", "--impls=pallas", "--variants=fused", "--variant_shapes=1",
            "--extra_checks=false"] + sys.argv[1:]
app.run(attention.main)
