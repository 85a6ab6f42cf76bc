/* A fake libcuda.so.1 for compiling Mosaic GPU kernels without a GPU: it claims one sm_90
   device, so that MosaicGpuCompile runs MLIR -> PTX -> ptxas (whose report is what we want),
   and refuses to load the module. */
#include <stdio.h>
typedef int CUresult;
typedef int CUdevice;
enum { CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76 };
CUresult cuInit(unsigned flags) { return 0; }
CUresult cuDriverGetVersion(int *v) { *v = 13000; return 0; }
CUresult cuCtxGetDevice(CUdevice *d) { *d = 0; return 0; }
CUresult cuDeviceGetAttribute(int *v, int attr, CUdevice d) {
  if (attr == CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR) *v = 9;
  else if (attr == CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR) *v = 0;
  else *v = 0;
  return 0;
}
static const char *msg = "fake libcuda: no device";
CUresult cuGetErrorString(CUresult e, const char **s) { *s = msg; return 0; }
CUresult cuGetErrorName(CUresult e, const char **s) { *s = msg; return 0; }
CUresult cuModuleLoadData(void **m, const void *image) { fprintf(stderr, "fake libcuda: cuModuleLoadData refused\n"); return 100; }
CUresult cuModuleGetFunction(void **f, void *m, const char *name) { return 100; }
CUresult cuFuncSetAttribute(void *f, int attr, int v) { return 100; }
