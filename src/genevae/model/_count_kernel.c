/* The NB / ZINB reconstruction loss and its gradient in one pass over each cell's genes.
 *
 * The same numbers as the torch path of genevae/model/count_loss.py (whose module
 * docstring derives them), fused: the torch path makes ~25 passes over the (batch,
 * n_genes) matrices per training step, this makes three per cell (max, exp, the rest),
 * with the exp and log1p of glibc's vector math library (libmvec). Built by setup.py
 * (optional: without a C compiler the torch path runs) and loaded with ctypes by
 * count_loss.py; it uses no Python API.
 *
 * Layout: row-major float32, (batch, n_genes) matrices, n_genes-vectors per gene,
 * batch-vectors per cell. Tables (n_table, n_genes), entry k * n_genes + g:
 *   log_table: lgamma(k + theta_g) - lgamma(theta_g) - lgamma(k + 1)
 *   digamma_table: digamma(k + theta_g) - digamma(theta_g)
 * Integer counts above n_table - 1 extend the last entry with Stirling's series (in
 * double); non-integer counts call lgamma and a digamma in double.
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__x86_64__) && defined(__GNUC__)
/* one build for every x86-64 CPU, each running its widest vector code */
#define GV_CLONES __attribute__((target_clones("default", "arch=x86-64-v3", "arch=x86-64-v4")))
#else
#define GV_CLONES
#endif

/* digamma(y), y > 0: the recurrence up to y >= 6, then the asymptotic series (~1e-11). */
static double gv_digamma(double y) {
    double shift = 0.0;
    while (y < 6.0) {
        shift -= 1.0 / y;
        y += 1.0;
    }
    const double f = 1.0 / (y * y);
    return shift + log(y) - 0.5 / y
        - f * (1.0 / 12 - f * (1.0 / 120 - f * (1.0 / 252 - f * (1.0 / 240 - f / 132))));
}

/* lgamma(y) - (y - 0.5) log y + y - log(2 pi) / 2 for y >= 30: Stirling's series (~1e-15). */
static double gv_stirling_rest(double y) {
    const double f = 1.0 / (y * y);
    return (1.0 / 12 - f * (1.0 / 360 - f * (1.0 / 1260 - f / 1680))) / y;
}

/* lgamma(a) - lgamma(b) for a, b >= 30. */
static double gv_lgamma_diff_large(double a, double b) {
    return (a - 0.5) * log(a) - (b - 0.5) * log(b) - (a - b)
        + gv_stirling_rest(a) - gv_stirling_rest(b);
}

/* digamma(y) for y >= 30: the asymptotic series (~1e-14). */
static double gv_digamma_large(double y) {
    const double f = 1.0 / (y * y);
    return log(y) - 0.5 / y - f * (1.0 / 12 - f * (1.0 / 120 - f / 252));
}

/* The tables for theta (n_genes,): cumulative sums over k of log((theta + j) / (j + 1))
 * and of 1 / (theta + j). digamma_table may be NULL. */
GV_CLONES
void gv_gamma_tables(int64_t n_genes, int64_t n_table, const float *theta,
                     float *log_table, float *digamma_table) {
    for (int64_t g = 0; g < n_genes; g++) {
        log_table[g] = 0.0f;
        if (digamma_table) digamma_table[g] = 0.0f;
    }
    for (int64_t k = 1; k < n_table; k++) {
        const float j = (float)(k - 1), log_j1 = logf(j + 1.0f);
        const float *log_prev = log_table + (k - 1) * n_genes;
        float *log_row = log_table + k * n_genes;
#pragma omp simd
        for (int64_t g = 0; g < n_genes; g++)
            log_row[g] = log_prev[g] + (logf(theta[g] + j) - log_j1);
        if (digamma_table) {
            const float *dg_prev = digamma_table + (k - 1) * n_genes;
            float *dg_row = digamma_table + k * n_genes;
#pragma omp simd
            for (int64_t g = 0; g < n_genes; g++)
                dg_row[g] = dg_prev[g] + 1.0f / (theta[g] + j);
        }
    }
}

/* Cells [row_start, row_end). Always writes neg_log_p (batch,). With need_grad, also
 * grad_logits = d(-log p)/d logits, b = (mu - x) t omega and q_minus_d = q omega - D
 * (batch, n_genes), b_sum (batch,) and, for ZINB, grad_zi = sigmoid(l) - z sigmoid(v);
 * without it those may be NULL and work holds n_genes floats. zi_logits NULL: NB.
 * nonzero: room for n_genes int64 (the genes of a cell's non-zero counts). */
GV_CLONES
void gv_count_loss(int64_t row_start, int64_t row_end, int64_t n_genes, int64_t n_table,
                   const float *logits, const float *log_library, const float *log_theta,
                   const float *theta, const float *inv_theta, const float *x,
                   const float *zi_logits, const float *log_table, const float *digamma_table,
                   int need_grad, float *neg_log_p, float *grad_logits, float *b_out,
                   float *q_minus_d, float *b_sum, float *grad_zi, float *work,
                   int64_t *nonzero) {
    const float top = (float)(n_table - 1);
    for (int64_t row = row_start; row < row_end; row++) {
        const int64_t offset = row * n_genes;
        const float *l = logits + offset, *xr = x + offset;
        const float *zr = zi_logits ? zi_logits + offset : NULL;
        float *e = need_grad ? grad_logits + offset : work; /* exp(l - max), then the gradient */
        float *b_row = need_grad ? b_out + offset : NULL;
        float *qd_row = need_grad ? q_minus_d + offset : NULL;
        float *gz_row = need_grad && zr ? grad_zi + offset : NULL;

        float max_l = -3.0e38f;
#pragma omp simd reduction(max : max_l)
        for (int64_t g = 0; g < n_genes; g++) max_l = fmaxf(max_l, l[g]);
        double sum_e = 0.0;
#pragma omp simd reduction(+ : sum_e)
        for (int64_t g = 0; g < n_genes; g++) {
            const float v = expf(l[g] - max_l);
            e[g] = v;
            sum_e += v;
        }
        const float inv_sum = (float)(1.0 / sum_e);
        const double log_sum_exp = (double)max_l + log(sum_e);
        const float mu_scale = expf(log_library[row]) * inv_sum; /* mu = e * mu_scale */

        double log_p = 0.0, x_sum = 0.0, b_total = 0.0;
        /* the dense terms; q_minus_d holds q omega until the non-zero counts' D is taken */
        if (!zr) {
#pragma omp simd reduction(+ : log_p, x_sum, b_total)
            for (int64_t g = 0; g < n_genes; g++) {
                const float xv = xr[g], mu = e[g] * mu_scale, r = mu * inv_theta[g];
                const float q = log1pf(r);
                log_p += xv * (l[g] - q - log_theta[g]) - q * theta[g];
                x_sum += xv;
                if (need_grad) {
                    const float bv = (mu - xv) / (1.0f + r);
                    b_row[g] = bv;
                    qd_row[g] = q;
                    b_total += bv;
                }
            }
        } else {
#pragma omp simd reduction(+ : log_p, x_sum, b_total)
            for (int64_t g = 0; g < n_genes; g++) {
                const float xv = xr[g], mu = e[g] * mu_scale, r = mu * inv_theta[g];
                const float q = log1pf(r);
                const float zl = zr[g], v = zl + theta[g] * q; /* log NB(0) = -theta q */
                const float exp_v = expf(-fabsf(v)), exp_l = expf(-fabsf(zl));
                const float softplus_v = fmaxf(v, 0.0f) + log1pf(exp_v);
                const float softplus_l = fmaxf(zl, 0.0f) + log1pf(exp_l);
                const float is_zero = xv == 0.0f ? 1.0f : 0.0f;
                log_p += xv * (l[g] - q - log_theta[g]) - q * theta[g]
                    + is_zero * softplus_v - softplus_l;
                x_sum += xv;
                if (need_grad) {
                    const float sigmoid_v = (v >= 0.0f ? 1.0f : exp_v) / (1.0f + exp_v);
                    const float sigmoid_l = (zl >= 0.0f ? 1.0f : exp_l) / (1.0f + exp_l);
                    const float zero_share = is_zero * sigmoid_v, omega = 1.0f - zero_share;
                    const float bv = omega * (mu - xv) / (1.0f + r);
                    gz_row[g] = sigmoid_l - zero_share;
                    b_row[g] = bv;
                    qd_row[g] = omega * q;
                    b_total += bv;
                }
            }
        }
        /* the non-zero counts (x > 0: omega = 1): their genes, then their lgamma terms */
        int64_t n_nonzero = 0;
        for (int64_t g = 0; g < n_genes; g++) {
            nonzero[n_nonzero] = g;
            n_nonzero += xr[g] != 0.0f;
        }
        for (int64_t i = 0; i < n_nonzero; i++) {
            const int64_t g = nonzero[i];
            const float xv = xr[g];
            if (xv <= top && xv == floorf(xv)) { /* almost every count: the tables */
                const int64_t at = (int64_t)xv * n_genes + g;
                log_p += log_table[at];
                if (need_grad) qd_row[g] -= digamma_table[at];
                continue;
            }
            const double th = theta[g], xd = xv;
            double log_term, digamma_term = 0.0;
            if (xd == floor(xd)) { /* an integer above the tables: extend their last entry */
                const int64_t at = (int64_t)top * n_genes + g;
                log_term = log_table[at] + gv_lgamma_diff_large(xd + th, top + th)
                    - gv_lgamma_diff_large(xd + 1.0, top + 1.0);
                if (need_grad)
                    digamma_term = digamma_table[at] + gv_digamma_large(xd + th)
                        - gv_digamma_large(top + th);
            } else {
                log_term = lgamma(xd + th) - lgamma(th) - lgamma(xd + 1.0);
                if (need_grad) digamma_term = gv_digamma(xd + th) - gv_digamma(th);
            }
            log_p += log_term;
            if (need_grad) qd_row[g] -= (float)digamma_term;
        }
        neg_log_p[row] = (float)(-(log_p + x_sum * ((double)log_library[row] - log_sum_exp)));
        if (need_grad) { /* d(-log p)/d logits_g = b_g - s_g sum_k b_k */
            const float b_sum_row = (float)b_total, scale = b_sum_row * inv_sum;
            b_sum[row] = b_sum_row;
#pragma omp simd
            for (int64_t g = 0; g < n_genes; g++) e[g] = b_row[g] - e[g] * scale;
        }
    }
}
