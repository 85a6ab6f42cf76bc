#!/usr/bin/env bash
# Fetches what `python -m dsllm.bench.ptxas_report` needs into .ptxas/ (git-ignored, ~750 MB
# unpacked): jax's CUDA PJRT plugin (its MosaicGpuCompile lowers a Mosaic GPU module to PTX
# and runs ptxas), ptxas itself (nvidia-cuda-nvcc), cuobjdump and nvdisasm for SASS, and a
# fake libcuda.so.1 built from fake_libcuda.c that claims one sm_90 device. Needs pip access
# to PyPI and a C compiler.
set -euo pipefail
cd "$(dirname "$0")/../../.."
dest=.ptxas
python=${PYTHON:-python}
jax_version=$($python -c "import jax; print(jax.__version__)")
mkdir -p $dest/wheels $dest/stub
$python -m pip download -q --no-deps -d $dest/wheels "jax-cuda13-pjrt==$jax_version" \
    "nvidia-cuda-nvcc>=13,<14" "nvidia-cuda-cuobjdump>=13,<14" "nvidia-cuda-nvdisasm>=13,<14"
for w in $dest/wheels/*.whl; do $python -m zipfile -e "$w" $dest/unpacked; done
chmod +x $dest/unpacked/nvidia/cu13/bin/* 2>/dev/null || true
cc -shared -fPIC -o $dest/stub/libcuda.so.1 dsllm/bench/ptxas/fake_libcuda.c
echo "ready: $dest (plugin $(ls $dest/unpacked/jax_plugins/*/xla_cuda_plugin.so), ptxas $($dest/unpacked/nvidia/cu13/bin/ptxas --version | tail -1))"
