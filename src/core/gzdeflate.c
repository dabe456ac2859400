/*
 * gzdeflate.c
 *		Streaming gzip compression: a sequence of gzip members, each made
 *		whole by libdeflate, compressed by a background thread while the
 *		caller goes on writing.  See gzstream.h.
 *
 * libdeflate compresses whole buffers only, about 2.5 times as fast as
 * zlib at the same level and ratio.  The input is cut into members of
 * GZS_MEMBER bytes; RFC 1952 allows any number of members in a file, and
 * gzip, zcat, Python's gzip module and our own inflater read them as one
 * stream.  A member of 1 MiB costs under 0.5% of size against one zlib
 * stream (every member starts with an empty window).
 *
 * The pipeline.  GZS_SLOTS slots each hold a member's input and output.  The
 * caller fills one slot; a full slot is queued to the thread, which
 * compresses the queued slots in order; the caller hands the output of
 * compressed slots to the sink, in order, whenever it comes by (at every
 * queueing and at finish), and waits for the oldest only when every slot is
 * in use.  So copying, compressing and the sink (hashing, uploading) overlap,
 * and the sink is only ever called from the caller's thread.
 *
 * Counters tell the state: slots [emitted, compressed) are done, [compressed,
 * submitted) wait for the thread, slot submitted is being filled.  The
 * thread reads only `submitted` and the queued slots, under the mutex.
 *
 * The thread calls nothing but libdeflate and the pthread primitives, and
 * runs with every signal blocked, so signals keep reaching the caller's
 * thread (the process's PostgreSQL handlers).  It is started when a full
 * member is followed by more input, so small objects never start one, and
 * joined by
 * gzs_deflate_free() (which waits for at most one member's compression).
 * If it cannot be started, the caller compresses each member itself.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libdeflate.h>

#include "gzstream.h"
#include "thread.h"

#define GZS_MEMBER		(1024 * 1024)	/* input bytes per gzip member */
#define GZS_SLOTS		4
#define GZS_SINK_CHUNK	(64 * 1024) /* largest piece handed to the sink */
#define GZS_ERRLEN		256

typedef struct GzsSlot
{
	unsigned char *in;			/* GZS_MEMBER bytes */
	size_t		in_len;
	unsigned char *out;			/* out_cap bytes */
	size_t		out_len;		/* 0 if compression failed */
} GzsSlot;

struct GzsDeflate
{
	GzsSink		sink;
	void	   *arg;
	bool		background;		/* may start the thread */
	struct libdeflate_compressor *comp; /* used by one thread at a time */
	size_t		out_cap;
	GzsSlot		slots[GZS_SLOTS];

	/* the pipeline; compressed is written by the thread under mutex */
	uint64_t	submitted;		/* members queued (the next one fills) */
	uint64_t	compressed;		/* members compressed */
	uint64_t	emitted;		/* members handed to the sink */

	bool		thread_started;
	bool		quit;			/* tells the thread to end */
	pthread_t	thread;
	pthread_mutex_t mutex;
	pthread_cond_t work;		/* the thread waits here */
	pthread_cond_t done;		/* the caller waits here */

	uint64_t	bytes_in;
	uint64_t	bytes_out;		/* bytes handed to the sink */
	bool		finished;
	bool		failed;
	char		errmsg[GZS_ERRLEN];
};

static void gzd_error(GzsDeflate *z, const char *fmt,...)
			__attribute__((format(printf, 2, 3)));

/* record the first error of a stream; the stream stays failed */
static void
gzd_error(GzsDeflate *z, const char *fmt,...)
{
	va_list		ap;

	if (z->failed)
		return;
	va_start(ap, fmt);
	vsnprintf(z->errmsg, GZS_ERRLEN, fmt, ap);
	va_end(ap);
	z->failed = true;
}

static GzsSlot *
slot_of(GzsDeflate *z, uint64_t member)
{
	return &z->slots[member % GZS_SLOTS];
}

/* the buffers of a slot, allocated when first used; false if out of memory */
static bool
slot_alloc(GzsDeflate *z, GzsSlot *s)
{
	if (s->in == NULL)
		s->in = malloc(GZS_MEMBER);
	if (s->out == NULL)
		s->out = malloc(z->out_cap);
	if (s->in == NULL || s->out == NULL)
	{
		gzd_error(z, "out of memory");
		return false;
	}
	return true;
}

static void
compress_slot(GzsDeflate *z, GzsSlot *s)
{
	s->out_len = libdeflate_gzip_compress(z->comp, s->in, s->in_len,
										  s->out, z->out_cap);
}

static void *
compress_thread(void *arg)
{
	GzsDeflate *z = arg;

	pthread_mutex_lock(&z->mutex);
	for (;;)
	{
		GzsSlot    *s;

		while (!z->quit && z->compressed == z->submitted)
			pthread_cond_wait(&z->work, &z->mutex);
		if (z->quit)
			break;
		s = slot_of(z, z->compressed);
		pthread_mutex_unlock(&z->mutex);

		compress_slot(z, s);

		pthread_mutex_lock(&z->mutex);
		z->compressed++;
		pthread_cond_signal(&z->done);
	}
	pthread_mutex_unlock(&z->mutex);
	return NULL;
}

/* the thread and what it syncs with; false (all undone) leaves work here */
static bool
start_thread(GzsDeflate *z)
{
	bool		mutex = false,
				work = false,
				done = false;

	if ((mutex = pthread_mutex_init(&z->mutex, NULL) == 0) &&
		(work = pthread_cond_init(&z->work, NULL) == 0) &&
		(done = pthread_cond_init(&z->done, NULL) == 0) &&
		ab_thread_create(&z->thread, compress_thread, z))
		return true;
	if (done)
		pthread_cond_destroy(&z->done);
	if (work)
		pthread_cond_destroy(&z->work);
	if (mutex)
		pthread_mutex_destroy(&z->mutex);
	return false;
}

/* hand one compressed member to the sink, in pieces of at most 64 KiB */
static bool
emit_slot(GzsDeflate *z, GzsSlot *s)
{
	if (s->out_len == 0)
	{
		gzd_error(z, "gzip compression failed");
		return false;
	}
	for (size_t off = 0; off < s->out_len; off += GZS_SINK_CHUNK)
	{
		size_t		n = s->out_len - off;

		if (n > GZS_SINK_CHUNK)
			n = GZS_SINK_CHUNK;
		if (z->sink(z->arg, s->out + off, n) != 0)
		{
			gzd_error(z, "output callback failed");
			return false;
		}
		z->bytes_out += n;
	}
	s->in_len = 0;
	s->out_len = 0;
	return true;
}

/*
 * Emit the compressed members in order: all there are, and with wait, until
 * at most `keep` are still queued.
 */
static bool
emit_ready(GzsDeflate *z, bool wait, uint64_t keep)
{
	for (;;)
	{
		uint64_t	compressed;

		if (!z->thread_started)
			compressed = z->submitted;
		else
		{
			pthread_mutex_lock(&z->mutex);
			while (wait && z->submitted - z->compressed > keep)
				pthread_cond_wait(&z->done, &z->mutex);
			compressed = z->compressed;
			pthread_mutex_unlock(&z->mutex);
		}
		if (z->emitted == compressed)
			return true;
		while (z->emitted < compressed)
		{
			if (!emit_slot(z, slot_of(z, z->emitted)))
				return false;
			z->emitted++;
		}
		if (!wait)
			return true;
	}
}

/*
 * Queue the slot being filled, and make sure the next one is free.  The
 * thread is started for a full member that is not the last, so an object of
 * one member never starts one.
 */
static bool
submit(GzsDeflate *z, bool last)
{
	GzsSlot    *s = slot_of(z, z->submitted);

	if (z->background && !z->thread_started && !last)
	{
		z->compressed = z->submitted;
		z->thread_started = start_thread(z);
		z->background = z->thread_started;
	}
	if (!z->thread_started)
	{
		compress_slot(z, s);
		z->submitted++;
		return emit_ready(z, false, 0) &&
			(last || slot_alloc(z, slot_of(z, z->submitted)));
	}

	pthread_mutex_lock(&z->mutex);
	z->submitted++;
	pthread_cond_signal(&z->work);
	pthread_mutex_unlock(&z->mutex);

	/* the next slot to fill must have been emitted: wait if all are in use */
	if (!emit_ready(z, z->submitted - z->emitted == GZS_SLOTS,
					GZS_SLOTS - 1))
		return false;
	return last || slot_alloc(z, slot_of(z, z->submitted));
}

GzsDeflate *
gzs_deflate_new_opt(int level, bool background, GzsSink sink, void *arg)
{
	GzsDeflate *z;

	z = calloc(1, sizeof(GzsDeflate));
	if (z == NULL)
		return NULL;
	z->sink = sink;
	z->arg = arg;
	z->background = background;

	/*
	 * An invalid level or a missing sink is a caller bug, not an allocation
	 * failure: make a stream that fails on first use with a message.
	 */
	if (level < 0 || level > 9)
	{
		gzd_error(z, "invalid gzip compression level %d (must be 0..9)", level);
		return z;
	}
	if (sink == NULL)
	{
		gzd_error(z, "no output callback given");
		return z;
	}
	z->comp = libdeflate_alloc_compressor(level);
	if (z->comp == NULL)
	{
		free(z);
		return NULL;
	}
	z->out_cap = libdeflate_gzip_compress_bound(z->comp, GZS_MEMBER);
	z->slots[0].in = malloc(GZS_MEMBER);
	z->slots[0].out = malloc(z->out_cap);
	if (z->slots[0].in == NULL || z->slots[0].out == NULL)
	{
		gzs_deflate_free(z);
		return NULL;
	}
	return z;
}

GzsDeflate *
gzs_deflate_new(int level, GzsSink sink, void *arg)
{
	return gzs_deflate_new_opt(level, true, sink, arg);
}

bool
gzs_deflate_write(GzsDeflate *z, const void *data, size_t len)
{
	const unsigned char *p = data;

	if (z == NULL || z->failed)
		return false;
	if (z->finished)
	{
		gzd_error(z, "gzip stream written after it was finished");
		return false;
	}
	while (len > 0)
	{
		GzsSlot    *s = slot_of(z, z->submitted);
		size_t		n;

		/* a full member is queued once more input shows it is not the last */
		if (s->in_len == GZS_MEMBER)
		{
			if (!submit(z, false))
				return false;
			s = slot_of(z, z->submitted);
		}
		n = GZS_MEMBER - s->in_len;
		if (n > len)
			n = len;
		memcpy(s->in + s->in_len, p, n);
		s->in_len += n;
		z->bytes_in += n;
		p += n;
		len -= n;
	}
	return true;
}

bool
gzs_deflate_finish(GzsDeflate *z)
{
	if (z == NULL || z->failed)
		return false;
	if (z->finished)
		return true;

	/* the last member; an empty stream still gets one (of no bytes) */
	if ((slot_of(z, z->submitted)->in_len > 0 || z->submitted == 0) &&
		!submit(z, true))
		return false;
	if (!emit_ready(z, true, 0))
		return false;
	z->finished = true;
	return true;
}

bool
gzs_deflate_background(const GzsDeflate *z)
{
	return z != NULL && z->thread_started;
}

uint64_t
gzs_deflate_bytes_in(const GzsDeflate *z)
{
	return z ? z->bytes_in : 0;
}

uint64_t
gzs_deflate_bytes_out(const GzsDeflate *z)
{
	return z ? z->bytes_out : 0;
}

const char *
gzs_deflate_error(const GzsDeflate *z)
{
	if (z == NULL)
		return "out of memory";
	return z->errmsg;
}

void
gzs_deflate_free(GzsDeflate *z)
{
	if (z == NULL)
		return;
	if (z->thread_started)
	{
		pthread_mutex_lock(&z->mutex);
		z->quit = true;
		pthread_cond_signal(&z->work);
		pthread_mutex_unlock(&z->mutex);
		pthread_join(z->thread, NULL);
		pthread_cond_destroy(&z->work);
		pthread_cond_destroy(&z->done);
		pthread_mutex_destroy(&z->mutex);
	}
	for (int i = 0; i < GZS_SLOTS; i++)
	{
		free(z->slots[i].in);
		free(z->slots[i].out);
	}
	if (z->comp != NULL)
		libdeflate_free_compressor(z->comp);
	free(z);
}
