/*
 * fuzz_common.h
 *		Helpers shared by the libFuzzer targets in test/fuzz/ (header-only,
 *		like test/unit/tap.h).
 *
 * The checks here are written independently of the code under test: the
 * UTF-8 rules are decoded to code points and checked against RFC 3629's
 * ranges instead of reusing json.c's table, so a mistake in one is caught
 * by the other.
 */
#ifndef AIBACKUP_FUZZ_COMMON_H
#define AIBACKUP_FUZZ_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* an invariant: on failure say which (libFuzzer saves the input) */
#define CHECK(cond) \
	do { \
		if (!(cond)) \
		{ \
			fprintf(stderr, "%s:%d: invariant failed: %s\n", \
					__FILE__, __LINE__, #cond); \
			abort(); \
		} \
	} while (0)

/*
 * Length of the well-formed UTF-8 sequence at s[0..n), 0 if there is none
 * (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF).
 * A NUL byte counts as a one-byte sequence.
 */
static inline size_t
fz_utf8_len(const unsigned char *s, size_t n)
{
	uint32_t	cp;
	size_t		len;
	size_t		i;

	if (n == 0)
		return 0;
	if (s[0] < 0x80)
		return 1;
	if ((s[0] & 0xE0) == 0xC0)
	{
		len = 2;
		cp = s[0] & 0x1F;
	}
	else if ((s[0] & 0xF0) == 0xE0)
	{
		len = 3;
		cp = s[0] & 0x0F;
	}
	else if ((s[0] & 0xF8) == 0xF0)
	{
		len = 4;
		cp = s[0] & 0x07;
	}
	else
		return 0;
	if (n < len)
		return 0;
	for (i = 1; i < len; i++)
	{
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3F);
	}
	if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) ||
		(len == 4 && cp < 0x10000))
		return 0;				/* overlong */
	if ((cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
		return 0;
	return len;
}

/* is s[0..n) entirely well-formed UTF-8? */
static inline bool
fz_utf8_valid(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *) s;
	size_t		i = 0;

	while (i < n)
	{
		size_t		l = fz_utf8_len(p + i, n - i);

		if (l == 0)
			return false;
		i += l;
	}
	return true;
}

/*
 * The C string s with every byte that does not start a well-formed sequence
 * replaced by U+FFFD: what json.h promises json_escape() makes of it.
 * malloc'd; aborts on OOM.
 */
static inline char *
fz_utf8_sanitize(const char *s)
{
	const unsigned char *p = (const unsigned char *) s;
	size_t		n = strlen(s);
	size_t		i = 0;
	AbBuf		b;

	abuf_init(&b);
	abuf_append(&b, "", 0);
	while (i < n)
	{
		size_t		l = fz_utf8_len(p + i, n - i);

		if (l == 0)
		{
			abuf_append(&b, "\xEF\xBF\xBD", 3);
			i++;
		}
		else
		{
			abuf_append(&b, p + i, l);
			i += l;
		}
	}
	CHECK(!b.oom);
	return abuf_steal(&b);
}

/* NULL-safe string equality */
static inline bool
fz_str_eq(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

/* a NUL-terminated copy of data[0..size) (which may hold NULs itself) */
static inline char *
fz_cstring(const uint8_t *data, size_t size)
{
	char	   *s = malloc(size + 1);

	CHECK(s != NULL);
	if (size > 0)
		memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

/* a cursor that hands out the input's bytes, zeros once they run out */
typedef struct FzBytes
{
	const uint8_t *p;
	size_t		left;
} FzBytes;

static inline unsigned int
fz_byte(FzBytes *in)
{
	if (in->left == 0)
		return 0;
	in->left--;
	return *in->p++;
}

static inline uint64_t
fz_u64(FzBytes *in)
{
	uint64_t	v = 0;
	int			i;

	for (i = 0; i < 8; i++)
		v = (v << 8) | fz_byte(in);
	return v;
}

/*
 * A malloc'd string of up to maxlen bytes from the input (its length comes
 * first), cut at a NUL byte.
 */
static inline char *
fz_string(FzBytes *in, size_t maxlen)
{
	size_t		n = fz_byte(in) % (maxlen + 1);
	char	   *s;

	if (n > in->left)
		n = in->left;
	s = malloc(n + 1);
	CHECK(s != NULL);
	if (n > 0)
		memcpy(s, in->p, n);
	s[n] = '\0';
	in->p += n;
	in->left -= n;
	return s;
}

/*
 * Allocation failure injection.  The targets are linked with
 * -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=strdup (see the
 * Makefile; those are all the core's allocators), so every allocation
 * passes through here.  Between fz_alloc_arm(k) and fz_alloc_disarm() the
 * allocations are counted and the k-th one fails (k = 0: none fails);
 * fz_alloc_disarm() returns the count.  A target runs a call once to count
 * its allocations, then again with one of them, picked by fz_hash() of the
 * input, failing: the call must fail cleanly (ASan and LSan watch).
 */
void	   *__real_malloc(size_t size);
void	   *__real_calloc(size_t n, size_t size);
void	   *__real_realloc(void *p, size_t size);
char	   *__real_strdup(const char *s);
void	   *__wrap_malloc(size_t size);
void	   *__wrap_calloc(size_t n, size_t size);
void	   *__wrap_realloc(void *p, size_t size);
char	   *__wrap_strdup(const char *s);

static bool fz_alloc_armed;
static long fz_alloc_fail_at;
static long fz_alloc_count;
static bool fz_alloc_failed;

static inline bool
fz_alloc_fails(void)
{
	if (!fz_alloc_armed)
		return false;
	if (++fz_alloc_count != fz_alloc_fail_at)
		return false;
	fz_alloc_failed = true;
	return true;
}

void *
__wrap_malloc(size_t size)
{
	return fz_alloc_fails() ? NULL : __real_malloc(size);
}

void *
__wrap_calloc(size_t n, size_t size)
{
	return fz_alloc_fails() ? NULL : __real_calloc(n, size);
}

void *
__wrap_realloc(void *p, size_t size)
{
	return fz_alloc_fails() ? NULL : __real_realloc(p, size);
}

char *
__wrap_strdup(const char *s)
{
	return fz_alloc_fails() ? NULL : __real_strdup(s);
}

static inline void
fz_alloc_arm(long fail_at)
{
	fz_alloc_count = 0;
	fz_alloc_fail_at = fail_at;
	fz_alloc_failed = false;
	fz_alloc_armed = true;
}

static inline long
fz_alloc_disarm(void)
{
	fz_alloc_armed = false;
	return fz_alloc_count;
}

/* FNV-1a of the input: picks which allocation fails */
static inline uint64_t
fz_hash(const uint8_t *data, size_t size)
{
	uint64_t	h = UINT64_C(14695981039346656037);
	size_t		i;

	for (i = 0; i < size; i++)
		h = (h ^ data[i]) * UINT64_C(1099511628211);
	return h;
}

#endif							/* AIBACKUP_FUZZ_COMMON_H */
