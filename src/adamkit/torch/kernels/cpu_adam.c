/* Adam over a list of float32 tensors on the CPU in one parallel region, for the decay
 * mode torch has no fused kernel for (coupled L1). Built on first use by
 * adamkit/torch/kernels/cpu.py. Per tensor k: the grad gets maximize, l2 * p and
 * l1 * sign(p); the param is scaled by shrink; step_size[k] = lr / (1 - beta1^t) and
 * inv_sqrt_bias2[k] = 1 / sqrt(1 - beta2^t) carry its step t. 1 - beta arrives computed in
 * double: 1.0f - 0.999f is off by 1e-5 relative. */
#include <math.h>
#include <stdint.h>

static void adam_one(float *restrict p, const float *restrict g, float *restrict m, float *restrict v,
                     float *restrict vmax, int64_t n, float step_size, float inv_sqrt_bias2,
                     float beta1, float one_minus_beta1, float beta2, float one_minus_beta2, float eps,
                     float l2, float l1, float shrink, int amsgrad, float sign) {
#pragma omp for simd schedule(static) nowait
    for (int64_t i = 0; i < n; i++) {
        float pi = p[i];
        float gi = sign * g[i] + l2 * pi + l1 * (float)((pi > 0.0f) - (pi < 0.0f));
        float mi = beta1 * m[i] + one_minus_beta1 * gi;
        float vi = beta2 * v[i] + one_minus_beta2 * gi * gi;
        m[i] = mi;
        v[i] = vi;
        if (amsgrad) {
            vi = fmaxf(vmax[i], vi);
            vmax[i] = vi;
        }
        p[i] = pi * shrink - step_size * mi / (sqrtf(vi) * inv_sqrt_bias2 + eps);
    }
}

void adam_f32(int64_t count, float **p, float **g, float **m, float **v, float **vmax, const int64_t *n,
              const float *step_size, const float *inv_sqrt_bias2, float beta1, float one_minus_beta1,
              float beta2, float one_minus_beta2, float eps, float l2, float l1, float shrink, int amsgrad,
              int maximize) {
    const float sign = maximize ? -1.0f : 1.0f;
#pragma omp parallel
    for (int64_t k = 0; k < count; k++)
        adam_one(p[k], g[k], m[k], v[k], amsgrad ? vmax[k] : 0, n[k], step_size[k], inv_sqrt_bias2[k],
                 beta1, one_minus_beta1, beta2, one_minus_beta2, eps, l2, l1, shrink, amsgrad, sign);
}
