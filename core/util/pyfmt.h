/* Numbers and times printed the way Python prints them, so that detector
 * ids, templates and JSON match DetectK byte for byte. Pure functions. */
#ifndef DTK_UTIL_PYFMT_H
#define DTK_UTIL_PYFMT_H

#include <stddef.h>
#include <stdint.h>

/* repr(float): shortest round-trip digits, ".0" on integral values,
 * exponent form outside 1e-4 <= |x| < 1e16 ("1e-05", "1e+16"), "inf",
 * "-inf", "nan". Writes at most outsz bytes, always NUL-terminated. */
void dtk_pyfmt_float(double f, char *out, size_t outsz);

/* Civil date from days since 1970-01-01, and back. */
void dtk_pyfmt_civil(int64_t days, int *y, int *m, int *d);
int64_t dtk_pyfmt_days(int y, int m, int d);

/* datetime.isoformat() of a naive UTC time: "YYYY-MM-DDTHH:MM:SS" plus
 * ".ffffff" when usec != 0. sep is 'T' or ' ' (str(datetime)). */
void dtk_pyfmt_datetime(int64_t secs, int32_t usec, char sep, char *out, size_t outsz);

#endif
