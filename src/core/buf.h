/*
 * buf.h
 *		Growable byte buffer for the pure-C core (malloc based).
 *
 * The core never uses palloc or ereport, so it needs its own small string
 * builder.  An allocation failure is remembered in the buffer ("oom") and
 * every later append is a no-op, so callers can append freely and check once.
 */
#ifndef AIBACKUP_BUF_H
#define AIBACKUP_BUF_H

#include <stdbool.h>
#include <stddef.h>

typedef struct AbBuf
{
	char	   *data;			/* always NUL-terminated when non-NULL */
	size_t		len;			/* bytes used, excluding the NUL */
	size_t		cap;			/* bytes allocated */
	bool		oom;			/* an allocation failed */
} AbBuf;

extern void abuf_init(AbBuf *b);
extern bool abuf_append(AbBuf *b, const void *data, size_t len);
extern bool abuf_appends(AbBuf *b, const char *s);
extern bool abuf_appendc(AbBuf *b, char c);
extern bool abuf_appendf(AbBuf *b, const char *fmt,...)
			__attribute__((format(printf, 2, 3)));
extern void abuf_reset(AbBuf *b);
extern void abuf_free(AbBuf *b);

/* append Unicode code point cp (<= 0x10FFFF) as UTF-8 */
extern bool abuf_append_utf8(AbBuf *b, unsigned long cp);

/* take ownership of the malloc'd string; the buffer is left empty */
extern char *abuf_steal(AbBuf *b);

/* strdup that returns NULL for NULL */
extern char *ab_strdup(const char *s);

#endif							/* AIBACKUP_BUF_H */
