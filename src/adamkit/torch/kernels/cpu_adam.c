/* Adam over a list of float32 or bfloat16 CPU tensors in one parallel region: every decay
 * mode, AMSGrad and maximize, one thread synchronisation per step. Built on first use by
 * adamkit/torch/kernels/cpu.py.
 *
 * Per tensor k: the grad gets maximize, l2 * p and l1 * sign(p); the param is scaled by
 * shrink; step_size[k] = lr / (1 - beta1^t) and inv_sqrt_bias2[k] = 1 / sqrt(1 - beta2^t)
 * carry its step t. 1 - beta arrives computed in double (1.0f - 0.999f is off by 1e-5).
 * Work is split in tiles; bf16 tiles are widened to fp32, updated, and rounded to nearest
 * even on the way back, in three simple loops that the compiler vectorizes. Where the CPU
 * has AVX512-BF16 (checked at run time), bf16 is instead widened in registers and rounded by
 * the CPU's conversion instruction, with no tile buffers. */
#include <math.h>
#include <stdint.h>

#define TILE 2048
/* Steps over fewer elements run on one thread: they take well under a millisecond, and a team
 * whose second thread another job has descheduled would wait far longer than that at the
 * region's end. */
#define PARALLEL_MIN (1 << 20)

static int64_t total(int64_t count, const int64_t *n) {
    int64_t sum = 0;
    for (int64_t k = 0; k < count; k++) sum += n[k];
    return sum;
}

typedef struct {
    float step_size, inv_sqrt_bias2, beta1, one_minus_beta1, beta2, one_minus_beta2, eps, l2, l1, shrink,
        sign;
    int amsgrad;
} hyper;

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

static inline void narrow(const float *restrict in, uint16_t *restrict x, int64_t n) {
    const uint32_t *u = (const uint32_t *)in;
#pragma omp simd
    for (int64_t i = 0; i < n; i++) {
        uint32_t rounded = (u[i] + 0x7fffu + ((u[i] >> 16) & 1u)) >> 16;
        uint32_t is_nan = -(uint32_t)((u[i] & 0x7fffffffu) > 0x7f800000u);  /* keep NaN a NaN */
        x[i] = (uint16_t)((rounded & ~is_nan) | (((u[i] >> 16) | 0x40u) & is_nan));
    }
}

#if defined(__x86_64__) && (defined(__clang__) || __GNUC__ >= 10)
#include <immintrin.h>
#define NATIVE_BF16 1
#define AVX512_BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))

AVX512_BF16 static inline __m512 load_bf16(const uint16_t *x, __mmask16 k) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(k, x)), 16));
}

AVX512_BF16 static inline void store_bf16(uint16_t *x, __mmask16 k, __m512 f) {
    _mm256_mask_storeu_epi16(x, k, (__m256i)_mm512_cvtneps_pbh(f));
}

/* update() on bf16 tensors, 16 elements a time straight from and to memory, the same operations
 * in the same order (so the same fp32 results), rounded back by the CPU's conversion instruction:
 * nearest even, NaN kept a quiet NaN as in narrow(); unlike narrow() it flushes fp32 subnormals
 * (below 1.2e-38) to zero. */
AVX512_BF16 static void update_bf16_avx512(uint16_t *p, const uint16_t *g, uint16_t *m, uint16_t *v,
                                           uint16_t *vmax, int64_t n, const hyper *h) {
    const __m512 sign = _mm512_set1_ps(h->sign), l2 = _mm512_set1_ps(h->l2), l1 = _mm512_set1_ps(h->l1),
                 beta1 = _mm512_set1_ps(h->beta1), omb1 = _mm512_set1_ps(h->one_minus_beta1),
                 beta2 = _mm512_set1_ps(h->beta2), omb2 = _mm512_set1_ps(h->one_minus_beta2),
                 shrink = _mm512_set1_ps(h->shrink), step = _mm512_set1_ps(h->step_size),
                 isb2 = _mm512_set1_ps(h->inv_sqrt_bias2), eps = _mm512_set1_ps(h->eps),
                 zero = _mm512_setzero_ps(), one = _mm512_set1_ps(1.0f), minus_one = _mm512_set1_ps(-1.0f);
    int64_t i = 0;
    /* the body with a constant full mask for whole vectors, then once for the tail */
#define STEP16(k)                                                                                                       \
    do {                                                                                                                \
        __m512 pi = load_bf16(p + i, k);                                                                                \
        __m512 sgn = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(pi, zero, _CMP_GT_OQ),                                     \
                                          _mm512_mask_blend_ps(_mm512_cmp_ps_mask(pi, zero, _CMP_LT_OQ), zero,          \
                                                               minus_one), one);                                        \
        __m512 gi = _mm512_add_ps(_mm512_add_ps(_mm512_mul_ps(sign, load_bf16(g + i, k)), _mm512_mul_ps(l2, pi)),       \
                                  _mm512_mul_ps(l1, sgn));                                                              \
        __m512 mi = _mm512_add_ps(_mm512_mul_ps(beta1, load_bf16(m + i, k)), _mm512_mul_ps(omb1, gi));                  \
        __m512 vi = _mm512_add_ps(_mm512_mul_ps(beta2, load_bf16(v + i, k)),                                            \
                                  _mm512_mul_ps(_mm512_mul_ps(omb2, gi), gi));                                          \
        store_bf16(m + i, k, mi);                                                                                       \
        store_bf16(v + i, k, vi);                                                                                       \
        if (h->amsgrad) {                                                                                               \
            vi = _mm512_max_ps(vi, load_bf16(vmax + i, k)); /* fmaxf's choice when vi is NaN */                         \
            store_bf16(vmax + i, k, vi);                                                                                \
        }                                                                                                               \
        __m512 denom = _mm512_add_ps(_mm512_mul_ps(_mm512_sqrt_ps(vi), isb2), eps);                                     \
        store_bf16(p + i, k, _mm512_sub_ps(_mm512_mul_ps(pi, shrink), _mm512_div_ps(_mm512_mul_ps(step, mi), denom)));  \
    } while (0)
    for (; i + 16 <= n; i += 16) STEP16((__mmask16)0xffff);
    if (i < n) STEP16((__mmask16)((1u << (n - i)) - 1u));
#undef STEP16
}
#endif

static int use_native_bf16;

/* Use the CPU's bf16 instructions if it has them and `want` is set; returns whether they are used. */
int native_bf16(int want) {
    use_native_bf16 = 0;
#ifdef NATIVE_BF16
    __builtin_cpu_init();
    use_native_bf16 = want && __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512bw") &&
                      __builtin_cpu_supports("avx512vl");
#endif
    return use_native_bf16;
}

/* The hyperparameters of tensor k. */
#define HYPER_OF(k)                                                                                      \
    ((hyper){step_size[k], inv_sqrt_bias2[k], beta1, one_minus_beta1, beta2, one_minus_beta2, eps, l2,  \
             l1, shrink, maximize ? -1.0f : 1.0f, amsgrad})

#define ARGS                                                                                             \
    int64_t count, T **p, T **g, T **m, T **v, T **vmax, const int64_t *n, const float *step_size,       \
        const float *inv_sqrt_bias2, float beta1, float one_minus_beta1, float beta2,                    \
        float one_minus_beta2, float eps, float l2, float l1, float shrink, int amsgrad, int maximize

#define T float
void adam_f32(ARGS) {
#pragma omp parallel if (total(count, n) >= PARALLEL_MIN)
    for (int64_t k = 0; k < count; k++) {
        const hyper h = HYPER_OF(k);
#pragma omp for schedule(static) nowait
        for (int64_t s = 0; s < n[k]; s += TILE) {
            int64_t len = n[k] - s < TILE ? n[k] - s : TILE;
            update(p[k] + s, g[k] + s, m[k] + s, v[k] + s, amsgrad ? vmax[k] + s : 0, len, &h);
        }
    }
}
#undef T

#define T uint16_t
void adam_bf16(ARGS) {
#ifdef NATIVE_BF16
    if (use_native_bf16) {
#pragma omp parallel if (total(count, n) >= PARALLEL_MIN)
        for (int64_t k = 0; k < count; k++) {
            const hyper h = HYPER_OF(k);
#pragma omp for schedule(static) nowait
            for (int64_t s = 0; s < n[k]; s += TILE) {
                int64_t len = n[k] - s < TILE ? n[k] - s : TILE;
                update_bf16_avx512(p[k] + s, g[k] + s, m[k] + s, v[k] + s, amsgrad ? vmax[k] + s : 0, len, &h);
            }
        }
        return;
    }
#endif
#pragma omp parallel if (total(count, n) >= PARALLEL_MIN)
    {
        float tp[TILE], tg[TILE], tm[TILE], tv[TILE], tx[TILE];
        for (int64_t k = 0; k < count; k++) {
            const hyper h = HYPER_OF(k);
#pragma omp for schedule(static) nowait
            for (int64_t s = 0; s < n[k]; s += TILE) {
                int64_t len = n[k] - s < TILE ? n[k] - s : TILE;
                widen(p[k] + s, tp, len);
                widen(g[k] + s, tg, len);
                widen(m[k] + s, tm, len);
                widen(v[k] + s, tv, len);
                if (amsgrad) widen(vmax[k] + s, tx, len);
                update(tp, tg, tm, tv, tx, len, &h);
                narrow(tp, p[k] + s, len);
                narrow(tm, m[k] + s, len);
                narrow(tv, v[k] + s, len);
                if (amsgrad) narrow(tx, vmax[k] + s, len);
            }
        }
    }
}
#undef T
