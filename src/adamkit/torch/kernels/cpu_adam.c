/* Adam over a list of CPU tensors: every decay mode, AMSGrad and maximize. Params are float32
 * or bfloat16, moments float32 or bfloat16 (either with either), and a bf16 param is written
 * back by round to nearest even, Kahan-compensated or stochastic rounding
 * (adamkit/torch/kernels/rounding.py defines both, and this file computes them bit for bit
 * alike). Built on first use by adamkit/torch/kernels/cpu.py.
 *
 * Per tensor k: the grad gets maximize, l2 * p and l1 * sign(p); the param is scaled by
 * shrink; its step t (read through step[k]) gives step_size = lr / (1 - beta1^t) and
 * inv_sqrt_bias2 = 1 / sqrt(1 - beta2^t), keys[k] its key into the stochastic-rounding stream.
 * The corrections and 1 - beta are computed in double (1.0f - 0.999f is off by 1e-5). Work is split in tiles; bf16 tiles are
 * widened to fp32, updated, and rounded on the way back, in simple loops that the compiler
 * vectorizes. Where the CPU has AVX512-BF16 (checked at run time), bf16 is instead widened in
 * registers, with no tile buffers, and rounded to nearest by the CPU's conversion instruction.
 *
 * Threads: a step's elements, all its tensors end to end, are cut into chunks that the calling
 * thread and a small pool take from one atomic counter. The caller waits only for chunks
 * already taken: a pool thread that another job keeps off the CPU takes none and delays nothing,
 * so even a step of a few small tensors is worth sharing out. */
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TILE 2048
/* A chunk is a few microseconds of work or more (a claim costs ~0.1), and at most a fraction of
 * a millisecond: the longest the caller can wait for a thread descheduled in the middle of one. */
#define CHUNK_MIN (8 * TILE)
#define CHUNK_MAX (128 * TILE)
#define CHUNKS_PER_THREAD 32
#define MAX_THREADS 256
/* An idle pool thread watches this long for the next step, then sleeps: a longer spin takes CPU
 * from whatever else runs and gained nothing measurable. */
#define SPIN_NS 5000

enum { NEAREST = 0, KAHAN = 1, STOCHASTIC = 2 };
#define WEYL 0x9E3779B9u

typedef struct {
    float step_size, inv_sqrt_bias2, beta1, one_minus_beta1, beta2, one_minus_beta2, eps, l2, l1, shrink,
        sign;
    int amsgrad;
    uint32_t key; /* the tensor's key into the stochastic-rounding stream */
} hyper;

/* One bucket's tensors: per tensor k the addresses of its param, grad, moments, max and Kahan buffer. */
typedef struct {
    void **p, **g, **m, **v, **vmax, **comp;
} tensors;

/* rounding.mix32: a bijective 32-bit hash (lowbias32). */
static inline uint32_t mix32(uint32_t x) {
    x ^= x >> 16;
    x *= 0x7FEB352Du;
    x ^= x >> 15;
    x *= 0x846CA68Bu;
    return x ^ (x >> 16);
}

static inline uint32_t bits_of(float x) {
    union { float f; uint32_t u; } b = {.f = x};
    return b.u;
}

static inline float float_of(uint32_t u) {
    union { uint32_t u; float f; } b = {.u = u};
    return b.f;
}

/* fp32 bits to bf16, nearest even; a NaN stays a quiet NaN with its sign. */
static inline uint16_t bf16_nearest(uint32_t u) {
    uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
    uint32_t is_nan = -(uint32_t)((u & 0x7fffffffu) > 0x7f800000u);
    return (uint16_t)((rounded & ~is_nan) | (((u >> 16) | 0x40u) & is_nan));
}

/* fp32 bits to bf16, rounded up in magnitude with probability equal to the dropped fraction:
 * the truncation plus a carry from the draw's top 16 bits. */
static inline uint16_t bf16_stochastic(uint32_t u, uint32_t draw) {
    uint32_t rounded = (u + (draw >> 16)) >> 16;
    uint32_t is_nan = -(uint32_t)((u & 0x7fffffffu) > 0x7f800000u);
    return (uint16_t)((rounded & ~is_nan) | (((u >> 16) | 0x40u) & is_nan));
}

static inline void update(float *restrict p, const float *restrict g, float *restrict m, float *restrict v,
                          float *restrict vmax, int64_t n, const hyper *h) {
#pragma omp simd
    for (int64_t i = 0; i < n; i++) {
        float pi = p[i];
        float gi = h->sign * g[i] + h->l2 * pi + h->l1 * (float)((pi > 0.0f) - (pi < 0.0f));
        float mi = h->beta1 * m[i] + h->one_minus_beta1 * gi;
        float vi = h->beta2 * v[i] + h->one_minus_beta2 * gi * gi;
        m[i] = mi;
        v[i] = vi;
        if (h->amsgrad) {
            vi = fmaxf(vmax[i], vi);
            vmax[i] = vi;
        }
        p[i] = pi * h->shrink - h->step_size * mi / (sqrtf(vi) * h->inv_sqrt_bias2 + h->eps);
    }
}

static inline void widen(const uint16_t *restrict x, float *restrict out, int64_t n) {
    uint32_t *bits = (uint32_t *)out;
#pragma omp simd
    for (int64_t i = 0; i < n; i++) bits[i] = (uint32_t)x[i] << 16;
}

/* out += x, x in bf16: a Kahan step starts from the param plus its compensation. */
static inline void add_widened(const uint16_t *restrict x, float *restrict out, int64_t n) {
#pragma omp simd
    for (int64_t i = 0; i < n; i++) out[i] += float_of((uint32_t)x[i] << 16);
}

static inline void narrow(const float *restrict in, uint16_t *restrict x, int64_t n) {
#pragma omp simd
    for (int64_t i = 0; i < n; i++) x[i] = bf16_nearest(bits_of(in[i]));
}

/* p = nearest(new), comp = nearest(new - p): what rounding dropped, carried to the next step. */
static inline void narrow_kahan(const float *restrict in, uint16_t *restrict p, uint16_t *restrict comp,
                                int64_t n) {
#pragma omp simd
    for (int64_t i = 0; i < n; i++) {
        uint16_t r = bf16_nearest(bits_of(in[i]));
        p[i] = r;
        comp[i] = bf16_nearest(bits_of(in[i] - float_of((uint32_t)r << 16)));
    }
}

/* Element `first + i` of a tensor with key `key` draws mix32((first + i) * WEYL + key), mod 2^32. */
static inline void narrow_stochastic(const float *restrict in, uint16_t *restrict p, int64_t n, uint32_t key,
                                     int64_t first) {
#pragma omp simd
    for (int64_t i = 0; i < n; i++) {
        uint32_t draw = mix32(((uint32_t)first + (uint32_t)i) * WEYL + key);
        p[i] = bf16_stochastic(bits_of(in[i]), draw);
    }
}

static inline void narrow_by(int mode, const float *in, uint16_t *p, uint16_t *comp, int64_t n, uint32_t key,
                             int64_t first) {
    if (mode == KAHAN)
        narrow_kahan(in, p, comp, n);
    else if (mode == STOCHASTIC)
        narrow_stochastic(in, p, n, key, first);
    else
        narrow(in, p, n);
}

/* One tile of tensor k, elements s .. s + n - 1. Float32 arrays are updated in place, bf16 ones
 * through fp32 tile buffers. Inlined with constant dtypes and mode, so each use is its own loop. */
static inline __attribute__((always_inline)) void tile_portable(const tensors *t, int64_t k, int64_t s,
                                                                int64_t n, const hyper *h, int p_bf16,
                                                                int s_bf16, int mode) {
    float tp[TILE], tg[TILE], tm[TILE], tv[TILE], tx[TILE];
    float *p = p_bf16 ? tp : (float *)t->p[k] + s, *g = p_bf16 ? tg : (float *)t->g[k] + s;
    float *m = s_bf16 ? tm : (float *)t->m[k] + s, *v = s_bf16 ? tv : (float *)t->v[k] + s;
    float *x = !h->amsgrad ? 0 : s_bf16 ? tx : (float *)t->vmax[k] + s;
    uint16_t *comp = mode == KAHAN ? (uint16_t *)t->comp[k] + s : 0;
    if (p_bf16) {
        widen((uint16_t *)t->p[k] + s, tp, n);
        if (mode == KAHAN) add_widened(comp, tp, n);
        widen((uint16_t *)t->g[k] + s, tg, n);
    }
    if (s_bf16) {
        widen((uint16_t *)t->m[k] + s, tm, n);
        widen((uint16_t *)t->v[k] + s, tv, n);
        if (h->amsgrad) widen((uint16_t *)t->vmax[k] + s, tx, n);
    }
    update(p, g, m, v, x, n, h);
    if (p_bf16) narrow_by(mode, tp, (uint16_t *)t->p[k] + s, comp, n, h->key, s);
    if (s_bf16) {
        narrow(tm, (uint16_t *)t->m[k] + s, n);
        narrow(tv, (uint16_t *)t->v[k] + s, n);
        if (h->amsgrad) narrow(tx, (uint16_t *)t->vmax[k] + s, n);
    }
}

typedef void (*tile_fn)(const tensors *, int64_t, int64_t, int64_t, const hyper *);

#define TILE_FN(path, pb, sb, mode)                                                                     \
    static void path##_##pb##sb##mode(const tensors *t, int64_t k, int64_t s, int64_t n, const hyper *h) { \
        tile_##path(t, k, s, n, h, pb, sb, mode);                                                      \
    }
/* the combinations: (fp32 | bf16 params) x (fp32 | bf16 moments) x (rounding modes of bf16 params) */
#define ALL_TILE_FNS(path)                                                                              \
    TILE_FN(path, 0, 0, 0) TILE_FN(path, 0, 1, 0) TILE_FN(path, 1, 0, 0) TILE_FN(path, 1, 0, 1)       \
    TILE_FN(path, 1, 0, 2) TILE_FN(path, 1, 1, 0) TILE_FN(path, 1, 1, 1) TILE_FN(path, 1, 1, 2)
#define PICK(path, pb, sb, mode)                                                                        \
    (!(pb) ? ((sb) ? path##_010 : path##_000)                                                          \
           : (sb) ? ((mode) == KAHAN ? path##_111 : (mode) == STOCHASTIC ? path##_112 : path##_110)     \
                  : ((mode) == KAHAN ? path##_101 : (mode) == STOCHASTIC ? path##_102 : path##_100))

ALL_TILE_FNS(portable)

#if defined(__x86_64__) && (defined(__clang__) || __GNUC__ >= 10)
#include <immintrin.h>
#define NATIVE_BF16 1
#define AVX512_BF16 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512bf16")))

AVX512_BF16 static inline __m512 load_bf16(const uint16_t *x, __mmask16 k) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(k, x)), 16));
}

AVX512_BF16 static inline __m512 load_as(int bf16, void *base, int64_t i, __mmask16 k) {
    return bf16 ? load_bf16((const uint16_t *)base + i, k) : _mm512_maskz_loadu_ps(k, (const float *)base + i);
}

/* bf16_nearest() on 16 lanes by integer arithmetic. */
AVX512_BF16 static inline __m256i nearest16_by_hand(__m512 f) {
    const __m512i u = _mm512_castps_si512(f), one = _mm512_set1_epi32(1);
    __m512i r = _mm512_add_epi32(_mm512_add_epi32(u, _mm512_set1_epi32(0x7fff)),
                                 _mm512_and_si512(_mm512_srli_epi32(u, 16), one));
    r = _mm512_srli_epi32(r, 16);
    __mmask16 nan = _mm512_cmp_ps_mask(f, f, _CMP_UNORD_Q);
    r = _mm512_mask_mov_epi32(r, nan, _mm512_or_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x40)));
    return _mm512_cvtepi32_epi16(r);
}

/* bf16_nearest() on 16 lanes, bit for bit, as Kahan's compensation needs: the CPU's conversion
 * instruction, and by hand for the rare vector with an fp32 subnormal, which it flushes to zero. */
AVX512_BF16 static inline __m256i nearest16(__m512 f) {
    if (__builtin_expect(_mm512_fpclass_ps_mask(f, 0x20) != 0, 0)) return nearest16_by_hand(f); /* 0x20: subnormal */
    return (__m256i)_mm512_cvtneps_pbh(f);
}

/* Nearest even by the CPU's conversion instruction alone: NaN kept a quiet NaN as in
 * bf16_nearest(); unlike it, fp32 subnormals (below 1.2e-38) are flushed to zero (checking for
 * them costs round-to-nearest steps some 15%). */
AVX512_BF16 static inline void store_as(int bf16, void *base, int64_t i, __mmask16 k, __m512 f) {
    if (bf16)
        _mm256_mask_storeu_epi16((uint16_t *)base + i, k, (__m256i)_mm512_cvtneps_pbh(f));
    else
        _mm512_mask_storeu_ps((float *)base + i, k, f);
}

AVX512_BF16 static inline __m512i mix32_16(__m512i x) {
    x = _mm512_xor_si512(x, _mm512_srli_epi32(x, 16));
    x = _mm512_mullo_epi32(x, _mm512_set1_epi32((int)0x7FEB352Du));
    x = _mm512_xor_si512(x, _mm512_srli_epi32(x, 15));
    x = _mm512_mullo_epi32(x, _mm512_set1_epi32((int)0x846CA68Bu));
    return _mm512_xor_si512(x, _mm512_srli_epi32(x, 16));
}

/* bf16_stochastic() on elements first .. first + 15 of a tensor with key `key`: lane j draws
 * mix32(first * WEYL + key + j * WEYL). */
AVX512_BF16 static inline __m256i stochastic16(__m512 f, uint32_t key, int64_t first) {
    const __m512i lanes = _mm512_setr_epi32(0, (int)WEYL, (int)(2 * WEYL), (int)(3 * WEYL), (int)(4 * WEYL),
                                            (int)(5 * WEYL), (int)(6 * WEYL), (int)(7 * WEYL), (int)(8 * WEYL),
                                            (int)(9 * WEYL), (int)(10 * WEYL), (int)(11 * WEYL), (int)(12 * WEYL),
                                            (int)(13 * WEYL), (int)(14 * WEYL), (int)(15 * WEYL));
    __m512i draw = mix32_16(_mm512_add_epi32(_mm512_set1_epi32((int)((uint32_t)first * WEYL + key)), lanes));
    const __m512i u = _mm512_castps_si512(f);
    __m512i r = _mm512_srli_epi32(_mm512_add_epi32(u, _mm512_srli_epi32(draw, 16)), 16);
    __mmask16 nan = _mm512_cmp_ps_mask(f, f, _CMP_UNORD_Q);
    r = _mm512_mask_mov_epi32(r, nan, _mm512_or_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x40)));
    return _mm512_cvtepi32_epi16(r);
}

/* The bf16 param's new value `f`, by `mode`. */
AVX512_BF16 static inline void store_param(int mode, uint16_t *p, uint16_t *comp, int64_t i, __mmask16 k,
                                           __m512 f, uint32_t key) {
    if (mode == KAHAN) {
        __m256i r = nearest16(f);
        _mm256_mask_storeu_epi16(p + i, k, r);
        __m512 rest = _mm512_sub_ps(f, _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(r), 16)));
        _mm256_mask_storeu_epi16(comp + i, k, nearest16(rest));
    } else if (mode == STOCHASTIC) {
        _mm256_mask_storeu_epi16(p + i, k, stochastic16(f, key, i));
    } else {
        store_as(1, p, i, k, f);
    }
}

/* tile_portable()'s update, 16 elements a time straight from and to memory, the same operations
 * in the same order: the same fp32 results, rounded to the same bits (but for round to
 * nearest's subnormals, see store_as). */
AVX512_BF16 static inline __attribute__((always_inline)) void tile_avx512(const tensors *t, int64_t k, int64_t s,
                                                                          int64_t n, const hyper *h, int pb,
                                                                          int sb, int mode) {
    void *p = t->p[k], *g = t->g[k], *m = t->m[k], *v = t->v[k], *vmax = h->amsgrad ? t->vmax[k] : 0;
    uint16_t *comp = mode == KAHAN ? (uint16_t *)t->comp[k] : 0;
    const __m512 sign = _mm512_set1_ps(h->sign), l2 = _mm512_set1_ps(h->l2), l1 = _mm512_set1_ps(h->l1),
                 beta1 = _mm512_set1_ps(h->beta1), omb1 = _mm512_set1_ps(h->one_minus_beta1),
                 beta2 = _mm512_set1_ps(h->beta2), omb2 = _mm512_set1_ps(h->one_minus_beta2),
                 shrink = _mm512_set1_ps(h->shrink), step = _mm512_set1_ps(h->step_size),
                 isb2 = _mm512_set1_ps(h->inv_sqrt_bias2), eps = _mm512_set1_ps(h->eps),
                 zero = _mm512_setzero_ps(), one = _mm512_set1_ps(1.0f), minus_one = _mm512_set1_ps(-1.0f);
    int64_t i = s, end = s + n;
    /* the body with a constant full mask for whole vectors, then once for the tail */
#define STEP16(k)                                                                                                       \
    do {                                                                                                                \
        __m512 pi = load_as(pb, p, i, k);                                                                               \
        if (mode == KAHAN) pi = _mm512_add_ps(pi, load_bf16(comp + i, k));                                              \
        __m512 sgn = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(pi, zero, _CMP_GT_OQ),                                     \
                                          _mm512_mask_blend_ps(_mm512_cmp_ps_mask(pi, zero, _CMP_LT_OQ), zero,          \
                                                               minus_one), one);                                        \
        __m512 gi = _mm512_add_ps(_mm512_add_ps(_mm512_mul_ps(sign, load_as(pb, g, i, k)), _mm512_mul_ps(l2, pi)),      \
                                  _mm512_mul_ps(l1, sgn));                                                              \
        __m512 mi = _mm512_add_ps(_mm512_mul_ps(beta1, load_as(sb, m, i, k)), _mm512_mul_ps(omb1, gi));                 \
        __m512 vi = _mm512_add_ps(_mm512_mul_ps(beta2, load_as(sb, v, i, k)),                                           \
                                  _mm512_mul_ps(_mm512_mul_ps(omb2, gi), gi));                                          \
        store_as(sb, m, i, k, mi);                                                                                      \
        store_as(sb, v, i, k, vi);                                                                                      \
        if (h->amsgrad) {                                                                                               \
            vi = _mm512_max_ps(vi, load_as(sb, vmax, i, k)); /* fmaxf's choice when vi is NaN */                        \
            store_as(sb, vmax, i, k, vi);                                                                               \
        }                                                                                                               \
        __m512 denom = _mm512_add_ps(_mm512_mul_ps(_mm512_sqrt_ps(vi), isb2), eps);                                     \
        __m512 next = _mm512_sub_ps(_mm512_mul_ps(pi, shrink), _mm512_div_ps(_mm512_mul_ps(step, mi), denom));          \
        if (pb)                                                                                                         \
            store_param(mode, (uint16_t *)p, comp, i, k, next, h->key);                                                 \
        else                                                                                                            \
            store_as(0, p, i, k, next);                                                                                 \
    } while (0)
    for (; i + 16 <= end; i += 16) STEP16((__mmask16)0xffff);
    if (i < end) STEP16((__mmask16)((1u << (end - i)) - 1u));
#undef STEP16
}

#undef TILE_FN
#define TILE_FN(path, pb, sb, mode)                                                                     \
    AVX512_BF16 static void path##_##pb##sb##mode(const tensors *t, int64_t k, int64_t s, int64_t n,    \
                                                  const hyper *h) {                                     \
        tile_##path(t, k, s, n, h, pb, sb, mode);                                                      \
    }
ALL_TILE_FNS(avx512)
#endif

static int use_native_bf16;

/* Use the CPU's bf16 instructions if it has them and `want` is set; returns whether they are used. */
int native_bf16(int want) {
    use_native_bf16 = 0;
#ifdef NATIVE_BF16
    __builtin_cpu_init();
    use_native_bf16 = want && __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512bw") &&
                      __builtin_cpu_supports("avx512dq") &&
                      __builtin_cpu_supports("avx512vl");
#endif
    return use_native_bf16;
}

/* The tile function for these dtypes and rounding mode; fp32 params round exactly enough. */
static tile_fn pick(int p_bf16, int s_bf16, int mode) {
    if (!p_bf16) mode = NEAREST;
#ifdef NATIVE_BF16
    if (use_native_bf16 && (p_bf16 || s_bf16)) return PICK(avx512, p_bf16, s_bf16, mode);
#endif
    return PICK(portable, p_bf16, s_bf16, mode);
}

/* One step's work: the tile function, the tensors, per tensor its scalars and its first
 * element in the step's element space (start[count] is the total), and the chunk length. */
static struct {
    tile_fn tile;
    tensors t;
    hyper *h;
    int64_t *start, count, chunk;
} job;

/* Elements [c * chunk, (c + 1) * chunk) of the step, tile by tile, across tensor boundaries. */
static void run_chunk(int64_t c) {
    const int64_t *start = job.start;
    int64_t a = c * job.chunk, b = a + job.chunk < start[job.count] ? a + job.chunk : start[job.count];
    int64_t k = 0, hi = job.count; /* the tensor holding element a: start[k] <= a < start[k + 1] */
    while (hi - k > 1) {
        int64_t mid = k + (hi - k) / 2;
        if (start[mid] <= a) k = mid; else hi = mid;
    }
    for (; a < b; k++) {
        int64_t end = (start[k + 1] < b ? start[k + 1] : b) - start[k];
        for (int64_t s = a - start[k]; s < end; s += TILE)
            job.tile(&job.t, k, s, end - s < TILE ? end - s : TILE, &job.h[k]);
        a = start[k] + end;
    }
}

/* The pool. `ticket` packs the step's generation, its chunk count and the next chunk to take, so
 * one fetch-and-add both claims a chunk and says of which step: a thread never works from a
 * stale description. The caller publishes a step only once every chunk of the last is done. */
#define FIELD 20
#define FIELD_MASK ((UINT64_C(1) << FIELD) - 1)
#define MAX_CHUNKS (FIELD_MASK - MAX_THREADS) /* room for each thread's one claim past the end */
static struct {
    pthread_mutex_t lock, step; /* lock: sleeping and waking; step: one step at a time */
    pthread_cond_t wake;
    _Atomic uint64_t ticket;
    _Atomic int64_t done;    /* chunks finished in this step */
    _Atomic int active;      /* pool threads that may take chunks in this step */
    int started, sleeping;
} pool = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER};

static inline uint32_t generation(uint64_t ticket) { return (uint32_t)(ticket >> (2 * FIELD)); }

/* The next chunk of the current step, or -1 if all are taken; *gen says which step. */
static int64_t claim(uint32_t *gen) {
    uint64_t t = atomic_fetch_add(&pool.ticket, 1);
    *gen = generation(t);
    uint64_t next = t & FIELD_MASK, chunks = (t >> FIELD) & FIELD_MASK;
    return next < chunks ? (int64_t)next : -1;
}

static inline void relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static int64_t nanoseconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/* Return once a step after `seen` is published: spin a while (steps come in quick succession in
 * a benchmark, not in training), then sleep. */
static uint32_t next_step(uint32_t seen) {
    int64_t since = nanoseconds();
    for (int i = 1; generation(atomic_load(&pool.ticket)) == seen; i++) {
        relax();
        if (i % 256 == 0 && nanoseconds() - since > SPIN_NS) {
            pthread_mutex_lock(&pool.lock);
            pool.sleeping++;
            while (generation(atomic_load(&pool.ticket)) == seen) pthread_cond_wait(&pool.wake, &pool.lock);
            pool.sleeping--;
            pthread_mutex_unlock(&pool.lock);
        }
    }
    return generation(atomic_load(&pool.ticket));
}

static void *pool_thread(void *arg) {
    uintptr_t packed = (uintptr_t)arg;
    int index = (int)(packed & 0xffff);
    uint32_t seen = (uint32_t)(packed >> 16);
    for (;;) {
        seen = next_step(seen);
        if (index >= atomic_load(&pool.active)) continue;
        int64_t c;
        while ((c = claim(&seen)) >= 0) {
            run_chunk(c);
            atomic_fetch_add(&pool.done, 1);
        }
    }
    return 0;
}

/* A forked child has none of the parent's threads, and maybe a lock one of them held. */
static void forget_pool(void) {
    pthread_mutex_t fresh = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t fresh_cond = PTHREAD_COND_INITIALIZER;
    memcpy(&pool.lock, &fresh, sizeof fresh);
    memcpy(&pool.step, &fresh, sizeof fresh);
    memcpy(&pool.wake, &fresh_cond, sizeof fresh_cond);
    pool.started = pool.sleeping = 0;
}

static void register_fork_handler(void) { pthread_atfork(0, 0, forget_pool); }

/* Start pool threads up to `wanted` (as many as can be started); returns how many there are. */
static int start_pool(int wanted) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, register_fork_handler);
    for (; pool.started < wanted; pool.started++) {
        pthread_t thread;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        uintptr_t packed = (uintptr_t)generation(atomic_load(&pool.ticket)) << 16 | (uintptr_t)pool.started;
        int failed = pthread_create(&thread, &attr, pool_thread, (void *)packed);
        pthread_attr_destroy(&attr);
        if (failed) break;
    }
    return pool.started < wanted ? pool.started : wanted;
}

/* Run the job's `chunks` chunks on the caller and up to `helpers` pool threads. */
static void run_job(int64_t chunks, int helpers) {
    if (chunks == 1 || helpers == 0) {
        for (int64_t c = 0; c < chunks; c++) run_chunk(c);
        return;
    }
    atomic_store(&pool.active, helpers);
    atomic_store(&pool.done, 0);
    pthread_mutex_lock(&pool.lock);
    uint32_t gen = (generation(atomic_load(&pool.ticket)) + 1) & ((1u << (64 - 2 * FIELD)) - 1);
    atomic_store(&pool.ticket, (uint64_t)gen << (2 * FIELD) | (uint64_t)chunks << FIELD);
    const int sleeping = pool.sleeping; /* a thread not yet asleep sees the new step before it sleeps */
    pthread_mutex_unlock(&pool.lock);
    if (sleeping) pthread_cond_broadcast(&pool.wake);
    int64_t c, mine = 0;
    while ((c = claim(&gen)) >= 0) {
        run_chunk(c);
        mine++;
    }
    atomic_fetch_add(&pool.done, mine);
    int64_t since = nanoseconds();
    for (int i = 1; atomic_load(&pool.done) < chunks; i++) { /* only chunks a pool thread has taken */
        relax();
        if (i % 256 == 0 && nanoseconds() - since > SPIN_NS) sched_yield();
    }
}

/* Room for `count` tensors' scalars and starts, kept between steps. */
static int reserve(int64_t count) {
    static int64_t capacity;
    if (job.start && count <= capacity) return 1;
    hyper *h = realloc(job.h, count * sizeof *h);
    if (h) job.h = h;
    int64_t *start = realloc(job.start, (count + 1) * sizeof *start);
    if (start) job.start = start;
    if (!h || !start) return 0;
    capacity = count;
    return 1;
}

/* One step over `count` tensors whose params are bf16 if p_bf16 (else fp32), moments bf16 if
 * s_bf16; bf16 params are rounded by `rounding` (NEAREST, KAHAN with comp, STOCHASTIC with keys).
 * Runs on up to `threads` threads. Returns 0, or -1 if memory for the step's table ran out. */
int adam(int64_t count, void **p, void **g, void **m, void **v, void **vmax, void **comp, const uint32_t *keys,
         const int64_t *n, float *const *step, double lr, double beta1, double beta2, float eps, float l2,
         float l1, float shrink, int amsgrad, int maximize, int p_bf16, int s_bf16, int rounding, int threads) {
    pthread_mutex_lock(&pool.step);
    if (!reserve(count)) {
        pthread_mutex_unlock(&pool.step);
        return -1;
    }
    job.tile = pick(p_bf16, s_bf16, rounding);
    job.t = (tensors){p, g, m, v, vmax, comp};
    job.count = count;
    double last = NAN, step_size = 0, inv_sqrt_bias2 = 0;
    job.start[0] = 0;
    for (int64_t k = 0; k < count; k++) {
        const double steps = *step[k]; /* in double, as Python computes the corrections */
        if (steps != last) { /* tensors of one group share their step count */
            step_size = lr / (1.0 - pow(beta1, steps));
            inv_sqrt_bias2 = pow(1.0 - pow(beta2, steps), -0.5);
            last = steps;
        }
        job.h[k] = (hyper){(float)step_size, (float)inv_sqrt_bias2, (float)beta1, (float)(1.0 - beta1), (float)beta2,
                           (float)(1.0 - beta2), eps, l2, l1, shrink, maximize ? -1.0f : 1.0f, amsgrad,
                           keys ? keys[k] : 0};
        job.start[k + 1] = job.start[k] + n[k];
    }
    const int64_t total = job.start[count];
    if (threads > MAX_THREADS) threads = MAX_THREADS;
    int64_t chunk = total / ((threads > 1 ? threads : 1) * CHUNKS_PER_THREAD);
    chunk = chunk < CHUNK_MIN ? CHUNK_MIN : chunk > CHUNK_MAX ? CHUNK_MAX : (chunk + TILE - 1) / TILE * TILE;
    if ((total + chunk - 1) / chunk > MAX_CHUNKS)
        chunk = ((total + MAX_CHUNKS - 1) / MAX_CHUNKS + TILE - 1) / TILE * TILE;
    job.chunk = threads > 1 ? chunk : total;
    const int64_t chunks = total ? (total + job.chunk - 1) / job.chunk : 0;
    const int64_t wanted = (threads < chunks ? threads : chunks) - 1;
    run_job(chunks, wanted > 0 ? start_pool((int)wanted) : 0);
    pthread_mutex_unlock(&pool.step);
    return 0;
}

/* Add one to each of `count` float32 step counts: the optimizer's increment, without a
 * dispatch per tensor. */
void advance(int64_t count, float *const *step) {
    for (int64_t k = 0; k < count; k++) *step[k] += 1.0f;
}

#ifdef NATIVE_BF16
AVX512_BF16 static void round_bf16_avx512(int mode, const float *x, int64_t n, uint32_t key, uint16_t *out,
                                          uint16_t *comp) {
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 k = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1u);
        store_param(mode, out, comp, i, k, _mm512_maskz_loadu_ps(k, x + i), key);
    }
}
#endif

/* Round n fp32 values to bf16 as a step writes a param, on the path in use (for tests): out the
 * rounded values, comp (KAHAN) what rounding dropped; the values are elements 0 .. n-1 of a
 * tensor with key `key`. */
void round_bf16(int mode, const float *x, int64_t n, uint32_t key, uint16_t *out, uint16_t *comp) {
#ifdef NATIVE_BF16
    if (use_native_bf16) {
        round_bf16_avx512(mode, x, n, key, out, comp);
        return;
    }
#endif
    for (int64_t s = 0; s < n; s += TILE)
        narrow_by(mode, x + s, out + s, comp ? comp + s : 0, n - s < TILE ? n - s : TILE, key, s);
}
