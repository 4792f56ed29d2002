/* avx512_simde.c -- kernels/matmul_avx512.c and quant_avx512.c compiled a
 * second time, against SIMDe's portable AVX-512 intrinsics instead of the
 * CPU's, for tests/check_avx512: it defines kn_gemm_avx512_impl_simde,
 * kn_gemv_avx512_impl_simde and kn_q8_gemv_chunk_avx512_simde
 * (matmul_int.h), which run on any CPU.  Without
 * SIMDe (configure's check for simde/x86/avx512.h) it defines nothing and
 * the test skips. */
#include "config.h"

#ifdef HAVE_SIMDE_X86_AVX512_H
#define KN_AVX512_SIMDE 1
#include "kernels/matmul_avx512.c"
#include "kernels/quant_avx512.c"
#else
typedef int kn_avx512_simde_absent; /* ISO C wants a declaration */
#endif
