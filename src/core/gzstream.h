/*
 * gzstream.h
 *		Streaming gzip (RFC 1952) compression (libdeflate, gzdeflate.c) and
 *		decompression (zlib, gzstream.c), pushing output into a caller's
 *		sink.  Pure C: no PostgreSQL headers; errors come back as false with
 *		a message from gzs_*_error().
 *
 * The deflater writes a sequence of gzip members of 1 MiB of input each,
 * compressed by a thread of its own that runs with every signal blocked and
 * calls nothing but libdeflate; the sink is called only from the caller's
 * thread, in pieces of at most 64 KiB.  The inflater accepts one or more
 * concatenated members (what `cat a.gz b.gz` makes, and what gzip itself
 * accepts), checks each member's CRC-32 and length, and reports a truncated
 * stream at finish time.
 */
#ifndef AIBACKUP_GZSTREAM_H
#define AIBACKUP_GZSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* receives output; return 0 to go on, non-zero to fail the stream */
typedef int (*GzsSink) (void *arg, const void *data, size_t len);

typedef struct GzsDeflate GzsDeflate;

/* level 0..9; NULL on allocation failure */
extern GzsDeflate *gzs_deflate_new(int level, GzsSink sink, void *arg);

/* the same; background = false compresses in the caller's thread */
extern GzsDeflate *gzs_deflate_new_opt(int level, bool background,
									   GzsSink sink, void *arg);
extern bool gzs_deflate_write(GzsDeflate *z, const void *data, size_t len);

/* compresses and emits the rest; the stream may not be written afterwards */
extern bool gzs_deflate_finish(GzsDeflate *z);

/* whether the compressing thread was started (at the first full member) */
extern bool gzs_deflate_background(const GzsDeflate *z);
extern uint64_t gzs_deflate_bytes_in(const GzsDeflate *z);
extern uint64_t gzs_deflate_bytes_out(const GzsDeflate *z);
extern const char *gzs_deflate_error(const GzsDeflate *z);
extern void gzs_deflate_free(GzsDeflate *z);

typedef struct GzsInflate GzsInflate;

extern GzsInflate *gzs_inflate_new(GzsSink sink, void *arg);

/* false on corrupt data (bad header, CRC or length mismatch) or sink error */
extern bool gzs_inflate_write(GzsInflate *z, const void *data, size_t len);

/* false if the stream ended inside a member (truncated) or held nothing */
extern bool gzs_inflate_finish(GzsInflate *z);
extern uint64_t gzs_inflate_bytes_in(const GzsInflate *z);
extern uint64_t gzs_inflate_bytes_out(const GzsInflate *z);
extern const char *gzs_inflate_error(const GzsInflate *z);
extern void gzs_inflate_free(GzsInflate *z);

#endif							/* AIBACKUP_GZSTREAM_H */
