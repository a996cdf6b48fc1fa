/* The NB / ZINB reconstruction loss and its gradient in one pass over each cell's genes.
 *
 * The same numbers as the torch path of genevae/model/count_loss.py (whose module
 * docstring derives them), fused: the torch path makes ~25 passes over the (batch,
 * n_genes) matrices per training step, this makes three per cell (max, exp, the rest),
 * with the exp, log1p and log of glibc's vector math library (libmvec); the genes of a
 * cell's non-zero counts are found with AVX-512's compress where the CPU has it. Built
 * by setup.py (optional: without a C compiler the torch path runs) and loaded with
 * ctypes by count_loss.py; it uses no Python API.
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
#include <immintrin.h>
#endif

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

/* The genes start <= g < n of a cell's non-zero counts, appended to the count found so
 * far in nonzero; returns the new count. */
static int64_t gv_nonzero_from(const float *xr, int64_t start, int64_t n, int32_t *nonzero,
                               int64_t count) {
    for (int64_t g = start; g < n; g++) {
        nonzero[count] = (int32_t)g;
        count += xr[g] != 0.0f;
    }
    return count;
}

static int64_t gv_nonzero_scalar(const float *xr, int64_t n, int32_t *nonzero) {
    return gv_nonzero_from(xr, 0, n, nonzero, 0);
}

#if defined(__x86_64__) && defined(__GNUC__)
/* The same with AVX-512's compress, 16 genes at a time (compress into a register, then
 * an ordinary store: compress straight to memory is slow on AMD Zen 4). nonzero needs
 * room for n + 16. */
__attribute__((target("avx512f,avx512vl,popcnt")))
static int64_t gv_nonzero_avx512(const float *xr, int64_t n, int32_t *nonzero) {
    int64_t count = 0, g = 0;
    __m512i index = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512i sixteen = _mm512_set1_epi32(16);
    for (; g + 16 <= n; g += 16) {
        const __mmask16 found = _mm512_cmpneq_ps_mask(_mm512_loadu_ps(xr + g), _mm512_setzero_ps());
        _mm512_storeu_si512((void *)(nonzero + count), _mm512_maskz_compress_epi32(found, index));
        count += __builtin_popcount((unsigned)found);
        index = _mm512_add_epi32(index, sixteen);
    }
    return gv_nonzero_from(xr, g, n, nonzero, count);
}
#endif

typedef int64_t (*gv_nonzero_fn)(const float *, int64_t, int32_t *);

/* The non-zero finder for this CPU, chosen at the first call. */
static gv_nonzero_fn gv_nonzero_finder(void) {
    static gv_nonzero_fn chosen = NULL;
    if (chosen) return chosen;
    chosen = gv_nonzero_scalar;
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl"))
        chosen = gv_nonzero_avx512;
#endif
    return chosen;
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
 * without it those may be NULL and work holds 4 n_genes floats. zi_logits NULL: NB.
 * nonzero: room for n_genes + 16 int32 (the genes of a cell's non-zero counts). */
GV_CLONES
void gv_count_loss(int64_t row_start, int64_t row_end, int64_t n_genes, int64_t n_table,
                   const float *logits, const float *log_library, const float *log_theta,
                   const float *theta, const float *inv_theta, const float *x,
                   const float *zi_logits, const float *log_table, const float *digamma_table,
                   int need_grad, float *neg_log_p, float *grad_logits, float *b_out,
                   float *q_minus_d, float *b_sum, float *grad_zi, float *work,
                   int32_t *nonzero) {
    const float top = (float)(n_table - 1);
    const gv_nonzero_fn find_nonzero = gv_nonzero_finder();
    for (int64_t row = row_start; row < row_end; row++) {
        const int64_t offset = row * n_genes;
        const float *l = logits + offset, *xr = x + offset;
        const float *zr = zi_logits ? zi_logits + offset : NULL;
        /* without need_grad the per-gene outputs go to scratch rows, so that one dense
         * loop (no branch on need_grad, which kept gcc from vectorizing) serves both */
        float *e = need_grad ? grad_logits + offset : work; /* exp(l - max), then the gradient */
        float *b_row = need_grad ? b_out + offset : work + n_genes;
        float *qd_row = need_grad ? q_minus_d + offset : work + 2 * n_genes;
        float *gz_row = need_grad && zr ? grad_zi + offset : work + 3 * n_genes;

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
                const float bv = (mu - xv) / (1.0f + r);
                b_row[g] = bv;
                qd_row[g] = q;
                b_total += bv;
            }
        } else {
#pragma omp simd reduction(+ : log_p, x_sum, b_total)
            for (int64_t g = 0; g < n_genes; g++) {
                const float xv = xr[g], mu = e[g] * mu_scale, r = mu * inv_theta[g];
                const float q = log1pf(r);
                const float zl = zr[g], v = zl + theta[g] * q; /* log NB(0) = -theta q */
                const float exp_v = expf(-fabsf(v)), exp_l = expf(-fabsf(zl));
                const float inv_v = 1.0f / (1.0f + exp_v), inv_l = 1.0f / (1.0f + exp_l);
                const float is_zero = xv == 0.0f ? 1.0f : 0.0f;
                /* z softplus(v) - softplus(l), softplus(y) = max(y, 0) + log(1 + exp(-|y|)),
                 * with one log: of (1 + exp(-|v|))^z / (1 + exp(-|l|)), in (1/2, 2) */
                const float softplus_gap = is_zero * fmaxf(v, 0.0f) - fmaxf(zl, 0.0f)
                    + logf((xv == 0.0f ? 1.0f + exp_v : 1.0f) * inv_l);
                log_p += xv * (l[g] - q - log_theta[g]) - q * theta[g] + softplus_gap;
                x_sum += xv;
                const float sigmoid_v = (v >= 0.0f ? 1.0f : exp_v) * inv_v;
                const float sigmoid_l = (zl >= 0.0f ? 1.0f : exp_l) * inv_l;
                const float zero_share = is_zero * sigmoid_v, omega = 1.0f - zero_share;
                const float bv = omega * (mu - xv) / (1.0f + r);
                gz_row[g] = sigmoid_l - zero_share;
                b_row[g] = bv;
                qd_row[g] = omega * q;
                b_total += bv;
            }
        }
        /* the non-zero counts (x > 0: omega = 1): their genes, then their lgamma terms */
        const int64_t n_nonzero = find_nonzero(xr, n_genes, nonzero);
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

/* The OpenMP runtime's entry points, as the caller found them in the process (torch's
 * runtime, so that the kernel shares torch's threads instead of starting a second
 * team that would compete with torch's spinning workers for the cores). */
typedef void (*gv_parallel_fn)(void (*)(void *), void *, unsigned, unsigned);
typedef int (*gv_team_fn)(void);

struct gv_count_job {
    gv_team_fn thread_num, num_threads;
    int64_t row_start, row_end, n_genes, n_table;
    const float *logits, *log_library, *log_theta, *theta, *inv_theta, *x, *zi_logits;
    const float *log_table, *digamma_table;
    int need_grad;
    float *neg_log_p, *grad_logits, *b_out, *q_minus_d, *b_sum, *grad_zi, *work;
    int32_t *nonzero;
};

/* One thread's share of the cells, with its own scratch rows. */
static void gv_count_share(void *data) {
    const struct gv_count_job *job = (const struct gv_count_job *)data;
    const int64_t t = job->thread_num(), team = job->num_threads();
    const int64_t n = job->row_end - job->row_start;
    gv_count_loss(job->row_start + n * t / team, job->row_start + n * (t + 1) / team,
                  job->n_genes, job->n_table, job->logits, job->log_library, job->log_theta,
                  job->theta, job->inv_theta, job->x, job->zi_logits, job->log_table,
                  job->digamma_table, job->need_grad, job->neg_log_p, job->grad_logits,
                  job->b_out, job->q_minus_d, job->b_sum, job->grad_zi,
                  job->work ? job->work + t * 4 * job->n_genes : NULL,
                  job->nonzero + t * (job->n_genes + 16));
}

/* gv_count_loss over n_threads threads of the given OpenMP runtime, each taking a
 * contiguous share of the cells (each cell's numbers are those of the serial call):
 * work holds 4 n_genes floats and nonzero n_genes + 16 int32 per thread. */
void gv_count_loss_parallel(void *parallel, void *thread_num, void *num_threads,
                            int64_t n_threads, int64_t row_start, int64_t row_end,
                            int64_t n_genes, int64_t n_table, const float *logits,
                            const float *log_library, const float *log_theta,
                            const float *theta, const float *inv_theta, const float *x,
                            const float *zi_logits, const float *log_table,
                            const float *digamma_table, int need_grad, float *neg_log_p,
                            float *grad_logits, float *b_out, float *q_minus_d, float *b_sum,
                            float *grad_zi, float *work, int32_t *nonzero) {
    struct gv_count_job job = {
        (gv_team_fn)thread_num, (gv_team_fn)num_threads, row_start, row_end, n_genes,
        n_table, logits, log_library, log_theta, theta, inv_theta, x, zi_logits, log_table,
        digamma_table, need_grad, neg_log_p, grad_logits, b_out, q_minus_d, b_sum, grad_zi,
        work, nonzero};
    ((gv_parallel_fn)parallel)(gv_count_share, &job, (unsigned)n_threads, 0);
}
