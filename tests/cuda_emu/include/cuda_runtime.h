/* A CPU emulation of the bits of CUDA the llmscale kernels use: every CUDA
 * thread is a fiber; barriers, shuffles, ldmatrix, mma.sync and cp.async are
 * emulated per their PTX definitions.  For testing only. */
#pragma once
#include <math.h>
#include <stdint.h>
#include <stddef.h>
#include <string.h>
#include <functional>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static
#define __launch_bounds__(...)
#define __align__(n) alignas(n)

struct dim3 {
    unsigned x, y, z;
    dim3(unsigned a = 1, unsigned b = 1, unsigned c = 1) : x(a), y(b), z(c) {}
};
struct alignas(16) float4 { float x, y, z, w; };
struct alignas(8) float2 { float x, y; };
static inline float4 make_float4(float a, float b, float c, float d) { float4 r = {a, b, c, d}; return r; }

extern dim3 threadIdx, blockIdx, blockDim, gridDim;
extern void *emu_dyn_smem;

inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }
inline unsigned min(unsigned a, unsigned b) { return a < b ? a : b; }
inline long long min(long long a, long long b) { return a < b ? a : b; }

inline float __uint_as_float(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
inline uint32_t __float_as_uint(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
inline float __fmul_rn(float a, float b) { volatile float r = a * b; return r; }
inline float __fadd_rn(float a, float b) { volatile float r = a + b; return r; }
inline float __fsub_rn(float a, float b) { volatile float r = a - b; return r; }
inline size_t __cvta_generic_to_shared(const void *p) { return (size_t)p; }

void __syncthreads(void);
void __syncwarp(unsigned mask = 0xffffffffu);
uint64_t emu_shfl_bits(uint64_t bits, int src_lane);
int emu_lane(void);

template <typename T> T emu_shfl(T v, int src)
{
    uint64_t b = 0;
    memcpy(&b, &v, sizeof v);
    b = emu_shfl_bits(b, src & 31);
    T r;
    memcpy(&r, &b, sizeof r);
    return r;
}
template <typename T> T __shfl_xor_sync(unsigned, T v, int m) { return emu_shfl(v, emu_lane() ^ m); }
template <typename T> T __shfl_sync(unsigned, T v, int src) { return emu_shfl(v, src); }
template <typename T> T __shfl_up_sync(unsigned, T v, unsigned d)
{
    int l = emu_lane();
    return emu_shfl(v, l >= (int)d ? l - (int)d : l);
}
template <typename T> T __shfl_down_sync(unsigned, T v, unsigned d)
{
    int l = emu_lane();
    return emu_shfl(v, l + (int)d < 32 ? l + (int)d : l);
}

void emu_cp_async(void *dst, const void *src, int bytes, int src_bytes);
void emu_cp_commit(void);
void emu_cp_wait(int n);
void emu_ldmatrix(uint32_t r[4], const void *smem, bool trans);
void emu_mma_bf16(float c[4], const uint32_t a[4], uint32_t b0, uint32_t b1);
void emu_launch(dim3 grid, dim3 block, size_t smem, std::function<void()> body);

/* runtime API */
typedef int cudaError_t;
enum { cudaSuccess = 0 };
enum cudaFuncAttribute { cudaFuncAttributeMaxDynamicSharedMemorySize = 8 };
enum cudaDeviceAttr { cudaDevAttrMultiProcessorCount = 16, cudaDevAttrComputeCapabilityMajor = 75,
                      cudaDevAttrComputeCapabilityMinor = 76, cudaDevAttrMaxSharedMemoryPerBlockOptin = 97 };
inline const char *cudaGetErrorString(cudaError_t) { return "emulated error"; }
inline cudaError_t cudaGetLastError(void) { return cudaSuccess; }
inline cudaError_t cudaGetDevice(int *d) { *d = 0; return cudaSuccess; }
cudaError_t cudaDeviceGetAttribute(int *v, cudaDeviceAttr a, int dev);
template <typename F> cudaError_t cudaFuncSetAttribute(F, cudaFuncAttribute, int bytes);
extern size_t emu_max_dyn_smem;
template <typename F> cudaError_t cudaFuncSetAttribute(F, cudaFuncAttribute, int bytes)
{
    emu_max_dyn_smem = (size_t)bytes;
    extern size_t emu_optin;
    return (size_t)bytes <= emu_optin ? cudaSuccess : 1;
}
