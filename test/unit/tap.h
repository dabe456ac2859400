/*
 * tap.h
 *		A minimal TAP producer for the C unit tests (prove reads the output).
 */
#ifndef AIBACKUP_TAP_H
#define AIBACKUP_TAP_H

#include <stdio.h>
#include <string.h>

static int	tap_n = 0;
static int	tap_failed = 0;

#define ok(cond, ...) \
	do { \
		int tap_c_ = (cond) ? 1 : 0; \
		printf("%sok %d - ", tap_c_ ? "" : "not ", ++tap_n); \
		printf(__VA_ARGS__); \
		printf("\n"); \
		if (!tap_c_) { \
			tap_failed++; \
			printf("#   failed at %s line %d\n", __FILE__, __LINE__); \
		} \
	} while (0)

#define is_str(got, want, ...) \
	do { \
		const char *tap_g_ = (got); \
		const char *tap_w_ = (want); \
		int tap_s_ = tap_g_ && tap_w_ && strcmp(tap_g_, tap_w_) == 0; \
		ok(tap_s_, __VA_ARGS__); \
		if (!tap_s_) \
			printf("#   got:  '%s'\n#   want: '%s'\n", \
				   tap_g_ ? tap_g_ : "(null)", tap_w_ ? tap_w_ : "(null)"); \
	} while (0)

#define done_testing() \
	(printf("1..%d\n", tap_n), tap_failed ? 1 : 0)

#endif							/* AIBACKUP_TAP_H */
