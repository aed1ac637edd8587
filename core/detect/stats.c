#include "detect/stats.h"

#include <math.h>
#include <string.h>

/* numpy's PW_BLOCKSIZE and unroll factor: matching the shape of its
 * summation tree reproduces DetectK's last bits. */
#define PW_BLOCK 128
#define PW_UNROLL 8
#define COMMA ,

/* One pairwise summation per element expression, so products are summed
 * without a temporary array. ELEM(i) is the i-th term. */
#define DEFINE_PAIRWISE(NAME, PARAMS, ARGS, ADVANCE, ELEM)                                        \
	static double NAME(PARAMS, size_t n)                                                      \
	{                                                                                         \
		if (n < PW_UNROLL) {                                                              \
			double res = 0.;                                                          \
			for (size_t i = 0; i < n; i++)                                            \
				res += ELEM(i);                                                   \
			return res;                                                               \
		}                                                                                 \
		if (n <= PW_BLOCK) {                                                              \
			double r[PW_UNROLL];                                                      \
			size_t i;                                                                 \
			for (int j = 0; j < PW_UNROLL; j++)                                       \
				r[j] = ELEM(j);                                                   \
			for (i = PW_UNROLL; i < n - (n % PW_UNROLL); i += PW_UNROLL)              \
				for (int j = 0; j < PW_UNROLL; j++)                               \
					r[j] += ELEM(i + j);                                      \
			double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7])); \
			for (; i < n; i++)                                                        \
				res += ELEM(i);                                                   \
			return res;                                                               \
		}                                                                                 \
		size_t n2 = n / 2;                                                                \
		n2 -= n2 % PW_UNROLL;                                                             \
		return NAME(ARGS, n2) + NAME(ADVANCE(n2), n - n2);                                \
	}

#define SUM_ELEM(i) (a[(i)])
#define SUM_ADV(k) a + (k)
DEFINE_PAIRWISE(pw_sum, const double *a, a, SUM_ADV, SUM_ELEM)

#define DOT_ELEM(i) (w[(i)] * x[(i)])
#define DOT_ADV(k) w + (k), x + (k)
DEFINE_PAIRWISE(pw_dot, const double *w COMMA const double *x, w COMMA x, DOT_ADV, DOT_ELEM)

/* numpy evaluates weights * (data - mean) ** 2: square first, then weight. */
#define VAR_ELEM(i) (w[(i)] * ((x[(i)] - mean) * (x[(i)] - mean)))
#define VAR_ADV(k) w + (k), x + (k), mean
DEFINE_PAIRWISE(pw_var, const double *w COMMA const double *x COMMA double mean,
		w COMMA x COMMA mean, VAR_ADV, VAR_ELEM)

double dtk_stats_sum(const double *a, size_t n)
{
	return pw_sum(a, n);
}

/* Weights are recomputed with exp() every WEIGHT_REFRESH steps and carried
 * by multiplication in between: a relative error of a few ulps, well inside
 * the 1e-9 the conformance vectors allow, at a fraction of the cost. */
#define WEIGHT_REFRESH 32

void dtk_stats_weights(double *w, size_t n, int weighted, double decay)
{
	if (n == 0)
		return;
	if (!weighted) {
		double each = 1.0 / (double)n;
		for (size_t i = 0; i < n; i++)
			w[i] = each;
		return;
	}
	double step = exp(-decay);
	double cur = 1.0;
	for (size_t k = 0; k < n; k++) {
		if (k % WEIGHT_REFRESH == 0) {
			cur = exp(-decay * (double)k);
			if (cur == 0.0) {
				for (size_t j = k; j < n; j++)
					w[n - 1 - j] = 0.0;
				break;
			}
		} else {
			cur *= step;
		}
		w[n - 1 - k] = cur;
	}
	double total = pw_sum(w, n);
	for (size_t i = 0; i < n; i++)
		w[i] /= total;
}

void dtk_stats_mean_std(const double *x, const double *w, size_t n, double *mean, double *std)
{
	double m = pw_dot(w, x, n);
	*mean = m;
	*std = sqrt(pw_var(w, x, m, n));
}

static uint64_t key_of(double v)
{
	uint64_t b;
	if (v == 0.0)
		v = 0.0; /* -0.0 sorts with +0.0 */
	memcpy(&b, &v, sizeof(b));
	return (b >> 63) ? ~b : b | (UINT64_C(1) << 63);
}

double dtk_stats_pair_value(const dtk_stats_pair *p)
{
	uint64_t b = (p->key >> 63) ? p->key ^ (UINT64_C(1) << 63) : ~p->key;
	double v;
	memcpy(&v, &b, sizeof(v));
	return v;
}

#define RADIX_MIN 48

void dtk_stats_sort(const double *x, const double *w, size_t n, dtk_stats_pair *out,
		    dtk_stats_pair *tmp)
{
	if (n < RADIX_MIN) {
		for (size_t i = 0; i < n; i++) {
			dtk_stats_pair p = {key_of(x[i]), w[i]};
			size_t j = i;
			while (j > 0 && out[j - 1].key > p.key) {
				out[j] = out[j - 1];
				j--;
			}
			out[j] = p;
		}
		return;
	}
	/* LSD radix sort, 8 bits a pass; passes where every key shares the
	 * digit (sign and exponent, usually) are skipped. */
	uint32_t count[8][256];
	memset(count, 0, sizeof(count));
	for (size_t i = 0; i < n; i++) {
		uint64_t k = key_of(x[i]);
		tmp[i].key = k;
		tmp[i].w = w[i];
		for (int d = 0; d < 8; d++)
			count[d][(k >> (8 * d)) & 0xff]++;
	}
	dtk_stats_pair *src = tmp, *dst = out;
	for (int d = 0; d < 8; d++) {
		uint32_t *c = count[d];
		if (c[(src[0].key >> (8 * d)) & 0xff] == n)
			continue;
		uint32_t pos[256], sum = 0;
		for (int b = 0; b < 256; b++) {
			pos[b] = sum;
			sum += c[b];
		}
		for (size_t i = 0; i < n; i++) {
			unsigned b = (unsigned)(src[i].key >> (8 * d)) & 0xff;
			dst[pos[b]++] = src[i];
		}
		dtk_stats_pair *t = src;
		src = dst;
		dst = t;
	}
	if (src != out)
		memcpy(out, src, n * sizeof(*out));
}

void dtk_stats_quantiles(const dtk_stats_pair *s, size_t n, const double *levels, size_t nlevels,
			 double *out)
{
	double cum = 0.0;
	size_t i = 0, q = 0;
	for (; i < n && q < nlevels; i++) {
		cum += s[i].w;
		while (q < nlevels && cum >= levels[q])
			out[q++] = dtk_stats_pair_value(&s[i]);
	}
	for (; q < nlevels; q++)
		out[q] = n ? dtk_stats_pair_value(&s[n - 1]) : NAN;
}

void dtk_stats_median_mad(const dtk_stats_pair *s, size_t n, double *median, double *mad)
{
	if (n == 0) {
		*median = *mad = NAN;
		return;
	}
	double cum = 0.0;
	size_t p = n - 1;
	for (size_t i = 0; i < n; i++) {
		cum += s[i].w;
		if (cum >= 0.5) {
			p = i;
			break;
		}
	}
	uint64_t mkey = s[p].key;
	double m = dtk_stats_pair_value(&s[p]);
	*median = m;

	/* |x - m| in ascending order is a merge of the values below m read
	 * downwards and the values from m up read upwards. */
	size_t right = p;
	while (right > 0 && s[right - 1].key == mkey)
		right--;
	size_t left = right; /* s[0..left) are below m */
	double last = 0.0;
	cum = 0.0;
	while (left > 0 || right < n) {
		double dl = left > 0 ? m - dtk_stats_pair_value(&s[left - 1]) : INFINITY;
		double dr = right < n ? dtk_stats_pair_value(&s[right]) - m : INFINITY;
		if (dr <= dl) {
			cum += s[right].w;
			last = dr;
			right++;
		} else {
			cum += s[left - 1].w;
			last = dl;
			left--;
		}
		if (cum >= 0.5)
			break;
	}
	*mad = last;
}
