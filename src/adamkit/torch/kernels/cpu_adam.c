/* Adam over a list of float32 or bfloat16 CPU tensors in one parallel region: every decay
 * mode, AMSGrad and maximize, one thread synchronisation per step. Built on first use by
 * adamkit/torch/kernels/cpu.py.
 *
 * Per tensor k: the grad gets maximize, l2 * p and l1 * sign(p); the param is scaled by
 * shrink; step_size[k] = lr / (1 - beta1^t) and inv_sqrt_bias2[k] = 1 / sqrt(1 - beta2^t)
 * carry its step t. 1 - beta arrives computed in double (1.0f - 0.999f is off by 1e-5).
 * Work is split in tiles; bf16 tiles are widened to fp32, updated, and rounded to nearest
 * even on the way back, in three simple loops that the compiler vectorizes. The rounding
 * uses the CPU's own conversion instruction where it has one (AVX512-BF16, chosen at run
 * time), else the portable loop. */
#include <math.h>
#include <stdint.h>

#define TILE 2048

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
/* One instruction rounds 16 floats to nearest even, NaN kept a quiet NaN as above; unlike the
 * portable loop it flushes fp32 subnormals (below 1.2e-38) to zero. */
__attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16"))) static void narrow_avx512(
    const float *restrict in, uint16_t *restrict x, int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm256_storeu_si256((__m256i *)(x + i), (__m256i)_mm512_cvtneps_pbh(_mm512_loadu_ps(in + i)));
    if (i < n) {
        __mmask16 k = (__mmask16)((1u << (n - i)) - 1u);
        _mm256_mask_storeu_epi16(x + i, k, (__m256i)_mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(k, in + i)));
    }
}
#endif

static void (*narrow_bf16)(const float *restrict, uint16_t *restrict, int64_t) = narrow;

/* Use the CPU's bf16 rounding if it has one and `want` is set; returns whether it is used. */
int native_bf16(int want) {
    narrow_bf16 = narrow;
#ifdef NATIVE_BF16
    __builtin_cpu_init();
    if (want && __builtin_cpu_supports("avx512bf16")) narrow_bf16 = narrow_avx512;
#endif
    return narrow_bf16 != narrow;
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
#pragma omp parallel
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
#pragma omp parallel
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
                narrow_bf16(tp, p[k] + s, len);
                narrow_bf16(tm, m[k] + s, len);
                narrow_bf16(tv, v[k] + s, len);
                if (amsgrad) narrow_bf16(tx, vmax[k] + s, len);
            }
        }
    }
}
#undef T
