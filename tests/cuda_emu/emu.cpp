/* Fiber-based CPU emulation of CUDA blocks (see include/cuda_runtime.h). */
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <vector>

#include "cuda_runtime.h"
#include "kernels/cuda/cuda_int.h"

dim3 threadIdx, blockIdx, blockDim, gridDim;
void *emu_dyn_smem;
size_t emu_max_dyn_smem;
int emu_sms = 132;
size_t emu_optin = 227 * 1024;
long long emu_launches;

/* ---- context switch (x86-64 SysV) ---- */
extern "C" void emu_switch(void **save_sp, void *to_sp);
asm(".text\n.globl emu_switch\nemu_switch:\n"
    "pushq %rbp\npushq %rbx\npushq %r12\npushq %r13\npushq %r14\npushq %r15\n"
    "movq %rsp, (%rdi)\nmovq %rsi, %rsp\n"
    "popq %r15\npopq %r14\npopq %r13\npopq %r12\npopq %rbx\npopq %rbp\nret\n");

enum { RUN, WBLOCK, WWARP, DONE };
struct Copy { void *dst; const void *src; int bytes, src_bytes; };
struct Fiber {
    void *sp;
    char *stack;
    int state;
    unsigned gen;
    std::vector<Copy> pending;
    std::vector<size_t> groups;
};
enum { STACK = 512 * 1024, MAXT = 1024 };
static Fiber fib[MAXT];
static void *sched_sp;
static int cur, nthreads, live, bar_count;
static unsigned bar_gen;
static int warp_live[32], warp_count[32];
static unsigned warp_gen[32];
static std::function<void()> *body;

struct Slot { uint64_t in[12]; uint64_t out[4]; };
static Slot slots[2][32][32];

int emu_lane(void) { return cur & 31; }

static void to_sched(void) { emu_switch(&fib[cur].sp, sched_sp); }

static void run_copies(Fiber &f, size_t upto)
{
    for (size_t i = 0; i < upto; i++) {
        Copy &c = f.pending[i];
        if (c.src_bytes > 0)
            memcpy(c.dst, c.src, (size_t)c.src_bytes);
        memset((char *)c.dst + c.src_bytes, 0, (size_t)(c.bytes - c.src_bytes));
    }
    f.pending.erase(f.pending.begin(), f.pending.begin() + (long)upto);
    for (size_t &g : f.groups)
        g -= upto;
}

extern "C" __attribute__((used, noinline)) void emu_fiber_main(void)
{
    (*body)();
    Fiber &f = fib[cur];
    run_copies(f, f.pending.size());
    f.groups.clear();
    f.state = DONE;
    live--;
    int w = cur / 32;
    warp_live[w]--;
    if (warp_count[w] > 0) {
        fprintf(stderr, "EMU: thread %d exited while its warp waits in a warp-level operation\n", cur);
        abort();
    }
    if (bar_count > 0 && bar_count == live) {
        bar_count = 0;
        bar_gen++;
    }
    to_sched();
    abort(); /* never resumed */
}

extern "C" void emu_fiber_entry(void);
asm(".text\n.globl emu_fiber_entry\nemu_fiber_entry:\n"
    "call emu_fiber_main\nud2\n");

void __syncthreads(void)
{
    unsigned gen = bar_gen;
    if (++bar_count == live) {
        bar_count = 0;
        bar_gen++;
        return;
    }
    fib[cur].state = WBLOCK;
    fib[cur].gen = gen;
    to_sched();
}

/* Arrive at a warp-level operation with IN (nin words); the last lane to
 * arrive runs COMPUTE(parity, warp) which fills every lane's out. */
template <typename F> static Slot &warp_op(const uint64_t *in, int nin, F compute)
{
    const int w = cur / 32, lane = cur & 31;
    const unsigned gen = warp_gen[w];
    const int par = gen & 1;
    memcpy(slots[par][w][lane].in, in, (size_t)nin * 8);
    if (warp_live[w] != 32) {
        fprintf(stderr, "EMU: warp %d operation with %d live lanes\n", w, warp_live[w]);
        abort();
    }
    if (++warp_count[w] == warp_live[w]) {
        compute(par, w);
        warp_count[w] = 0;
        warp_gen[w]++;
    } else {
        fib[cur].state = WWARP;
        fib[cur].gen = gen;
        to_sched();
    }
    return slots[par][w][lane];
}

void __syncwarp(unsigned)
{
    uint64_t z = 0;
    warp_op(&z, 1, [](int, int) {});
}

uint64_t emu_shfl_bits(uint64_t bits, int src)
{
    uint64_t in[2] = {bits, (uint64_t)src};
    return warp_op(in, 2, [](int par, int w) {
        for (int l = 0; l < 32; l++)
            slots[par][w][l].out[0] = slots[par][w][slots[par][w][l].in[1]].in[0];
    }).out[0];
}

void emu_cp_async(void *dst, const void *src, int bytes, int src_bytes)
{
    if (((uintptr_t)dst % bytes) != 0 || (src_bytes > 0 && (uintptr_t)src % bytes != 0)) {
        fprintf(stderr, "EMU: misaligned cp.async of %d bytes: dst %p src %p\n", bytes, dst, src);
        abort();
    }
    if (src_bytes > 0) { /* touch the source now so ASan names the culprit */
        volatile char c = ((const char *)src)[0];
        (void)c;
        c = ((const char *)src)[src_bytes - 1];
    }
    volatile char d = ((char *)dst)[0];
    (void)d;
    d = ((char *)dst)[bytes - 1];
    fib[cur].pending.push_back(Copy{dst, src, bytes, src_bytes});
}

void emu_cp_commit(void) { fib[cur].groups.push_back(fib[cur].pending.size()); }

void emu_cp_wait(int n)
{
    Fiber &f = fib[cur];
    int k = (int)f.groups.size() - n;
    if (k <= 0)
        return;
    size_t upto = f.groups[(size_t)k - 1];
    f.groups.erase(f.groups.begin(), f.groups.begin() + k);
    run_copies(f, upto);
}

void emu_ldmatrix(uint32_t r[4], const void *smem, bool trans)
{
    if ((uintptr_t)smem % 16 != 0) {
        fprintf(stderr, "EMU: misaligned ldmatrix row address %p\n", smem);
        abort();
    }
    uint64_t in[2] = {(uint64_t)(uintptr_t)smem, (uint64_t)trans};
    Slot &s = warp_op(in, 2, [](int par, int w) {
        Slot *L = slots[par][w];
        for (int l = 0; l < 32; l++) {
            if (L[l].in[1] != L[0].in[1]) {
                fprintf(stderr, "EMU: ldmatrix with mixed .trans\n");
                abort();
            }
            for (int j = 0; j < 4; j++) {
                /* matrix j: row i at the address lane 8j + i gave */
                uint16_t e[2];
                for (int h = 0; h < 2; h++) {
                    int row, col;
                    if (!L[l].in[1]) { row = l / 4; col = 2 * (l % 4) + h; }
                    else { row = 2 * (l % 4) + h; col = l / 4; }
                    const uint16_t *p = (const uint16_t *)(uintptr_t)L[8 * j + row].in[0];
                    e[h] = p[col];
                }
                L[l].out[j] = (uint64_t)e[0] | ((uint64_t)e[1] << 16);
            }
        }
    });
    for (int j = 0; j < 4; j++)
        r[j] = (uint32_t)s.out[j];
}

static float bf(uint32_t reg, int hi) { return __uint_as_float(((reg >> (16 * hi)) & 0xffffu) << 16); }

/* mma.sync.m16n8k16.row.col.f32.bf16.bf16.f32, fragments per the PTX ISA:
 * A: a_r holds (row g + 8*(r&1), cols 2t + 8*(r>>1) + {0,1});
 * B: b_r holds (k = 2t + 8r + {0,1}, n = g); C: c_i = (g + 8*(i>>1), 2t + (i&1)). */
void emu_mma_bf16(float c[4], const uint32_t a[4], uint32_t b0, uint32_t b1)
{
    uint64_t in[10];
    for (int i = 0; i < 4; i++)
        in[i] = a[i];
    in[4] = b0;
    in[5] = b1;
    for (int i = 0; i < 4; i++)
        in[6 + i] = __float_as_uint(c[i]);
    Slot &s = warp_op(in, 10, [](int par, int w) {
        Slot *L = slots[par][w];
        float A[16][16], B[16][8], C[16][8];
        for (int l = 0; l < 32; l++) {
            int g = l / 4, t = l % 4;
            for (int r = 0; r < 4; r++)
                for (int h = 0; h < 2; h++)
                    A[g + 8 * (r & 1)][2 * t + 8 * (r >> 1) + h] = bf((uint32_t)L[l].in[r], h);
            for (int r = 0; r < 2; r++)
                for (int h = 0; h < 2; h++)
                    B[2 * t + 8 * r + h][g] = bf((uint32_t)L[l].in[4 + r], h);
            for (int i = 0; i < 4; i++)
                C[g + 8 * (i >> 1)][2 * t + (i & 1)] = __uint_as_float((uint32_t)L[l].in[6 + i]);
        }
        for (int l = 0; l < 32; l++) {
            int g = l / 4, t = l % 4;
            for (int i = 0; i < 4; i++) {
                int m = g + 8 * (i >> 1), n = 2 * t + (i & 1);
                double acc = C[m][n];
                for (int k = 0; k < 16; k++)
                    acc += (double)A[m][k] * B[k][n];
                L[l].out[i] = __float_as_uint((float)acc);
            }
        }
    });
    for (int i = 0; i < 4; i++)
        c[i] = __uint_as_float((uint32_t)s.out[i]);
}

void emu_launch(dim3 grid, dim3 block, size_t smem, std::function<void()> fn)
{
    const int nt = (int)(block.x * block.y * block.z);
    if (nt < 1 || nt > 1024 || nt % 32 != 0 || grid.x < 1 || grid.y < 1 || grid.z < 1 || grid.y > 65535 ||
        grid.z > 65535 || grid.x > 0x7fffffffu) {
        fprintf(stderr, "EMU: bad launch grid (%u,%u,%u) block %d\n", grid.x, grid.y, grid.z, nt);
        abort();
    }
    if (smem > 48 * 1024 && smem > emu_max_dyn_smem) {
        fprintf(stderr, "EMU: %zu bytes of dynamic shared memory without the attribute (%zu)\n", smem,
                emu_max_dyn_smem);
        abort();
    }
    if (smem > emu_optin) {
        fprintf(stderr, "EMU: %zu bytes of dynamic shared memory\n", smem);
        abort();
    }
    emu_max_dyn_smem = 0;
    emu_launches++;
    gridDim = grid;
    blockDim = block;
    body = &fn;
    for (int i = 0; i < nt; i++)
        if (fib[i].stack == NULL)
            fib[i].stack = (char *)malloc(STACK);
    for (unsigned bz = 0; bz < grid.z; bz++)
        for (unsigned by = 0; by < grid.y; by++)
            for (unsigned bx = 0; bx < grid.x; bx++) {
                blockIdx = dim3(bx, by, bz);
                emu_dyn_smem = smem ? aligned_alloc(128, (smem + 127) / 128 * 128) : NULL;
                if (smem)
                    memset(emu_dyn_smem, 0xff, (smem + 127) / 128 * 128); /* NaN: unwritten shared memory shows */
                nthreads = live = nt;
                bar_count = 0;
                for (int w = 0; w < nt / 32; w++) {
                    warp_live[w] = 32;
                    warp_count[w] = 0;
                }
                for (int i = 0; i < nt; i++) {
                    Fiber &f = fib[i];
                    f.state = RUN;
                    f.pending.clear();
                    f.groups.clear();
                    void **top = (void **)(((uintptr_t)(f.stack + STACK)) & ~(uintptr_t)15);
                    *--top = (void *)emu_fiber_entry;  /* popped by ret */
                    for (int k = 0; k < 6; k++)
                        *--top = NULL;                 /* rbp rbx r12 r13 r14 r15 */
                    f.sp = top;
                }
                int done = 0;
                static int order[MAXT];
                static unsigned long long rs = 0;
                static int shuffle = -1;
                if (shuffle < 0) {
                    const char *e = getenv("EMU_SHUFFLE");
                    shuffle = e ? 1 : 0;
                    rs = e ? strtoull(e, NULL, 10) * 2654435761ull + 1 : 1;
                }
                for (int i = 0; i < nt; i++)
                    order[i] = i;
                while (done < nt) {
                    bool progress = false;
                    if (shuffle)
                        for (int i = nt - 1; i > 0; i--) {
                            rs = rs * 6364136223846793005ull + 1442695040888963407ull;
                            int j = (int)((rs >> 33) % (unsigned long long)(i + 1)), t = order[i];
                            order[i] = order[j];
                            order[j] = t;
                        }
                    for (int ii = 0; ii < nt; ii++) {
                        const int i = order[ii];
                        Fiber &f = fib[i];
                        if (f.state == DONE || (f.state == WBLOCK && f.gen == bar_gen) ||
                            (f.state == WWARP && f.gen == warp_gen[i / 32]))
                            continue;
                        f.state = RUN;
                        cur = i;
                        threadIdx = dim3(i % block.x, (i / block.x) % block.y, i / (block.x * block.y));
                        emu_switch(&sched_sp, f.sp);
                        progress = true;
                        if (f.state == DONE)
                            done++;
                    }
                    if (!progress) {
                        fprintf(stderr, "EMU: deadlock in block (%u,%u,%u): %d of %d threads live\n", bx, by, bz,
                                live, nt);
                        abort();
                    }
                }
                free(emu_dyn_smem);
                emu_dyn_smem = NULL;
            }
}

cudaError_t cudaDeviceGetAttribute(int *v, cudaDeviceAttr a, int)
{
    *v = a == cudaDevAttrMultiProcessorCount ? emu_sms : a == cudaDevAttrComputeCapabilityMajor ? 9
         : a == cudaDevAttrMaxSharedMemoryPerBlockOptin ? (int)emu_optin : 0;
    return cudaSuccess;
}

/* ---- the device section of kn_cuda.h, on the host ---- */
static char errbuf[512];
extern "C" int kn_cuda_set_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errbuf, sizeof errbuf, fmt, ap);
    va_end(ap);
    return -1;
}
extern "C" const char *kn_cuda_error(void) { return errbuf; }
extern "C" int kn_cuda_device_count(void)
{
    const char *s = getenv("EMU_SMS");
    if (s)
        emu_sms = atoi(s);
    if ((s = getenv("EMU_OPTIN")) != NULL)
        emu_optin = (size_t)atol(s);
    return 1;
}
extern "C" int kn_cuda_init(int) { return 0; }
extern "C" void *kn_cuda_alloc(size_t bytes) { return aligned_alloc(256, (bytes + 255) / 256 * 256); }
extern "C" void kn_cuda_free(void *p) { free(p); }
extern "C" int kn_cuda_upload(void *d, const void *s, size_t n) { memcpy(d, s, n); return 0; }
extern "C" int kn_cuda_download(void *d, const void *s, size_t n) { memcpy(d, s, n); return 0; }
extern "C" int kn_cuda_copy(void *d, const void *s, size_t n) { memcpy(d, s, n); return 0; }
extern "C" int kn_cuda_memset(void *d, int b, size_t n) { memset(d, b, n); return 0; }
extern "C" int kn_cuda_sync(void) { return 0; }
extern "C" void kn_cuda_capability(int *a, int *b) { *a = 9; *b = 0; }
static const struct kn_cuda_op_table *table(enum kn_cuda_op op)
{
    switch (op) {
    case KN_CUDA_OP_DECODE: return &kn_cuda_table_decode;
    case KN_CUDA_OP_PREFILL: return &kn_cuda_table_prefill;
    case KN_CUDA_OP_FLASH_BF16: return &kn_cuda_table_flash_bf16;
    default: return NULL;
    }
}
extern "C" int kn_cuda_versions(enum kn_cuda_op op) { return table(op) ? table(op)->count : 0; }
extern "C" const char *kn_cuda_version_name(enum kn_cuda_op op, int v)
{
    const struct kn_cuda_op_table *t = table(op);
    return t && v >= 0 && v < t->count ? t->names[v] : NULL;
}
extern "C" int kn_cuda_default_version(enum kn_cuda_op op) { return table(op) ? table(op)->default_version(9, 0) : -1; }
extern "C" int kn_cuda_resolve_version(enum kn_cuda_op op, int v)
{
    const struct kn_cuda_op_table *t = table(op);
    if (!t)
        return kn_cuda_set_error("unknown op");
    if (v == KN_CUDA_DEFAULT)
        v = t->default_version(9, 0);
    if (v < 0 || v >= t->count)
        return kn_cuda_set_error("version %d does not exist", v);
    return v;
}
