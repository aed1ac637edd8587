/* Clocks. */
#ifndef DTK_UTIL_CLOCK_H
#define DTK_UTIL_CLOCK_H

#include <stdint.h>

/* The wall clock, milliseconds since the epoch. */
int64_t dtk_now_ms(void);
/* A monotonic clock in milliseconds, for durations. */
double dtk_mono_ms(void);
/* Sleeps ms milliseconds (0 or less returns at once). */
void dtk_sleep_ms(int64_t ms);

#endif
