/* backend.c -- the run-time knobs shared by all kernels (thread count and
 * instruction set) and the table of backends that programs select by name. */
#include "kernels/kernels.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef _OPENMP
#include <omp.h>
#endif

/* ---- threads ---------------------------------------------------------------- */

/* 0 until the first kn_set_threads or kn_get_threads: then OpenMP's default.
 * Atomic (as kn_isa_current) so that kernels called from several threads at
 * once read it without a data race. */
static _Atomic int kn_threads;

/* Use N threads in the kernels; N < 1 restores the default (all cores, as
 * OpenMP reports them).  Without OpenMP the kernels are serial and this
 * only records the number. */
void kn_set_threads(int n)
{
#ifdef _OPENMP
    kn_threads = n >= 1 ? n : omp_get_max_threads();
#else
    kn_threads = n >= 1 ? n : 1;
#endif
}

/* The thread count the kernels use (>= 1); 1 when built without OpenMP. */
int kn_get_threads(void)
{
#ifdef _OPENMP
    if (kn_threads < 1)
        kn_threads = omp_get_max_threads();
    return kn_threads;
#else
    return 1;
#endif
}

/* libgomp's threads wait for the next parallel region by spinning for
 * 300,000 rounds before they sleep.  A forward pass opens a hundred short
 * regions per token, so the threads spin almost all the time between them,
 * and on a small VM the hypervisor then takes the spinning vCPU away (pause-
 * loop exiting): llmserve's two-thread decode of a 110M model ran at 15
 * tokens/s so, and at 28 with a spin of 10,000 rounds (docs/BENCHMARKS.md).
 * libgomp reads its settings only at start-up, so when the user has set
 * none of them this puts GOMP_SPINCOUNT=10000 in the environment and
 * executes the program again, once (LLMSCALE_OMP_ENV marks the second
 * start).  Call it first thing in main, before any thread exists.  Returns
 * only when nothing was done or the re-execution failed. */
void kn_openmp_defaults(char **argv)
{
#if defined(_OPENMP) && defined(__linux__)
    if (getenv("LLMSCALE_OMP_ENV") != NULL || getenv("OMP_WAIT_POLICY") != NULL ||
        getenv("GOMP_SPINCOUNT") != NULL)
        return;
    if (setenv("GOMP_SPINCOUNT", "10000", 0) != 0 || setenv("LLMSCALE_OMP_ENV", "1", 1) != 0)
        return;
    execv("/proc/self/exe", argv);
    /* Not re-executed (no /proc): carry on with libgomp's defaults. */
    unsetenv("GOMP_SPINCOUNT");
#else
    (void)argv;
#endif
}

/* ---- instruction sets ---------------------------------------------------------- */

/* -1 until first use: then the best the CPU has. */
static _Atomic int kn_isa_current = -1;

/* The best ISA this CPU supports, asked of the CPU once.  AVX-512 means F
 * and BW (the Q8 GEMV's byte arithmetic, quant_avx512.c) besides AVX2 and
 * FMA: every AVX-512 CPU since Skylake-SP has both; one with F alone (Xeon
 * Phi) runs the AVX2 kernels. */
static enum kn_isa kn_isa_detect(void)
{
#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx2") &&
        __builtin_cpu_supports("fma"))
        return KN_ISA_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return KN_ISA_AVX2;
#endif
    return KN_ISA_PORTABLE;
}

/* Force ISA; KN_ISA_AUTO, or one the CPU lacks, gives the best the CPU has
 * at or below it (AVX-512 > AVX2 > portable).  Returns the ISA now in use. */
enum kn_isa kn_set_isa(enum kn_isa isa)
{
    enum kn_isa best = kn_isa_detect();

    if (isa == KN_ISA_AUTO || isa > best || isa < KN_ISA_AUTO)
        isa = best;
    kn_isa_current = (int)isa;
    return isa;
}

/* The ISA in use (never KN_ISA_AUTO). */
enum kn_isa kn_get_isa(void)
{
    if (kn_isa_current < 0)
        kn_isa_current = (int)kn_isa_detect();
    return (enum kn_isa)kn_isa_current;
}

/* A short lower-case name ("auto", "portable", "avx2", "avx512"); "unknown"
 * for values outside the enum. */
const char *kn_isa_name(enum kn_isa isa)
{
    switch (isa) {
    case KN_ISA_AUTO:
        return "auto";
    case KN_ISA_PORTABLE:
        return "portable";
    case KN_ISA_AVX2:
        return "avx2";
    case KN_ISA_AVX512:
        return "avx512";
    }
    return "unknown";
}

/* ---- backends ----------------------------------------------------------------- */

static const struct kn_backend kn_backend_cpu = {
    .name = "cpu",
    .matmul = kn_matmul,
    .attention_prefill = kn_attention_prefill,
    .attention_decode = kn_attention_decode,
};

static const struct kn_backend kn_backend_ref = {
    .name = "ref",
    .matmul = kn_matmul_ref,
    .attention_prefill = kn_attention_prefill_ref,
    .attention_decode = kn_attention_decode_ref,
};

static const struct kn_backend *const kn_backends[] = {
    &kn_backend_cpu,
    &kn_backend_ref,
};

/* The backend called NAME ("cpu" or "ref"); NULL for NULL or an unknown name. */
const struct kn_backend *kn_backend_find(const char *name)
{
    if (name == NULL)
        return NULL;
    for (size_t i = 0; i < sizeof kn_backends / sizeof kn_backends[0]; i++)
        if (strcmp(kn_backends[i]->name, name) == 0)
            return kn_backends[i];
    return NULL;
}
