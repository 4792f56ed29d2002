/* device.cu -- the device section of kn_cuda.h: finding and describing the
 * GPU, memory, errors, event timing, the streaming-read roofline, and the
 * version tables of the operations. */
#include <algorithm>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <vector>

#include "kernels/cuda/cuda_int.h"

/* ---- errors ------------------------------------------------------------------ */

static thread_local char kn_cuda_errbuf[512];

extern "C" int kn_cuda_set_error(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(kn_cuda_errbuf, sizeof kn_cuda_errbuf, fmt, ap);
    va_end(ap);
    return -1;
}

extern "C" const char *kn_cuda_error(void)
{
    return kn_cuda_errbuf;
}

/* ---- the device ------------------------------------------------------------------ */

extern "C" int kn_cuda_device_count(void)
{
    int n = 0;
    cudaError_t err = cudaGetDeviceCount(&n);

    if (err != cudaSuccess) {
        kn_cuda_set_error("no usable CUDA device: %s", cudaGetErrorString(err));
        (void)cudaGetLastError(); /* clear the sticky-free error for later calls */
        return 0;
    }
    if (n == 0)
        kn_cuda_set_error("no CUDA device");
    return n;
}

extern "C" int kn_cuda_init(int idx)
{
    KN_CUDA_TRY(cudaSetDevice(idx));
    KN_CUDA_TRY(cudaFree(0)); /* create the context now, not inside a timed region */
    return 0;
}

extern "C" void kn_cuda_capability(int *sm_major, int *sm_minor)
{
    static int cached_dev = -1, major, minor;
    int dev = 0;

    if (cudaGetDevice(&dev) != cudaSuccess)
        dev = 0;
    if (dev != cached_dev) {
        if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) != cudaSuccess ||
            cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev) != cudaSuccess)
            major = minor = 0;
        cached_dev = dev;
    }
    *sm_major = major;
    *sm_minor = minor;
}

extern "C" int kn_cuda_info(struct kn_cuda_info *info)
{
    cudaDeviceProp p;
    int dev, clock_khz = 0, bus_bits = 0, v;

    memset(info, 0, sizeof *info);
    KN_CUDA_TRY(cudaGetDevice(&dev));
    KN_CUDA_TRY(cudaGetDeviceProperties(&p, dev));
    snprintf(info->name, sizeof info->name, "%s", p.name);
    info->sm_major = p.major;
    info->sm_minor = p.minor;
    info->sms = p.multiProcessorCount;
    info->mem_bytes = p.totalGlobalMem;
    info->l2_bytes = (size_t)p.l2CacheSize;
    info->smem_optin = p.sharedMemPerBlockOptin;
    /* The memory clock (kHz, of the DDR clock: two transfers a cycle) and
     * the bus width give the theoretical bandwidth. */
    if (cudaDeviceGetAttribute(&clock_khz, cudaDevAttrMemoryClockRate, dev) == cudaSuccess &&
        cudaDeviceGetAttribute(&bus_bits, cudaDevAttrGlobalMemoryBusWidth, dev) == cudaSuccess)
        info->peak_gbs = 2.0 * clock_khz * 1e3 * (bus_bits / 8.0) / 1e9;
    (void)cudaGetLastError();
    if (cudaDriverGetVersion(&v) == cudaSuccess)
        info->driver_version = v;
    if (cudaRuntimeGetVersion(&v) == cudaSuccess)
        info->runtime_version = v;
    return 0;
}

/* ---- memory ---------------------------------------------------------------------- */

extern "C" void *kn_cuda_alloc(size_t bytes)
{
    void *p = NULL;
    cudaError_t err = cudaMalloc(&p, bytes > 0 ? bytes : 1);

    if (err != cudaSuccess) {
        kn_cuda_set_error("cudaMalloc(%zu bytes): %s", bytes, cudaGetErrorString(err));
        (void)cudaGetLastError();
        return NULL;
    }
    return p;
}

extern "C" void kn_cuda_free(void *p)
{
    if (p != NULL)
        cudaFree(p);
}

extern "C" int kn_cuda_upload(void *dst_d, const void *src_h, size_t bytes)
{
    KN_CUDA_TRY(cudaMemcpy(dst_d, src_h, bytes, cudaMemcpyHostToDevice));
    return 0;
}

extern "C" int kn_cuda_download(void *dst_h, const void *src_d, size_t bytes)
{
    KN_CUDA_TRY(cudaMemcpy(dst_h, src_d, bytes, cudaMemcpyDeviceToHost));
    return 0;
}

extern "C" int kn_cuda_copy(void *dst_d, const void *src_d, size_t bytes)
{
    KN_CUDA_TRY(cudaMemcpy(dst_d, src_d, bytes, cudaMemcpyDeviceToDevice));
    return 0;
}

extern "C" int kn_cuda_memset(void *dst_d, int byte, size_t bytes)
{
    KN_CUDA_TRY(cudaMemset(dst_d, byte, bytes));
    return 0;
}

extern "C" int kn_cuda_sync(void)
{
    KN_CUDA_TRY(cudaDeviceSynchronize());
    KN_CUDA_TRY(cudaGetLastError());
    return 0;
}

/* ---- timing ------------------------------------------------------------------------ */

extern "C" double kn_cuda_time_ms(void (*fn)(void *arg), void *arg, int repeat)
{
    std::vector<float> ms;
    cudaEvent_t start, stop;

    if (repeat < 1)
        repeat = 1;
    if (cudaEventCreate(&start) != cudaSuccess || cudaEventCreate(&stop) != cudaSuccess) {
        kn_cuda_set_error("cudaEventCreate failed");
        return -1;
    }
    fn(arg); /* warm-up: module loading, caches, clocks */
    if (kn_cuda_sync() != 0)
        goto fail;
    for (int i = 0; i < repeat; i++) {
        float t = 0;

        cudaEventRecord(start);
        fn(arg);
        cudaEventRecord(stop);
        if (cudaEventSynchronize(stop) != cudaSuccess || cudaEventElapsedTime(&t, start, stop) != cudaSuccess) {
            kn_cuda_sync();
            goto fail;
        }
        ms.push_back(t);
    }
    if (kn_cuda_sync() != 0)
        goto fail;
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
    std::sort(ms.begin(), ms.end());
    return ms[ms.size() / 2];
fail:
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
    return -1;
}

/* ---- the streaming-read roofline ---------------------------------------------------- */

/* Each thread sums float4s at a grid stride, so every byte is read once;
 * the block's sum goes to OUT so the compiler keeps the reads. */
__global__ void kn_read_kernel(const float4 *__restrict__ a, size_t n4, float *out)
{
    float s = 0;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n4; i += (size_t)gridDim.x * blockDim.x) {
        float4 v = __ldcs(&a[i]); /* streaming: do not keep it in L2 */
        s += v.x + v.y + v.z + v.w;
    }
    for (int off = 16; off > 0; off /= 2)
        s += __shfl_down_sync(0xffffffffu, s, off);
    if ((threadIdx.x & 31) == 0 && s == 1234.5f) /* practically never: keeps s live */
        out[blockIdx.x] = s;
}

struct kn_read_args {
    const float4 *a;
    size_t n4;
    float *out;
    int blocks;
};

static void kn_read_run(void *p)
{
    struct kn_read_args *r = (struct kn_read_args *)p;
    kn_read_kernel<<<r->blocks, 512>>>(r->a, r->n4, r->out);
}

extern "C" double kn_cuda_read_bandwidth_gbs(size_t bytes, int repeat)
{
    struct kn_cuda_info info;
    struct kn_read_args r;
    double ms;
    void *a, *out;

    if (kn_cuda_info(&info) != 0)
        return -1;
    bytes = std::max(bytes, 4 * info.l2_bytes) / 16 * 16;
    if ((a = kn_cuda_alloc(bytes)) == NULL)
        return -1;
    if ((out = kn_cuda_alloc(4096 * sizeof(float))) == NULL) {
        kn_cuda_free(a);
        return -1;
    }
    cudaMemset(a, 0, bytes);
    r.a = (const float4 *)a;
    r.n4 = bytes / 16;
    r.out = (float *)out;
    r.blocks = std::min(4096, info.sms * 4);
    ms = kn_cuda_time_ms(kn_read_run, &r, repeat);
    kn_cuda_free(a);
    kn_cuda_free(out);
    return ms > 0 ? bytes / (ms * 1e-3) / 1e9 : -1;
}

/* ---- versions ------------------------------------------------------------------------ */

static const struct kn_cuda_op_table *kn_cuda_table(enum kn_cuda_op op)
{
    switch (op) {
    case KN_CUDA_OP_SGEMM: return &kn_cuda_table_sgemm;
    case KN_CUDA_OP_BGEMM: return &kn_cuda_table_bgemm;
    case KN_CUDA_OP_GEMV: return &kn_cuda_table_gemv;
    case KN_CUDA_OP_DECODE: return &kn_cuda_table_decode;
    case KN_CUDA_OP_PREFILL: return &kn_cuda_table_prefill;
    case KN_CUDA_OP_FLASH_BF16: return &kn_cuda_table_flash_bf16;
    default: return NULL;
    }
}

extern "C" int kn_cuda_versions(enum kn_cuda_op op)
{
    const struct kn_cuda_op_table *t = kn_cuda_table(op);
    return t != NULL ? t->count : 0;
}

extern "C" const char *kn_cuda_version_name(enum kn_cuda_op op, int version)
{
    const struct kn_cuda_op_table *t = kn_cuda_table(op);
    return t != NULL && version >= 0 && version < t->count ? t->names[version] : NULL;
}

extern "C" int kn_cuda_default_version(enum kn_cuda_op op)
{
    const struct kn_cuda_op_table *t = kn_cuda_table(op);
    int major, minor;

    if (t == NULL)
        return -1;
    kn_cuda_capability(&major, &minor);
    return t->default_version(major, minor);
}

extern "C" int kn_cuda_resolve_version(enum kn_cuda_op op, int version)
{
    const struct kn_cuda_op_table *t = kn_cuda_table(op);

    if (t == NULL)
        return kn_cuda_set_error("unknown operation %d", (int)op);
    if (version == KN_CUDA_DEFAULT)
        version = kn_cuda_default_version(op);
    if (version < 0 || version >= t->count)
        return kn_cuda_set_error("version %d does not exist (%d versions)", version, t->count);
    return version;
}
