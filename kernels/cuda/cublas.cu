/* cublas.cu -- the baseline every matmul kernel is measured against:
 * cublasSgemm (float32) and cublasGemmEx (bf16 inputs, float32 accumulation
 * and output) for out (m, n) = x (m, k) W^T, all row-major.
 *
 * cuBLAS is column-major.  A row-major (r, c) matrix is the column-major
 * (c, r) one with the same memory, so row-major out (m, n) is column-major
 * out^T (n, m) = W x^T: W, row-major (n, k), is column-major (k, n) and
 * transposed (CUBLAS_OP_T) gives (n, k); x, row-major (m, k), is column-major
 * (k, m) and used as is (CUBLAS_OP_N).  Every leading dimension is the
 * row length: k for W and x, n for out.
 *
 * One cuBLAS handle per thread, created on first use and kept (a handle is
 * bound to the device current when it was made: call kn_cuda_init first).
 * The default math mode is set explicitly, so cublasSgemm is true float32
 * (no TF32 tensor cores) unless NVIDIA_TF32_OVERRIDE says otherwise. */
#include <cublas_v2.h>

#include "kernels/cuda/cuda_int.h"

/* This thread's handle, or NULL with the error set. */
static cublasHandle_t kn_cublas_handle(void)
{
    static thread_local cublasHandle_t handle = NULL;
    cublasStatus_t st;

    if (handle != NULL)
        return handle;
    st = cublasCreate(&handle);
    if (st != CUBLAS_STATUS_SUCCESS) {
        kn_cuda_set_error("cublasCreate: %s", cublasGetStatusString(st));
        handle = NULL;
        return NULL;
    }
    st = cublasSetMathMode(handle, CUBLAS_DEFAULT_MATH);
    if (st != CUBLAS_STATUS_SUCCESS) {
        kn_cuda_set_error("cublasSetMathMode: %s", cublasGetStatusString(st));
        cublasDestroy(handle);
        handle = NULL;
        return NULL;
    }
    return handle;
}

/* Shapes cuBLAS takes (ints, each >= 1).  0, or -1 with the error set. */
static int kn_cublas_check(const char *fn, int m, int n, int k)
{
    if (m < 1 || n < 1 || k < 1)
        return kn_cuda_set_error("%s: bad shape m=%d n=%d k=%d", fn, m, n, k);
    return 0;
}

extern "C" int kn_cublas_sgemm(float *out, const float *x, const float *w, int m, int n, int k)
{
    const float one = 1.0f, zero = 0.0f;
    cublasHandle_t h;
    cublasStatus_t st;

    if (kn_cublas_check("kn_cublas_sgemm", m, n, k) != 0 || (h = kn_cublas_handle()) == NULL)
        return -1;
    st = cublasSgemm(h, CUBLAS_OP_T, CUBLAS_OP_N, n, m, k, &one, w, k, x, k, &zero, out, n);
    if (st != CUBLAS_STATUS_SUCCESS)
        return kn_cuda_set_error("cublasSgemm(m=%d n=%d k=%d): %s", m, n, k, cublasGetStatusString(st));
    return 0;
}

extern "C" int kn_cublas_bgemm(float *out, const uint16_t *x, const uint16_t *w, int m, int n, int k)
{
    const float one = 1.0f, zero = 0.0f;
    cublasHandle_t h;
    cublasStatus_t st;

    if (kn_cublas_check("kn_cublas_bgemm", m, n, k) != 0 || (h = kn_cublas_handle()) == NULL)
        return -1;
    st = cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, n, m, k, &one, w, CUDA_R_16BF, k, x, CUDA_R_16BF, k, &zero,
                      out, CUDA_R_32F, n, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    if (st != CUBLAS_STATUS_SUCCESS)
        return kn_cuda_set_error("cublasGemmEx(bf16, m=%d n=%d k=%d): %s", m, n, k, cublasGetStatusString(st));
    return 0;
}
