/* cuda_int.h -- what the CUDA kernel files share (not part of the interface).
 *
 * Errors: a kernel file sets the thread's last error with kn_cuda_set_error()
 * and returns -1; KN_CUDA_TRY wraps a runtime call, KN_CUDA_CHECK_LAUNCH a
 * kernel launch.  Versions: each file that owns an operation defines its
 * table, which kn_cuda_versions() and friends (device.cu) read. */
#ifndef LLM_KN_CUDA_INT_H
#define LLM_KN_CUDA_INT_H

#include <cuda_runtime.h>
#include <stdint.h>

#include "kernels/cuda/kn_cuda.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Set this thread's last error (printf-style); returns -1 for `return`. */
int kn_cuda_set_error(const char *fmt, ...)
#ifdef __GNUC__
    __attribute__((format(printf, 1, 2)))
#endif
    ;

/* The versions of one operation: their names (version i is names[i]) and
 * the default for a device of compute capability sm_major.sm_minor. */
struct kn_cuda_op_table {
    int count;
    const char *const *names;
    int (*default_version)(int sm_major, int sm_minor);
};

extern const struct kn_cuda_op_table kn_cuda_table_sgemm;      /* gemm.cu */
extern const struct kn_cuda_op_table kn_cuda_table_bgemm;      /* gemm_bf16.cu */
extern const struct kn_cuda_op_table kn_cuda_table_gemv;       /* gemv.cu */
extern const struct kn_cuda_op_table kn_cuda_table_decode;     /* attention.cu */
extern const struct kn_cuda_op_table kn_cuda_table_prefill;    /* attention.cu */
extern const struct kn_cuda_op_table kn_cuda_table_flash_bf16; /* flash_bf16.cu */

/* Resolve VERSION of OP (KN_CUDA_DEFAULT: the device's default) to an index
 * in its table; -1 with the error set when it does not exist. */
int kn_cuda_resolve_version(enum kn_cuda_op op, int version);

/* The current device's compute capability (cached per device). */
void kn_cuda_capability(int *sm_major, int *sm_minor);

#ifdef __cplusplus
}
#endif

/* Wrap a CUDA runtime call: on failure set the error (naming the call) and
 * return -1 from the enclosing function. */
#define KN_CUDA_TRY(call)                                                                    \
    do {                                                                                     \
        cudaError_t kn_err_ = (call);                                                        \
        if (kn_err_ != cudaSuccess)                                                          \
            return kn_cuda_set_error("%s: %s (%s:%d)", #call, cudaGetErrorString(kn_err_),   \
                                     __FILE__, __LINE__);                                    \
    } while (0)

/* After a kernel launch: a bad launch configuration shows here at once. */
#define KN_CUDA_CHECK_LAUNCH()                                                               \
    do {                                                                                     \
        cudaError_t kn_err_ = cudaGetLastError();                                            \
        if (kn_err_ != cudaSuccess)                                                          \
            return kn_cuda_set_error("kernel launch: %s (%s:%d)", cudaGetErrorString(kn_err_), \
                                     __FILE__, __LINE__);                                    \
    } while (0)

/* Ceiling division for grid sizes. */
#define KN_CDIV(a, b) (((a) + (b) - 1) / (b))

#endif
