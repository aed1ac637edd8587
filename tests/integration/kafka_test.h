/* What the librdkafka tests (test_kafka_librdkafka.c, test_librdkafka_defects.c)
 * share. Each includes this first and compiles its own code only without
 * DTK_NO_RDKAFKA: tests/integration.cmake links both against librdkafka, or,
 * configured without librdkafka-dev (CMakeLists.txt: pkg_check_modules rdkafka),
 * defines DTK_NO_RDKAFKA, and then the main here skips (fails under
 * DTK_REQUIRE_SERVICES=1). */
#ifndef DTK_TESTS_KAFKA_TEST_H
#define DTK_TESTS_KAFKA_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* 1 when DTK_REQUIRE_SERVICES=1: a test that cannot run fails, not skips. */
static inline int services_required(void)
{
	const char *r = getenv("DTK_REQUIRE_SERVICES");
	return r && strcmp(r, "1") == 0;
}

#ifdef DTK_NO_RDKAFKA
int main(void)
{
	printf("SKIP kafka: built without librdkafka (apt-get install librdkafka-dev, "
	       "then reconfigure)\n");
	return services_required() ? 1 : 77;
}
#else
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <librdkafka/rdkafka.h>

/* When the test began (main sets it), for note(). */
static int64_t t_start;
/* What on_alarm writes; set by time_limit before the alarm can fire. */
static const char *alarm_msg;

static inline int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A "# [  seconds since t_start] ..." line on stdout, flushed. */
static inline void note(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	printf("# [%6.1fs] ", (now_ms() - t_start) / 1000.0);
	vprintf(fmt, ap);
	printf("\n");
	fflush(stdout);
	va_end(ap);
}

static void on_alarm(int sig)
{
	(void)sig;
	(void)!write(2, alarm_msg, strlen(alarm_msg));
	_exit(1);
}

/* Ends the process (exit 1, msg on stderr) once seconds have passed: no wait
 * may hang the test. msg is borrowed and must outlive the test. */
static inline void time_limit(unsigned seconds, const char *msg)
{
	alarm_msg = msg;
	signal(SIGALRM, on_alarm);
	alarm(seconds);
}

static inline void conf_set(rd_kafka_conf_t *c, const char *k, const char *v)
{
	char err[512];
	if (rd_kafka_conf_set(c, k, v, err, sizeof(err)) != RD_KAFKA_CONF_OK)
		fail_msg("conf %s=%s: %s", k, v, err);
}

#endif /* DTK_NO_RDKAFKA */
#endif /* DTK_TESTS_KAFKA_TEST_H */
