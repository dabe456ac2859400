/*
 * buf.c
 *		Growable byte buffer for the pure-C core.  See buf.h.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

void
abuf_init(AbBuf *b)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->oom = false;
}

static bool
abuf_reserve(AbBuf *b, size_t extra)
{
	size_t		need;
	size_t		ncap;
	char	   *n;

	if (b->oom)
		return false;
	need = b->len + extra + 1;
	if (need <= b->cap)
		return true;
	ncap = b->cap ? b->cap : 64;
	while (ncap < need)
		ncap *= 2;
	n = realloc(b->data, ncap);
	if (n == NULL)
	{
		b->oom = true;
		return false;
	}
	b->data = n;
	b->cap = ncap;
	return true;
}

bool
abuf_append(AbBuf *b, const void *data, size_t len)
{
	if (!abuf_reserve(b, len))
		return false;
	if (len > 0)
		memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
	return true;
}

bool
abuf_appends(AbBuf *b, const char *s)
{
	return abuf_append(b, s, strlen(s));
}

bool
abuf_appendc(AbBuf *b, char c)
{
	return abuf_append(b, &c, 1);
}

bool
abuf_appendf(AbBuf *b, const char *fmt,...)
{
	va_list		ap;
	int			n;

	if (!abuf_reserve(b, 64))
		return false;
	for (;;)
	{
		size_t		avail = b->cap - b->len;

		va_start(ap, fmt);
		n = vsnprintf(b->data + b->len, avail, fmt, ap);
		va_end(ap);
		if (n < 0)
		{
			b->data[b->len] = '\0';
			return false;
		}
		if ((size_t) n < avail)
		{
			b->len += n;
			return true;
		}
		if (!abuf_reserve(b, (size_t) n))
			return false;
	}
}

void
abuf_reset(AbBuf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

void
abuf_free(AbBuf *b)
{
	free(b->data);
	abuf_init(b);
}

char *
abuf_steal(AbBuf *b)
{
	char	   *s;

	if (b->data == NULL && !b->oom)
		abuf_appends(b, "");
	s = b->oom ? NULL : b->data;
	if (b->oom)
		free(b->data);
	abuf_init(b);
	return s;
}

char *
ab_strdup(const char *s)
{
	return s ? strdup(s) : NULL;
}

bool
abuf_append_utf8(AbBuf *b, unsigned long cp)
{
	char		u[4];

	if (cp < 0x80)
	{
		u[0] = (char) cp;
		return abuf_append(b, u, 1);
	}
	if (cp < 0x800)
	{
		u[0] = (char) (0xC0 | (cp >> 6));
		u[1] = (char) (0x80 | (cp & 0x3F));
		return abuf_append(b, u, 2);
	}
	if (cp < 0x10000)
	{
		u[0] = (char) (0xE0 | (cp >> 12));
		u[1] = (char) (0x80 | ((cp >> 6) & 0x3F));
		u[2] = (char) (0x80 | (cp & 0x3F));
		return abuf_append(b, u, 3);
	}
	u[0] = (char) (0xF0 | (cp >> 18));
	u[1] = (char) (0x80 | ((cp >> 12) & 0x3F));
	u[2] = (char) (0x80 | ((cp >> 6) & 0x3F));
	u[3] = (char) (0x80 | (cp & 0x3F));
	return abuf_append(b, u, 4);
}
