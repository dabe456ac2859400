/*
 * gzstream.c
 *		Streaming gzip decompression on zlib.  See gzstream.h; compression is
 *		in gzdeflate.c.
 *
 * The inflater collects its output in a 64 KiB buffer and hands it to the
 * caller's sink when it is full and at the end of every gzs_inflate_write(),
 * so once a write returns everything decoded so far has reached the sink.
 *
 * After a member ends, any further input must be another gzip member:
 * trailing garbage (even zero padding, which gzip(1) only warns about) is
 * an error, since a backup object is never written that way.
 *
 * zlib's avail_in is a uInt, so large writes are fed in slices.  Once a
 * stream has failed, every later call fails with the same message.  A NULL
 * sink gives a stream that fails on first use, so that gzs_inflate_new()
 * returns NULL only when memory runs out.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ZLIB_CONST				/* next_in is const */
#include <zlib.h>

#include "gzstream.h"

#define GZS_CHUNK		(64 * 1024)
#define GZS_MAX_SLICE	((size_t) 1 << 30)	/* fits in uInt */
#define GZS_WBITS		(15 + 16)	/* 32 KiB window, gzip wrapper only */
#define GZS_ERRLEN		256

struct GzsInflate
{
	z_stream	strm;
	GzsSink		sink;
	void	   *arg;
	unsigned char *out;			/* GZS_CHUNK bytes */
	uint64_t	bytes_in;
	uint64_t	bytes_out;		/* bytes handed to the sink */
	uint64_t	members;		/* complete members seen */
	bool		in_member;		/* inside a member that has not ended */
	bool		need_reset;		/* a member ended; reset before more input */
	bool		failed;
	char		errmsg[GZS_ERRLEN];
};

static void gzs_error(char *errmsg, bool *failed, const char *fmt,...)
			__attribute__((format(printf, 3, 4)));

/* record the first error of a stream; the stream stays failed */
static void
gzs_error(char *errmsg, bool *failed, const char *fmt,...)
{
	va_list		ap;

	if (*failed)
		return;
	va_start(ap, fmt);
	vsnprintf(errmsg, GZS_ERRLEN, fmt, ap);
	va_end(ap);
	*failed = true;
}

/* ----------------------------------------------------------------
 * Decompression
 * ----------------------------------------------------------------
 */

GzsInflate *
gzs_inflate_new(GzsSink sink, void *arg)
{
	GzsInflate *z;

	z = calloc(1, sizeof(GzsInflate));
	if (z == NULL)
		return NULL;
	z->out = malloc(GZS_CHUNK);
	if (z->out == NULL)
	{
		free(z);
		return NULL;
	}
	z->sink = sink;
	z->arg = arg;
	z->strm.next_in = NULL;
	z->strm.avail_in = 0;
	if (inflateInit2(&z->strm, GZS_WBITS) != Z_OK)
	{
		free(z->out);
		free(z);
		return NULL;
	}
	z->strm.next_out = z->out;
	z->strm.avail_out = GZS_CHUNK;
	if (sink == NULL)
		gzs_error(z->errmsg, &z->failed, "no output callback given");
	return z;
}

/* hand the buffered output to the sink */
static bool
inflate_flush_out(GzsInflate *z)
{
	size_t		have = GZS_CHUNK - z->strm.avail_out;

	if (have > 0)
	{
		if (z->sink(z->arg, z->out, have) != 0)
		{
			gzs_error(z->errmsg, &z->failed, "output callback failed");
			return false;
		}
		z->bytes_out += have;
	}
	z->strm.next_out = z->out;
	z->strm.avail_out = GZS_CHUNK;
	return true;
}

/* turn a failed inflate() into a message */
static void
inflate_error(GzsInflate *z, int ret)
{
	const char *msg = z->strm.msg ? z->strm.msg : zError(ret);

	if (ret == Z_MEM_ERROR)
		gzs_error(z->errmsg, &z->failed, "out of memory");
	else if (strcmp(msg, "incorrect header check") != 0)
		gzs_error(z->errmsg, &z->failed, "gzip data is corrupt: %s", msg);
	else if (z->members == 0)
		gzs_error(z->errmsg, &z->failed, "input is not gzip data (%s)", msg);
	else
		gzs_error(z->errmsg, &z->failed,
				  "gzip data is corrupt: garbage after member %llu (%s)",
				  (unsigned long long) z->members, msg);
}

/* decode all of avail_in */
static bool
inflate_run(GzsInflate *z)
{
	do
	{
		int			ret;

		if (z->strm.avail_out == 0 && !inflate_flush_out(z))
			return false;

		if (z->need_reset)
		{
			/* a member has ended: anything after it starts another one */
			if (z->strm.avail_in == 0)
				break;
			if (inflateReset(&z->strm) != Z_OK)
			{
				gzs_error(z->errmsg, &z->failed,
						  "gzip decompression failed: cannot reset");
				return false;
			}
			z->need_reset = false;
		}
		if (z->strm.avail_in > 0)
			z->in_member = true;

		ret = inflate(&z->strm, Z_NO_FLUSH);
		if (ret == Z_STREAM_END)
		{
			z->members++;
			z->in_member = false;
			z->need_reset = true;
			continue;
		}
		if (ret == Z_BUF_ERROR)
		{
			/* no progress: needs more input, or (full buffer) more room */
			if (z->strm.avail_out > 0)
				break;
			continue;
		}
		if (ret != Z_OK)
		{
			inflate_error(z, ret);
			return false;
		}
	} while (z->strm.avail_in > 0 || z->strm.avail_out == 0);

	return true;
}

bool
gzs_inflate_write(GzsInflate *z, const void *data, size_t len)
{
	const unsigned char *p = data;

	if (z == NULL)
		return false;
	if (z->failed)
		return false;
	while (len > 0)
	{
		size_t		slice = len > GZS_MAX_SLICE ? GZS_MAX_SLICE : len;

		z->strm.next_in = p;
		z->strm.avail_in = (uInt) slice;
		z->bytes_in += slice;
		if (!inflate_run(z))
			return false;
		p += slice;
		len -= slice;
	}
	z->strm.next_in = NULL;
	z->strm.avail_in = 0;
	return inflate_flush_out(z);
}

bool
gzs_inflate_finish(GzsInflate *z)
{
	if (z == NULL)
		return false;
	if (z->failed)
		return false;
	if (!inflate_flush_out(z))
		return false;
	if (z->in_member)
	{
		gzs_error(z->errmsg, &z->failed, "gzip stream is truncated");
		return false;
	}
	if (z->members == 0)
	{
		gzs_error(z->errmsg, &z->failed, "gzip stream is empty");
		return false;
	}
	return true;
}

uint64_t
gzs_inflate_bytes_in(const GzsInflate *z)
{
	return z ? z->bytes_in : 0;
}

uint64_t
gzs_inflate_bytes_out(const GzsInflate *z)
{
	return z ? z->bytes_out : 0;
}

const char *
gzs_inflate_error(const GzsInflate *z)
{
	if (z == NULL)
		return "out of memory";
	return z->errmsg;
}

void
gzs_inflate_free(GzsInflate *z)
{
	if (z == NULL)
		return;
	inflateEnd(&z->strm);
	free(z->out);
	free(z);
}
