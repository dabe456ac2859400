/*
 * gzstream.h
 *		Streaming gzip (RFC 1952) compression and decompression with zlib,
 *		pushing output into a caller's sink.  Pure C: no PostgreSQL headers;
 *		errors come back as false with a message from gzs_*_error().
 *
 * The deflater writes one gzip member.  The inflater accepts one or more
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
extern bool gzs_deflate_write(GzsDeflate *z, const void *data, size_t len);

/* flushes the trailer; the stream may not be written afterwards */
extern bool gzs_deflate_finish(GzsDeflate *z);
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
