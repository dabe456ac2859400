/*
 * test_streams.c
 *		Unit tests for the gzip streams (gzstream.c), the JSON reader
 *		(json.c) and the manifest (manifest.c).  TAP output for prove.
 *
 * The gzip tests check interoperability with the real gzip(1) through temp
 * files made with mkstemp under /tmp.  AIBACKUP_TEST_BIG_MB sets the size of
 * the large round trip (default 50; use 1 or 2 under valgrind).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <zlib.h>

#include "core/bindex.h"
#include "core/buf.h"
#include "core/csv.h"
#include "core/gzstream.h"
#include "core/json.h"
#include "core/manifest.h"
#include "tap.h"

/* ----------------------------------------------------------------
 * Helpers
 * ----------------------------------------------------------------
 */

/* sink appending to an AbBuf */
static int
buf_sink(void *arg, const void *data, size_t len)
{
	return abuf_append((AbBuf *) arg, data, len) ? 0 : 1;
}

/* sink that records the largest chunk it was given */
typedef struct CountSink
{
	AbBuf		buf;
	size_t		calls;
	size_t		max_chunk;
	size_t		fail_after;		/* fail on call number fail_after+1; 0 never */
} CountSink;

static int
count_sink(void *arg, const void *data, size_t len)
{
	CountSink  *cs = arg;

	if (cs->fail_after > 0 && cs->calls >= cs->fail_after)
		return -1;
	cs->calls++;
	if (len > cs->max_chunk)
		cs->max_chunk = len;
	return abuf_append(&cs->buf, data, len) ? 0 : 1;
}

/* xorshift64*: deterministic pseudo-random numbers, state passed in */
static uint64_t
rnd(uint64_t *state)
{
	uint64_t	x = *state;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*state = x;
	return x * UINT64_C(2685821657736338717);
}

/*
 * len bytes alternating between pseudo-random runs and repetitive text
 * (CSV-like lines), so both stored-looking and well-compressible blocks
 * occur.  malloc'd.
 */
static unsigned char *
make_data(size_t len, uint64_t seed)
{
	unsigned char *d = malloc(len ? len : 1);
	uint64_t	st = seed | 1;
	size_t		i = 0;
	long		line = 0;

	if (d == NULL)
		return NULL;
	while (i < len)
	{
		size_t		run = 1000 + rnd(&st) % 60000;
		size_t		j;

		if (run > len - i)
			run = len - i;
		if (rnd(&st) % 3 == 0)
		{
			for (j = 0; j < run; j += 8)
			{
				uint64_t	r = rnd(&st);
				size_t		k;

				for (k = 0; k < 8 && j + k < run; k++)
					d[i + j + k] = (unsigned char) (r >> (8 * k));
			}
		}
		else
		{
			j = 0;
			while (j < run)
			{
				char		ln[96];
				int			n = snprintf(ln, sizeof(ln),
										 "%ld,customer %ld,\"Grüße, \"\"quoted\"\"\",%" PRIu64 ".%02d\n",
										 line, line % 977, rnd(&st) % 100000,
										 (int) (line % 100));
				size_t		take = (size_t) n < run - j ? (size_t) n : run - j;

				memcpy(d + i + j, ln, take);
				j += take;
				line++;
			}
		}
		i += run;
	}
	return d;
}

/* feed data to a writer in chunks cycling through sizes[] */
typedef bool (*WriteFn) (void *z, const void *data, size_t len);

static bool
deflate_write_fn(void *z, const void *data, size_t len)
{
	return gzs_deflate_write(z, data, len);
}

static bool
inflate_write_fn(void *z, const void *data, size_t len)
{
	return gzs_inflate_write(z, data, len);
}

static bool
feed(WriteFn fn, void *z, const unsigned char *data, size_t len,
	 const size_t *sizes, int nsizes)
{
	size_t		off = 0;
	int			k = 0;

	while (off < len)
	{
		size_t		n = sizes[k++ % nsizes];

		if (n > len - off)
			n = len - off;
		if (!fn(z, data + off, n))
			return false;
		off += n;
	}
	return true;
}

static const size_t whole[] = {SIZE_MAX};

/* gzip data into out; false (with a diagnostic) on failure */
static bool
gz(const void *data, size_t len, int level, const size_t *sizes, int nsizes,
   AbBuf *out)
{
	GzsDeflate *z = gzs_deflate_new(level, buf_sink, out);
	bool		okay;

	if (z == NULL)
		return false;
	okay = feed(deflate_write_fn, z, data, len, sizes, nsizes) &&
		gzs_deflate_finish(z);
	if (!okay)
		printf("# deflate: %s\n", gzs_deflate_error(z));
	gzs_deflate_free(z);
	return okay;
}

/* gunzip data into out; the error message (if any) into err */
static bool
gunz(const void *data, size_t len, const size_t *sizes, int nsizes,
	 AbBuf *out, char *err, size_t errlen)
{
	GzsInflate *z = gzs_inflate_new(buf_sink, out);
	bool		okay;

	if (err)
		err[0] = '\0';
	if (z == NULL)
		return false;
	okay = feed(inflate_write_fn, z, data, len, sizes, nsizes) &&
		gzs_inflate_finish(z);
	if (!okay && err)
		snprintf(err, errlen, "%s", gzs_inflate_error(z));
	gzs_inflate_free(z);
	return okay;
}

static bool
same(const AbBuf *b, const void *data, size_t len)
{
	return b->len == len && (len == 0 || memcmp(b->data, data, len) == 0);
}

/* a temp file holding data; the malloc'd path, or NULL */
static char *
temp_file(const void *data, size_t len)
{
	char	   *path = strdup("/tmp/aibackup_test_XXXXXX");
	int			fd;
	const char *p = data;

	if (path == NULL)
		return NULL;
	fd = mkstemp(path);
	if (fd < 0)
	{
		free(path);
		return NULL;
	}
	while (len > 0)
	{
		ssize_t		n = write(fd, p, len);

		if (n <= 0)
		{
			close(fd);
			unlink(path);
			free(path);
			return NULL;
		}
		p += n;
		len -= n;
	}
	close(fd);
	return path;
}

static bool
read_whole_file(const char *path, AbBuf *out)
{
	FILE	   *f = fopen(path, "rb");
	char		chunk[65536];
	size_t		n;

	if (f == NULL)
		return false;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		abuf_append(out, chunk, n);
	fclose(f);
	return !out->oom;
}

static bool
run(const char *cmd)
{
	int			rc = system(cmd);

	if (rc == -1 || !WIFEXITED(rc) || WEXITSTATUS(rc) != 0)
	{
		printf("# command failed (%d): %s\n", rc, cmd);
		return false;
	}
	return true;
}

/* run `gzip -dc` on gzdata and compare its output with want */
static bool
real_gunzip_matches(const AbBuf *gzdata, const void *want, size_t wantlen)
{
	char	   *in = temp_file(gzdata->data, gzdata->len);
	char	   *outp = temp_file("", 0);
	char		cmd[256];
	AbBuf		got;
	bool		result = false;

	abuf_init(&got);
	if (in && outp)
	{
		snprintf(cmd, sizeof(cmd), "gzip -dc '%s' > '%s'", in, outp);
		result = run(cmd) && read_whole_file(outp, &got) &&
			same(&got, want, wantlen);
	}
	if (in)
		unlink(in);
	if (outp)
		unlink(outp);
	free(in);
	free(outp);
	abuf_free(&got);
	return result;
}

/* compress data with the real `gzip -c` (plus options) into out */
static bool
real_gzip(const void *data, size_t len, const char *opts, AbBuf *out)
{
	char	   *in = temp_file(data, len);
	char	   *outp = temp_file("", 0);
	char		cmd[256];
	bool		result = false;

	if (in && outp)
	{
		snprintf(cmd, sizeof(cmd), "gzip -c %s '%s' > '%s'", opts, in, outp);
		result = run(cmd) && read_whole_file(outp, out);
	}
	if (in)
		unlink(in);
	if (outp)
		unlink(outp);
	free(in);
	free(outp);
	return result;
}

/* ----------------------------------------------------------------
 * gzip tests
 * ----------------------------------------------------------------
 */

static void
test_gzip_empty(void)
{
	AbBuf		c;
	AbBuf		d;
	char		err[256];

	abuf_init(&c);
	abuf_init(&d);
	ok(gz("", 0, 6, whole, 1, &c), "gzip: empty input compresses");
	ok(c.len >= 18 && (unsigned char) c.data[0] == 0x1f &&
	   (unsigned char) c.data[1] == 0x8b,
	   "gzip: empty input gives a gzip member (%zu bytes)", c.len);
	ok(gunz(c.data, c.len, whole, 1, &d, err, sizeof(err)) && d.len == 0,
	   "gzip: empty member inflates to nothing");
	ok(real_gunzip_matches(&c, "", 0), "gzip: real gzip -dc reads the empty member");
	abuf_free(&c);
	abuf_free(&d);
}

static void
test_gzip_small(void)
{
	const char *text = "id,name\n1,\"Grüße\"\n2,plain\n";
	AbBuf		c;
	AbBuf		d;
	AbBuf		g;
	char		err[256];

	abuf_init(&c);
	abuf_init(&d);
	abuf_init(&g);
	ok(gz(text, strlen(text), 6, whole, 1, &c), "gzip: small input compresses");
	ok(gunz(c.data, c.len, whole, 1, &d, err, sizeof(err)) &&
	   same(&d, text, strlen(text)), "gzip: small input round trip");
	ok(real_gunzip_matches(&c, text, strlen(text)),
	   "gzip: real gzip -dc reads small output");
	abuf_reset(&d);
	ok(real_gzip(text, strlen(text), "-n", &g) &&
	   gunz(g.data, g.len, whole, 1, &d, err, sizeof(err)) &&
	   same(&d, text, strlen(text)),
	   "gzip: inflates real gzip -c output (small)");

	/* gzip with a file name in the header (FNAME) */
	abuf_reset(&g);
	abuf_reset(&d);
	ok(real_gzip(text, strlen(text), "-N", &g) &&
	   gunz(g.data, g.len, whole, 1, &d, err, sizeof(err)) &&
	   same(&d, text, strlen(text)),
	   "gzip: inflates real gzip output with a file name in the header");
	abuf_free(&c);
	abuf_free(&d);
	abuf_free(&g);
}

static void
test_gzip_big(size_t len)
{
	static const size_t odd[] = {1, 7, 65536 + 3, 4096, 1, 65536 + 3};
	unsigned char *data = make_data(len, 42);
	GzsDeflate *dz;
	GzsInflate *iz;
	CountSink	cs;
	CountSink	ds;
	AbBuf		g;
	bool		okay;

	memset(&cs, 0, sizeof(cs));
	memset(&ds, 0, sizeof(ds));
	abuf_init(&cs.buf);
	abuf_init(&ds.buf);
	abuf_init(&g);
	if (data == NULL)
	{
		ok(false, "gzip: out of memory making %zu bytes of test data", len);
		return;
	}

	dz = gzs_deflate_new(6, count_sink, &cs);
	okay = dz && feed(deflate_write_fn, dz, data, len, odd, 6) &&
		gzs_deflate_finish(dz);
	ok(okay, "gzip: %zu bytes fed in 1/7/64KiB+3 chunks compress", len);
	ok(gzs_deflate_bytes_in(dz) == len, "gzip: deflate bytes_in = %zu", len);
	ok(gzs_deflate_bytes_out(dz) == cs.buf.len,
	   "gzip: deflate bytes_out = compressed size (%zu)", cs.buf.len);
	ok(cs.buf.len < len, "gzip: the data got smaller (%zu -> %zu)",
	   len, cs.buf.len);
	ok(cs.max_chunk <= 65536, "gzip: deflate sink chunks at most 64 KiB");
	gzs_deflate_free(dz);

	iz = gzs_inflate_new(count_sink, &ds);
	okay = iz && feed(inflate_write_fn, iz, (unsigned char *) cs.buf.data,
					  cs.buf.len, odd, 6) &&
		gzs_inflate_finish(iz);
	ok(okay && same(&ds.buf, data, len),
	   "gzip: big round trip in odd-sized chunks");
	ok(gzs_inflate_bytes_in(iz) == cs.buf.len,
	   "gzip: inflate bytes_in = compressed size");
	ok(gzs_inflate_bytes_out(iz) == len, "gzip: inflate bytes_out = %zu", len);
	ok(ds.max_chunk <= 65536, "gzip: inflate sink chunks at most 64 KiB");
	gzs_inflate_free(iz);

	ok(real_gunzip_matches(&cs.buf, data, len),
	   "gzip: real gzip -dc reads the big output");

	abuf_reset(&ds.buf);
	ok(real_gzip(data, len, "-1", &g) &&
	   gunz(g.data, g.len, odd, 6, &ds.buf, NULL, 0) &&
	   same(&ds.buf, data, len),
	   "gzip: inflates real gzip -c output of the big data");

	free(data);
	abuf_free(&cs.buf);
	abuf_free(&ds.buf);
	abuf_free(&g);
}

static void
test_gzip_bytewise(void)
{
	static const size_t one[] = {1};
	size_t		len = 150 * 1024;
	unsigned char *data = make_data(len, 7);
	AbBuf		c;
	AbBuf		d;

	abuf_init(&c);
	abuf_init(&d);
	ok(data && gz(data, len, 6, one, 1, &c) &&
	   gunz(c.data, c.len, one, 1, &d, NULL, 0) && same(&d, data, len),
	   "gzip: round trip feeding one byte at a time, both ways");
	free(data);
	abuf_free(&c);
	abuf_free(&d);
}

static void
test_gzip_concat(void)
{
	static const size_t one[] = {1};
	static const size_t three[] = {3, 5};
	const char *a = "first member\n";
	const char *b = "second member, a little longer\n";
	AbBuf		ca;
	AbBuf		cb;
	AbBuf		cc;
	AbBuf		all;
	AbBuf		d;
	char		err[256];

	abuf_init(&ca);
	abuf_init(&cb);
	abuf_init(&cc);
	abuf_init(&all);
	abuf_init(&d);
	gz(a, strlen(a), 6, whole, 1, &ca);
	gz(b, strlen(b), 9, whole, 1, &cb);
	gz("", 0, 6, whole, 1, &cc);

	abuf_append(&all, ca.data, ca.len);
	abuf_append(&all, cb.data, cb.len);
	ok(gunz(all.data, all.len, whole, 1, &d, err, sizeof(err)) &&
	   d.len == strlen(a) + strlen(b) &&
	   memcmp(d.data, a, strlen(a)) == 0 &&
	   memcmp(d.data + strlen(a), b, strlen(b)) == 0,
	   "gzip: two concatenated members inflate to the concatenation");

	abuf_reset(&d);
	ok(gunz(all.data, all.len, one, 1, &d, err, sizeof(err)) &&
	   d.len == strlen(a) + strlen(b),
	   "gzip: concatenated members fed byte by byte");

	/* member boundary inside a write, and an empty member in the middle */
	abuf_reset(&all);
	abuf_append(&all, ca.data, ca.len);
	abuf_append(&all, cc.data, cc.len);
	abuf_append(&all, cb.data, cb.len);
	abuf_reset(&d);
	ok(gunz(all.data, all.len, three, 2, &d, err, sizeof(err)) &&
	   d.len == strlen(a) + strlen(b),
	   "gzip: three members, one empty, boundaries inside writes");

	/* concatenation cut inside the second member */
	abuf_reset(&d);
	ok(!gunz(all.data, all.len - 3, whole, 1, &d, err, sizeof(err)) &&
	   strstr(err, "truncated") != NULL,
	   "gzip: second member truncated -> error (%s)", err);

	/* trailing garbage after a valid member */
	abuf_reset(&all);
	abuf_append(&all, ca.data, ca.len);
	abuf_appends(&all, "garbage!");
	abuf_reset(&d);
	ok(!gunz(all.data, all.len, whole, 1, &d, err, sizeof(err)) && err[0],
	   "gzip: garbage after a member -> error (%s)", err);

	abuf_free(&ca);
	abuf_free(&cb);
	abuf_free(&cc);
	abuf_free(&all);
	abuf_free(&d);
}

static void
test_gzip_corrupt(void)
{
	size_t		len = 20000;
	unsigned char *data = make_data(len, 99);
	AbBuf		c;
	AbBuf		d;
	AbBuf		bad;
	char		err[256];
	size_t		pos;
	size_t		tried = 0;
	size_t		rejected = 0;
	size_t		harmless = 0;
	size_t		wrong = 0;
	int			level;

	abuf_init(&c);
	abuf_init(&d);
	abuf_init(&bad);

	/*
	 * Every byte of the deflate body flipped, at levels 0, 1 and 9.  The
	 * header's MTIME/XFL/OS bytes are not protected, so they are left out. A
	 * few bits of a deflate stream are don't-cares (the padding before a
	 * stored block, the unused bits of the last byte): a flip there leaves
	 * the data intact and is rightly accepted.  What must never happen is
	 * success with different data.
	 */
	for (level = 0; level <= 9; level += (level == 1 ? 8 : 1))
	{
		size_t		dlen = level == 0 ? 3000 : len;

		abuf_reset(&c);
		gz(data, dlen, level, whole, 1, &c);
		for (pos = 10; pos + 8 < c.len; pos++)
		{
			abuf_reset(&bad);
			abuf_append(&bad, c.data, c.len);
			bad.data[pos] ^= (pos & 1) ? 0x01 : 0xA5;
			abuf_reset(&d);
			tried++;
			if (!gunz(bad.data, bad.len, whole, 1, &d, err, sizeof(err)))
				rejected += err[0] != '\0';
			else if (same(&d, data, dlen))
				harmless++;
			else
			{
				printf("# level %d, byte %zu of %zu: wrong data accepted\n",
					   level, pos, c.len);
				wrong++;
			}
		}
	}
	ok(tried > 1000 && wrong == 0 && rejected + harmless == tried &&
	   harmless < tried / 100,
	   "gzip: flipped body bytes: %zu tried, %zu rejected, %zu harmless, %zu wrong",
	   tried, rejected, harmless, wrong);

	abuf_reset(&c);
	gz(data, len, 6, whole, 1, &c);

	abuf_reset(&bad);
	abuf_append(&bad, c.data, c.len);
	bad.data[c.len / 2] ^= 0x10;
	abuf_reset(&d);
	ok(!gunz(bad.data, bad.len, whole, 1, &d, err, sizeof(err)) &&
	   strstr(err, "gzip") != NULL,
	   "gzip: flipped byte mid-body -> error (%s)", err);

	abuf_reset(&bad);
	abuf_append(&bad, c.data, c.len);
	bad.data[c.len - 6] ^= 0x01;	/* in the CRC-32 */
	abuf_reset(&d);
	ok(!gunz(bad.data, bad.len, whole, 1, &d, err, sizeof(err)) &&
	   strstr(err, "incorrect data check") != NULL,
	   "gzip: flipped CRC byte -> data check error (%s)", err);
	is_str(err, "gzip data is corrupt: incorrect data check",
		   "gzip: CRC error message");

	abuf_reset(&bad);
	abuf_append(&bad, c.data, c.len);
	bad.data[c.len - 2] ^= 0x01;	/* in ISIZE */
	abuf_reset(&d);
	ok(!gunz(bad.data, bad.len, whole, 1, &d, err, sizeof(err)) &&
	   strstr(err, "incorrect length check") != NULL,
	   "gzip: flipped length byte -> length check error (%s)", err);

	abuf_reset(&bad);
	abuf_append(&bad, c.data, c.len);
	bad.data[2] = 7;			/* compression method */
	abuf_reset(&d);
	ok(!gunz(bad.data, bad.len, whole, 1, &d, err, sizeof(err)) && err[0],
	   "gzip: unknown compression method -> error (%s)", err);

	free(data);
	abuf_free(&c);
	abuf_free(&d);
	abuf_free(&bad);
}

static void
test_gzip_truncated(void)
{
	const char *text = "truncate me anywhere, truncate me anywhere, "
	"truncate me anywhere -- and some less repetitive 0123456789 text\n";
	AbBuf		c;
	AbBuf		d;
	char		err[256];
	size_t		cut;
	size_t		bad = 0;
	GzsInflate *z;

	abuf_init(&c);
	abuf_init(&d);
	gz(text, strlen(text), 6, whole, 1, &c);

	for (cut = 1; cut < c.len; cut++)
	{
		abuf_reset(&d);
		if (gunz(c.data, cut, whole, 1, &d, err, sizeof(err)) ||
			strcmp(err, "gzip stream is truncated") != 0)
		{
			printf("# cut at %zu: '%s'\n", cut, err);
			bad++;
		}
	}
	ok(bad == 0, "gzip: cut at every one of %zu places -> \"truncated\"",
	   c.len - 1);

	abuf_reset(&d);
	ok(!gunz(c.data, 5, whole, 1, &d, err, sizeof(err)) &&
	   strcmp(err, "gzip stream is truncated") == 0,
	   "gzip: cut mid-header -> finish false");
	abuf_reset(&d);
	ok(!gunz(c.data, c.len / 2 + 5, whole, 1, &d, err, sizeof(err)) &&
	   strcmp(err, "gzip stream is truncated") == 0,
	   "gzip: cut mid-body -> finish false");
	abuf_reset(&d);
	ok(!gunz(c.data, c.len - 3, whole, 1, &d, err, sizeof(err)) &&
	   strcmp(err, "gzip stream is truncated") == 0,
	   "gzip: cut mid-trailer -> finish false");

	/* write itself succeeds; it is finish that notices */
	abuf_reset(&d);
	z = gzs_inflate_new(buf_sink, &d);
	ok(gzs_inflate_write(z, c.data, c.len - 1) && !gzs_inflate_finish(z),
	   "gzip: truncation shows at finish, not write");
	gzs_inflate_free(z);

	abuf_reset(&d);
	ok(!gunz("", 0, whole, 1, &d, err, sizeof(err)) && err[0],
	   "gzip: no input at all -> finish false (%s)", err);

	abuf_free(&c);
	abuf_free(&d);
}

static void
test_gzip_not_gzip(void)
{
	const char *text = "id,name\n1,this is plain CSV, not gzip\n";
	unsigned char zl[128];
	uLongf		zlen = sizeof(zl);
	AbBuf		d;
	char		err[256];

	abuf_init(&d);
	ok(!gunz(text, strlen(text), whole, 1, &d, err, sizeof(err)) &&
	   strstr(err, "not gzip") != NULL,
	   "gzip: plain text -> error (%s)", err);

	/* zlib format (RFC 1950) is not gzip either */
	compress2(zl, &zlen, (const Bytef *) text, strlen(text), 6);
	abuf_reset(&d);
	ok(!gunz(zl, zlen, whole, 1, &d, err, sizeof(err)) && err[0],
	   "gzip: zlib-wrapped data -> error (%s)", err);

	abuf_reset(&d);
	ok(!gunz("\x1f", 1, whole, 1, &d, err, sizeof(err)) && err[0],
	   "gzip: a lone magic byte -> error (%s)", err);
	abuf_free(&d);
}

static void
test_gzip_levels(void)
{
	size_t		len = 300 * 1000;
	unsigned char *data = make_data(len, 5);
	AbBuf		c0;
	AbBuf		c1;
	AbBuf		c9;
	AbBuf		d;
	GzsDeflate *z;
	char		err[256];

	abuf_init(&c0);
	abuf_init(&c1);
	abuf_init(&c9);
	abuf_init(&d);
	ok(gz(data, len, 0, whole, 1, &c0) && c0.len > len,
	   "gzip: level 0 stores (%zu -> %zu)", len, c0.len);
	ok(gunz(c0.data, c0.len, whole, 1, &d, err, sizeof(err)) &&
	   same(&d, data, len), "gzip: level 0 round trip");
	ok(real_gunzip_matches(&c0, data, len), "gzip: real gzip reads level 0");
	ok(gz(data, len, 1, whole, 1, &c1) && gz(data, len, 9, whole, 1, &c9) &&
	   c9.len <= c1.len && c1.len < len,
	   "gzip: level 9 (%zu) <= level 1 (%zu)", c9.len, c1.len);
	abuf_reset(&d);
	ok(gunz(c9.data, c9.len, whole, 1, &d, err, sizeof(err)) &&
	   same(&d, data, len), "gzip: level 9 round trip");
	ok(real_gunzip_matches(&c9, data, len), "gzip: real gzip reads level 9");

	z = gzs_deflate_new(10, buf_sink, &d);
	ok(z != NULL && !gzs_deflate_write(z, "x", 1) &&
	   strstr(gzs_deflate_error(z), "level") != NULL,
	   "gzip: level 10 -> error on use (%s)", z ? gzs_deflate_error(z) : "");
	gzs_deflate_free(z);

	free(data);
	abuf_free(&c0);
	abuf_free(&c1);
	abuf_free(&c9);
	abuf_free(&d);
}

static void
test_gzip_sink_failure(void)
{
	size_t		len = 1000 * 1000;
	unsigned char *data = make_data(len, 11);
	CountSink	cs;
	GzsDeflate *dz;
	GzsInflate *iz;
	AbBuf		c;
	bool		okay;

	memset(&cs, 0, sizeof(cs));
	abuf_init(&cs.buf);
	abuf_init(&c);

	cs.fail_after = 2;
	dz = gzs_deflate_new(6, count_sink, &cs);
	okay = gzs_deflate_write(dz, data, len) && gzs_deflate_finish(dz);
	ok(!okay, "gzip: deflate fails when the sink fails");
	is_str(gzs_deflate_error(dz), "output callback failed",
		   "gzip: deflate sink error message");
	ok(!gzs_deflate_write(dz, "x", 1) && !gzs_deflate_finish(dz),
	   "gzip: deflate stays failed");
	gzs_deflate_free(dz);

	/* failure at finish (a small input's output all comes then) */
	abuf_free(&cs.buf);
	memset(&cs, 0, sizeof(cs));
	abuf_init(&cs.buf);
	cs.fail_after = 1;
	cs.calls = 1;				/* so the first call fails */
	dz = gzs_deflate_new(6, count_sink, &cs);
	okay = gzs_deflate_write(dz, "small", 5);
	ok(okay && !gzs_deflate_finish(dz) &&
	   strcmp(gzs_deflate_error(dz), "output callback failed") == 0,
	   "gzip: sink failure at finish propagates");
	gzs_deflate_free(dz);
	abuf_free(&cs.buf);

	gz(data, len, 6, whole, 1, &c);
	memset(&cs, 0, sizeof(cs));
	abuf_init(&cs.buf);
	cs.fail_after = 3;
	iz = gzs_inflate_new(count_sink, &cs);
	okay = gzs_inflate_write(iz, c.data, c.len) && gzs_inflate_finish(iz);
	ok(!okay, "gzip: inflate fails when the sink fails");
	is_str(gzs_inflate_error(iz), "output callback failed",
		   "gzip: inflate sink error message");
	ok(!gzs_inflate_write(iz, c.data, 1) && !gzs_inflate_finish(iz),
	   "gzip: inflate stays failed");
	gzs_inflate_free(iz);

	/* write after finish */
	abuf_reset(&cs.buf);
	cs.fail_after = 0;
	dz = gzs_deflate_new(6, count_sink, &cs);
	ok(gzs_deflate_finish(dz) && gzs_deflate_finish(dz) &&
	   !gzs_deflate_write(dz, "x", 1),
	   "gzip: finish twice is fine, write after finish fails (%s)",
	   gzs_deflate_error(dz));
	gzs_deflate_free(dz);

	free(data);
	abuf_free(&cs.buf);
	abuf_free(&c);
}

/* CSV-like text: what the deflater really compresses */
static unsigned char *
make_csv(size_t len, uint64_t seed)
{
	static const char *const words[] = {"alpha", "beta", "gamma", "order",
	"invoice", "shipped", "pending", "Grüße", "refund", "customer"};
	unsigned char *d = malloc(len ? len : 1);
	uint64_t	st = seed | 1;
	size_t		i = 0;
	long		row = 0;

	if (d == NULL)
		return NULL;
	while (i < len)
	{
		char		line[256];
		int			n;

		n = snprintf(line, sizeof(line),
					 "%ld,\"%s %s %s\",%lu.%02lu,2024-%02lu-%02lu 12:%02lu:00+00,{\"\"qty\"\": %lu}\n",
					 row++, words[rnd(&st) % 10], words[rnd(&st) % 10],
					 words[rnd(&st) % 10], (unsigned long) (rnd(&st) % 100000),
					 (unsigned long) (rnd(&st) % 100),
					 (unsigned long) (1 + rnd(&st) % 12),
					 (unsigned long) (1 + rnd(&st) % 28),
					 (unsigned long) (rnd(&st) % 60),
					 (unsigned long) (rnd(&st) % 20));
		if ((size_t) n > len - i)
			n = (int) (len - i);
		memcpy(d + i, line, n);
		i += n;
	}
	return d;
}

/* count the gzip members of a stream (the inflater checks them) */
static int
count_members(const AbBuf *c)
{
	int			members = 0;

	/* each member's header: 1f 8b 08 and libdeflate's fixed flags/mtime */
	for (size_t i = 0; i + 10 <= c->len; i++)
		if ((unsigned char) c->data[i] == 0x1f &&
			(unsigned char) c->data[i + 1] == 0x8b &&
			c->data[i + 2] == 8 && c->data[i + 3] == 0 &&
			memcmp(c->data + i + 4, "\0\0\0\0", 4) == 0)
			members++;
	return members;
}

/*
 * The member stream: input above one member is cut into 1 MiB members, the
 * background thread gives the very bytes the caller's thread does, and
 * every reader takes the result as one stream.
 */
static void
test_gzip_members(void)
{
	size_t		len = 9 * 1024 * 1024 + 12345;
	unsigned char *data = make_csv(len, 7);
	static const size_t odd[] = {1, 70000, 3, 1024 * 1024, 65536 + 1, 999999};
	GzsDeflate *bz;
	GzsDeflate *sz;
	AbBuf		bg;
	AbBuf		fg;
	AbBuf		ref;
	AbBuf		d;
	char		err[256];
	bool		okay;

	abuf_init(&bg);
	abuf_init(&fg);
	abuf_init(&ref);
	abuf_init(&d);

	bz = gzs_deflate_new(6, buf_sink, &bg);
	okay = bz && feed(deflate_write_fn, bz, data, len, odd, 6) &&
		gzs_deflate_finish(bz);
	ok(okay, "gzip members: %zu bytes in odd chunks compress", len);
	ok(gzs_deflate_background(bz), "gzip members: the thread compressed them");
	gzs_deflate_free(bz);

	sz = gzs_deflate_new_opt(6, false, buf_sink, &fg);
	okay = sz && gzs_deflate_write(sz, data, len) && gzs_deflate_finish(sz);
	ok(okay && !gzs_deflate_background(sz),
	   "gzip members: the same without a thread");
	gzs_deflate_free(sz);
	ok(bg.len == fg.len && memcmp(bg.data, fg.data, bg.len) == 0,
	   "gzip members: thread and caller make the same bytes (%zu)", bg.len);
	ok(count_members(&bg) == 10, "gzip members: one member per MiB (%d)",
	   count_members(&bg));

	ok(gunz(bg.data, bg.len, whole, 1, &d, err, sizeof(err)) &&
	   same(&d, data, len), "gzip members: our inflater reads them (%s)", err);
	ok(real_gunzip_matches(&bg, data, len), "gzip members: real gzip reads them");

	/* the ratio against `gzip -6` over one stream of the same text */
	ok(real_gzip(data, len, "-6", &ref) && ref.len > 0 &&
	   bg.len * 100 <= ref.len * 105,
	   "gzip members: %zu bytes, within 5%% of gzip -6's %zu", bg.len, ref.len);

	/* exactly one member's worth: one member, no empty one after it */
	abuf_reset(&bg);
	bz = gzs_deflate_new(6, buf_sink, &bg);
	okay = bz && gzs_deflate_write(bz, data, 1024 * 1024) &&
		gzs_deflate_finish(bz) && !gzs_deflate_background(bz);
	gzs_deflate_free(bz);
	ok(okay && count_members(&bg) == 1 &&
	   real_gunzip_matches(&bg, data, 1024 * 1024),
	   "gzip members: exactly 1 MiB makes one member, without a thread");
	abuf_reset(&bg);
	ok(gz(data, len, 0, odd, 6, &bg) && real_gunzip_matches(&bg, data, len),
	   "gzip members: level 0 members read back");

	free(data);
	abuf_free(&bg);
	abuf_free(&fg);
	abuf_free(&ref);
	abuf_free(&d);
}

/* the background thread meets a failing sink, and a stream freed mid-way */
static void
test_gzip_thread_failure(void)
{
	size_t		len = 12 * 1024 * 1024;
	unsigned char *data = make_csv(len, 9);
	CountSink	cs;
	GzsDeflate *dz;
	bool		okay;

	for (int fail_after = 1; fail_after <= 40; fail_after += 13)
	{
		memset(&cs, 0, sizeof(cs));
		abuf_init(&cs.buf);
		cs.fail_after = fail_after;
		dz = gzs_deflate_new(6, count_sink, &cs);
		okay = gzs_deflate_write(dz, data, len) && gzs_deflate_finish(dz);
		ok(!okay && strcmp(gzs_deflate_error(dz), "output callback failed") == 0,
		   "gzip thread: a sink failing after %d calls fails the stream", fail_after);
		ok(!gzs_deflate_write(dz, "x", 1), "gzip thread: and it stays failed");
		gzs_deflate_free(dz);
		abuf_free(&cs.buf);
	}

	/* freed with members queued and one being compressed: no hang, no leak */
	memset(&cs, 0, sizeof(cs));
	abuf_init(&cs.buf);
	dz = gzs_deflate_new(9, count_sink, &cs);
	okay = gzs_deflate_write(dz, data, 4 * 1024 * 1024 + 1);
	ok(okay && gzs_deflate_background(dz),
	   "gzip thread: 4 MiB queued before the free");
	gzs_deflate_free(dz);
	ok(true, "gzip thread: freeing an unfinished stream returns");
	abuf_free(&cs.buf);
	free(data);
}

/* random damage to gzip streams: must fail cleanly or round trip, never crash */
static void
test_gzip_fuzz(int rounds)
{
	size_t		len = 5000;
	unsigned char *data = make_data(len, 3);
	AbBuf		c;
	AbBuf		bad;
	AbBuf		d;
	uint64_t	st = 12345;
	int			i;
	int			failures = 0;
	int			wrong_ok = 0;

	abuf_init(&c);
	abuf_init(&bad);
	abuf_init(&d);
	gz(data, len, 6, whole, 1, &c);
	for (i = 0; i < rounds; i++)
	{
		int			nflips = 1 + rnd(&st) % 4;
		int			k;
		size_t		sizes[1];

		abuf_reset(&bad);
		abuf_append(&bad, c.data, c.len);
		for (k = 0; k < nflips; k++)
			bad.data[10 + rnd(&st) % (c.len - 10)] ^= (char) (1 + rnd(&st) % 255);
		if (rnd(&st) % 4 == 0)
			bad.len = rnd(&st) % bad.len;
		sizes[0] = 1 + rnd(&st) % 700;
		abuf_reset(&d);
		if (!gunz(bad.data, bad.len, sizes, 1, &d, NULL, 0))
			failures++;
		else if (!same(&d, data, len))
			wrong_ok++;
	}
	ok(failures > rounds / 2 && wrong_ok == 0,
	   "gzip: %d damaged streams: %d rejected, %d accepted with wrong data",
	   rounds, failures, wrong_ok);
	free(data);
	abuf_free(&c);
	abuf_free(&bad);
	abuf_free(&d);
}

/* ----------------------------------------------------------------
 * JSON reader tests
 * ----------------------------------------------------------------
 */

static bool
parses(const char *text)
{
	char		err[256];
	JsonValue  *v = json_parse(text, strlen(text), err, sizeof(err));

	json_free(v);
	return v != NULL;
}

/* parse fails, and the message contains want */
static bool
rejects(const char *text, const char *want)
{
	char		err[256];
	JsonValue  *v = json_parse(text, strlen(text), err, sizeof(err));

	if (v != NULL)
	{
		json_free(v);
		printf("# accepted: %s\n", text);
		return false;
	}
	if (want && strstr(err, want) == NULL)
	{
		printf("# message '%s' lacks '%s'\n", err, want);
		return false;
	}
	return true;
}

static void
test_json(void)
{
	char		err[256];
	JsonValue  *v;
	const JsonValue *x;
	char		deep[200];
	int			i;
	AbBuf		b;
	const char *txt;

	txt = " {\"a\": [1, -2.5e3, true, false, null, \"s\"], \"b\": {}} ";
	v = json_parse(txt, strlen(txt), err, sizeof(err));
	ok(v && v->type == JV_OBJECT && v->count == 2, "json: object parses");
	if (v == NULL)
		printf("# %s\n", err);
	x = json_get(v, "a");
	ok(x && x->type == JV_ARRAY && x->count == 6 &&
	   x->items[0]->is_int && x->items[0]->integer == 1 &&
	   !x->items[1]->is_int && x->items[1]->number == -2500.0 &&
	   x->items[2]->type == JV_BOOL && x->items[2]->boolean &&
	   x->items[3]->type == JV_BOOL && !x->items[3]->boolean &&
	   x->items[4]->type == JV_NULL &&
	   x->items[5]->type == JV_STRING && strcmp(x->items[5]->string, "s") == 0,
	   "json: array members have the right types and values");
	ok(json_get(v, "b") && json_get(v, "b")->type == JV_OBJECT &&
	   json_get(v, "c") == NULL && json_get(v, "A") == NULL &&
	   json_get(x, "a") == NULL,
	   "json: json_get finds exact keys only, NULL on non-objects");
	json_free(v);

	txt = "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u0041\\u00e9\\u20AC\\ud83d\\ude00\"";
	v = json_parse(txt, strlen(txt), err, sizeof(err));
	ok(v && v->type == JV_STRING &&
	   strcmp(v->string, "\"\\/\b\f\n\r\tA\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80") == 0,
	   "json: all escapes incl. a surrogate pair decode");
	if (v == NULL)
		printf("# %s\n", err);
	json_free(v);

	v = json_parse("\"a\\u0000b\"", 10, err, sizeof(err));
	ok(v && v->len == 3 && v->string[1] == '\0' && v->string[2] == 'b',
	   "json: \\u0000 kept, len counts it");
	json_free(v);

	txt = "[9223372036854775807, -9223372036854775808, 9223372036854775808, -0, 1e400]";
	v = json_parse(txt, strlen(txt), err, sizeof(err));
	ok(v && v->count == 5 &&
	   v->items[0]->is_int && v->items[0]->integer == INT64_MAX &&
	   v->items[1]->is_int && v->items[1]->integer == INT64_MIN &&
	   !v->items[2]->is_int && v->items[2]->number > 9.2e18 &&
	   v->items[3]->is_int && v->items[3]->integer == 0 &&
	   !v->items[4]->is_int,
	   "json: int64 limits exact, beyond them a double");
	if (v == NULL)
		printf("# %s\n", err);
	json_free(v);

	/* not NUL-terminated: only len bytes count */
	v = json_parse("[1,2]xyz", 5, err, sizeof(err));
	ok(v && v->count == 2, "json: parses exactly len bytes");
	json_free(v);

	ok(parses("\"Gr\xC3\xBC\xC3\x9F" "e \xF0\x9F\x98\x80\""),
	   "json: raw UTF-8 accepted");
	ok(rejects("", "end of input"), "json: empty input rejected");
	ok(rejects("   ", "end of input"), "json: whitespace only rejected");
	ok(rejects("{\"a\": 1} x", "after the JSON value"),
	   "json: trailing garbage rejected");
	ok(rejects("{\"a\": 1,}", NULL), "json: trailing comma in object rejected");
	ok(rejects("[1,]", NULL), "json: trailing comma in array rejected");
	ok(rejects("{'a': 1}", NULL), "json: single quotes rejected");
	ok(rejects("{a: 1}", NULL), "json: bare key rejected");
	ok(rejects("[01]", "leading zero"), "json: leading zero rejected");
	ok(rejects("[1.]", NULL) && rejects("[.5]", NULL) && rejects("[1e]", NULL) &&
	   rejects("[-]", NULL) && rejects("[+1]", NULL) && rejects("[NaN]", NULL) &&
	   rejects("[Infinity]", NULL),
	   "json: malformed numbers rejected");
	ok(rejects("[tru]", NULL) && rejects("[nul", NULL) && rejects("[True]", NULL),
	   "json: malformed literals rejected");
	ok(rejects("\"a\tb\"", "control character"),
	   "json: raw control character in a string rejected");
	ok(rejects("\"\\x41\"", "escape"), "json: unknown escape rejected");
	ok(rejects("\"\\u12\"", "\\u") && rejects("\"\\u12G4\"", "\\u"),
	   "json: short or bad \\u escape rejected");
	ok(rejects("\"\\ud83d\"", "surrogate") &&
	   rejects("\"\\ude00\"", "surrogate") &&
	   rejects("\"\\ud83d\\u0041\"", "surrogate"),
	   "json: lone surrogates rejected");
	ok(rejects("\"\xC3\"", "UTF-8") && rejects("\"\xC0\xAF\"", "UTF-8") &&
	   rejects("\"\xED\xA0\x80\"", "UTF-8") && rejects("\"\xF4\x90\x80\x80\"", "UTF-8") &&
	   rejects("\"\xFF\"", "UTF-8"),
	   "json: invalid, overlong and surrogate UTF-8 rejected");
	ok(rejects("\xEF\xBB\xBF{}", NULL), "json: byte-order mark rejected");
	ok(rejects("{\"a\": 1, \"b\": 2, \"a\": 3}", "duplicate key"),
	   "json: duplicate key rejected");
	ok(rejects("\"unterminated", "unterminated"), "json: unterminated string");
	ok(rejects("[1, 2", NULL) && rejects("{\"a\"", NULL) && rejects("{\"a\":", NULL),
	   "json: unterminated containers rejected");
	v = json_parse("{\"a\": 1}\0", 9, err, sizeof(err));
	ok(v == NULL && strstr(err, "after the JSON value") != NULL,
	   "json: NUL after the value is garbage (%s)", err);
	json_free(v);
	ok(rejects("[1,\n  2,\n  ?]", "line 3, column 3"),
	   "json: error position is line and column");

	for (i = 0; i < JSON_MAX_DEPTH; i++)
		deep[i] = '[';
	for (i = 0; i < JSON_MAX_DEPTH; i++)
		deep[JSON_MAX_DEPTH + i] = ']';
	deep[2 * JSON_MAX_DEPTH] = '\0';
	ok(parses(deep), "json: nesting of %d levels accepted", JSON_MAX_DEPTH);
	memmove(deep + 1, deep, strlen(deep) + 1);
	deep[0] = '[';
	strcat(deep, "]");
	ok(rejects(deep, "nesting"), "json: nesting of %d levels rejected",
	   JSON_MAX_DEPTH + 1);

	{
		/* deep nesting far past the limit must not recurse deeply */
		size_t		n = 100000;
		char	   *huge = malloc(n + 1);

		memset(huge, '[', n);
		huge[n] = '\0';
		ok(huge && rejects(huge, "nesting"), "json: 100000 '[' rejected without a crash");
		free(huge);
	}

	abuf_init(&b);
	json_escape(&b, "q\"b\\n\nt\tc\x01 d\x7f bad\xFF\xC3(ok \xC3\xBC");
	is_str(b.data, "\"q\\\"b\\\\n\\nt\\tc\\u0001 d\\u007F bad\xEF\xBF\xBD\xEF\xBF\xBD(ok \xC3\xBC\"",
		   "json: json_escape escapes, replaces bad UTF-8 with U+FFFD");
	v = json_parse(b.data, b.len, err, sizeof(err));
	ok(v != NULL, "json: json_escape output parses");
	json_free(v);
	abuf_reset(&b);
	json_escape(&b, NULL);
	is_str(b.data, "null", "json: json_escape(NULL) is null");
	abuf_free(&b);
}

/* ----------------------------------------------------------------
 * Manifest tests
 * ----------------------------------------------------------------
 */

static const char *const tricky[] = {
	"plain",
	"quote\"inside",
	"back\\slash",
	"new\nline",
	"tab\there",
	"ctrl\x01" "char",
	"Gr\xC3\xBC\xC3\x9F" "e",
	"emoji \xF0\x9F\x98\x80 \xF0\x9F\x8D\x95",
	"we\"ird",
	"Order Items",
	"",
	"slash/and \\u0041 not an escape",
	"all\b\f\r\x1f\x7f",
};
#define NTRICKY ((int) (sizeof(tricky) / sizeof(tricky[0])))

static Manifest *
build_manifest(void)
{
	Manifest   *m = mf_new();
	MfTable    *t;
	MfColumn   *c;
	MfSequence *s;
	int			i;

	m->backup_id = strdup("20261124T040000Z");
	m->database = strdup("shop");
	m->status = strdup("partial");
	m->started_at = strdup("2026-11-24T04:00:00.123456Z");
	m->finished_at = strdup("2026-11-24T04:03:10.000001Z");
	m->server_version = strdup("15.18");
	m->server_encoding = strdup("LATIN1");
	m->system_identifier = strdup("7312345678901234567");
	m->extension_version = strdup("0.1");
	m->snapshot_lsn = NULL;		/* absent -> null */

	t = mf_add_table(m);
	t->schema = strdup("public");
	t->name = strdup("orders");
	t->status = strdup("ok");
	t->object_key = strdup("prefix/shop/20261124T040000Z/public.orders.csv.gz");
	t->format = strdup("csv");
	t->compression = strdup("gzip");
	t->relid = UINT32_MAX;		/* OIDs use all 32 bits */
	t->owner = strdup("shop \"owner\" \u00e9");
	t->rows = 123;
	t->raw_bytes = 4567;
	t->compressed_bytes = 890;
	t->sha256 = strdup("ab12cd34ef56ab12cd34ef56ab12cd34ef56ab12cd34ef56ab12cd34ef56ab12");
	t->ddl = strdup("CREATE TABLE public.orders (\n\tid integer NOT NULL,\n\tnote text\n);");
	{
		MfDdl	   *d = mf_add_ddl(t);

		d->kind = strdup("column");
		d->name = strdup("id");
		d->sql = strdup("integer DEFAULT nextval('public.\"we\"\"ird_seq\"'::regclass) NOT NULL");
		d = mf_add_ddl(t);
		d->kind = strdup("comment");
		d->target = strdup("");
		d->sql = strdup("line 1\nline \"2\" \xc3\xa9");
	}
	c = mf_add_column(t);
	c->name = strdup("id");
	c->type = strdup("integer");
	c->position = 1;
	c->not_null = true;
	c = mf_add_column(t);
	c->name = strdup("note");
	c->type = strdup("numeric(10,2)");
	c->position = 3;

	t = mf_add_table(m);
	t->schema = strdup("Sales Dept");
	t->name = strdup("we\"ird");
	t->parent = strdup("Sales Dept.\"parted\"");
	t->status = strdup("failed");
	t->object_key = strdup("p/Sales%20Dept.we%22ird.csv.gz");
	t->error = strdup("could not read: \"disk\"\n\tat line 1\x01");
	t->rows = INT64_C(9007199254740993);
	t->raw_bytes = INT64_MAX;
	t->compressed_bytes = INT64_MIN;

	t = mf_add_table(m);
	t->schema = strdup("public");
	t->name = strdup("Order Items");
	t->status = strdup("ok");
	t->object_key = strdup("p/public.Order%20Items.csv.gz");
	for (i = 0; i < NTRICKY; i++)
	{
		c = mf_add_column(t);
		c->name = strdup(tricky[i]);
		c->type = strdup(tricky[(i + 3) % NTRICKY]);
		c->position = i - 5;
		c->not_null = i % 2;
	}

	s = mf_add_sequence(m);
	s->schema = strdup("public");
	s->name = strdup("orders_id_seq");
	s->last_value = 42;
	s->is_called = true;
	s = mf_add_sequence(m);
	s->schema = strdup("x");
	s->name = strdup("neg");
	s->last_value = -INT64_C(9007199254740993);
	s->is_called = false;
	return m;
}

static bool
str_eq(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

#define CMP_STR(what, a, b) \
	do { if (!str_eq((a), (b))) { printf("# differs: %s\n", what); return false; } } while (0)
#define CMP_NUM(what, a, b) \
	do { if ((a) != (b)) { printf("# differs: %s\n", what); return false; } } while (0)

static bool
manifests_equal(const Manifest *a, const Manifest *b)
{
	int			i;
	int			j;

	CMP_NUM("format", a->format, b->format);
	CMP_STR("backup_id", a->backup_id, b->backup_id);
	CMP_STR("database", a->database, b->database);
	CMP_STR("status", a->status, b->status);
	CMP_STR("started_at", a->started_at, b->started_at);
	CMP_STR("finished_at", a->finished_at, b->finished_at);
	CMP_STR("server_version", a->server_version, b->server_version);
	CMP_STR("server_encoding", a->server_encoding, b->server_encoding);
	CMP_STR("system_identifier", a->system_identifier, b->system_identifier);
	CMP_STR("extension_version", a->extension_version, b->extension_version);
	CMP_STR("snapshot_lsn", a->snapshot_lsn, b->snapshot_lsn);
	CMP_NUM("ntables", a->ntables, b->ntables);
	for (i = 0; i < a->ntables; i++)
	{
		const MfTable *ta = &a->tables[i];
		const MfTable *tb = &b->tables[i];

		CMP_STR("table schema", ta->schema, tb->schema);
		CMP_STR("table name", ta->name, tb->name);
		CMP_STR("table parent", ta->parent, tb->parent);
		CMP_STR("table owner", ta->owner, tb->owner);
		CMP_STR("table status", ta->status, tb->status);
		CMP_STR("table error", ta->error, tb->error);
		CMP_STR("table object_key", ta->object_key, tb->object_key);
		CMP_STR("table format", ta->format, tb->format);
		CMP_STR("table compression", ta->compression, tb->compression);
		CMP_STR("table sha256", ta->sha256, tb->sha256);
		CMP_STR("table ddl", ta->ddl, tb->ddl);
		CMP_NUM("table relid", ta->relid, tb->relid);
		CMP_NUM("table rows", ta->rows, tb->rows);
		CMP_NUM("table raw_bytes", ta->raw_bytes, tb->raw_bytes);
		CMP_NUM("table compressed_bytes", ta->compressed_bytes,
				tb->compressed_bytes);
		CMP_NUM("table nddl", ta->nddl, tb->nddl);
		for (j = 0; j < ta->nddl; j++)
		{
			CMP_STR("ddl kind", ta->ddls[j].kind, tb->ddls[j].kind);
			CMP_STR("ddl name", ta->ddls[j].name, tb->ddls[j].name);
			CMP_STR("ddl target", ta->ddls[j].target, tb->ddls[j].target);
			CMP_STR("ddl sql", ta->ddls[j].sql, tb->ddls[j].sql);
		}
		CMP_NUM("table ncolumns", ta->ncolumns, tb->ncolumns);
		for (j = 0; j < ta->ncolumns; j++)
		{
			CMP_STR("column name", ta->columns[j].name, tb->columns[j].name);
			CMP_STR("column type", ta->columns[j].type, tb->columns[j].type);
			CMP_NUM("column position", ta->columns[j].position,
					tb->columns[j].position);
			CMP_NUM("column not_null", ta->columns[j].not_null,
					tb->columns[j].not_null);
		}
	}
	CMP_NUM("nsequences", a->nsequences, b->nsequences);
	for (i = 0; i < a->nsequences; i++)
	{
		CMP_STR("seq schema", a->sequences[i].schema, b->sequences[i].schema);
		CMP_STR("seq name", a->sequences[i].name, b->sequences[i].name);
		CMP_NUM("seq last_value", a->sequences[i].last_value,
				b->sequences[i].last_value);
		CMP_NUM("seq is_called", a->sequences[i].is_called,
				b->sequences[i].is_called);
	}
	return true;
}

/* mf_parse of text must fail with a message containing want */
static bool
mf_rejects(const char *text, const char *want)
{
	char		err[256];
	Manifest   *m = mf_parse(text, strlen(text), err, sizeof(err));

	if (m != NULL)
	{
		mf_free(m);
		printf("# accepted: %s\n", text);
		return false;
	}
	printf("# rejected: %s\n", err);
	if (want && strstr(err, want) == NULL)
	{
		printf("# message lacks '%s'\n", want);
		return false;
	}
	return true;
}

/* text with the first occurrence of from replaced by to; malloc'd */
static char *
replace(const char *text, const char *from, const char *to)
{
	const char *at = strstr(text, from);
	AbBuf		b;

	abuf_init(&b);
	if (at == NULL)
		return abuf_steal(&b);
	abuf_append(&b, text, at - text);
	abuf_appends(&b, to);
	abuf_appends(&b, at + strlen(from));
	return abuf_steal(&b);
}

static const char *golden =
"{\n"
"  \"format\": 1,\n"
"  \"backup_id\": \"20261124T040000Z\",\n"
"  \"database\": \"shop\",\n"
"  \"status\": \"ok\",\n"
"  \"started_at\": null,\n"
"  \"finished_at\": null,\n"
"  \"server_version\": null,\n"
"  \"server_encoding\": \"LATIN1\",\n"
"  \"system_identifier\": null,\n"
"  \"extension_version\": null,\n"
"  \"snapshot_lsn\": \"0/1A2B3C4\",\n"
"  \"tables\": [\n"
"    {\n"
"      \"schema\": \"public\",\n"
"      \"name\": \"orders\",\n"
"      \"relid\": 16384,\n"
"      \"owner\": null,\n"
"      \"parent\": null,\n"
"      \"status\": \"ok\",\n"
"      \"error\": null,\n"
"      \"object_key\": \"p/shop/20261124T040000Z/public.orders.csv.gz\",\n"
"      \"format\": \"csv\",\n"
"      \"compression\": \"gzip\",\n"
"      \"rows\": 123,\n"
"      \"raw_bytes\": 4567,\n"
"      \"compressed_bytes\": 890,\n"
"      \"sha256\": null,\n"
"      \"columns\": [\n"
"        {\n"
"          \"name\": \"id\",\n"
"          \"type\": \"integer\",\n"
"          \"position\": 1,\n"
"          \"not_null\": true\n"
"        }\n"
"      ],\n"
"      \"ddl\": null,\n"
"      \"definition\": []\n"
"    }\n"
"  ],\n"
"  \"sequences\": []\n"
"}\n";

static void
test_manifest_golden(void)
{
	Manifest   *m = mf_new();
	MfTable    *t;
	MfColumn   *c;
	char	   *json;

	m->backup_id = strdup("20261124T040000Z");
	m->database = strdup("shop");
	m->status = strdup("ok");
	m->snapshot_lsn = strdup("0/1A2B3C4");
	m->server_encoding = strdup("LATIN1");
	t = mf_add_table(m);
	t->schema = strdup("public");
	t->name = strdup("orders");
	t->status = strdup("ok");
	t->object_key = strdup("p/shop/20261124T040000Z/public.orders.csv.gz");
	t->relid = 16384;
	t->format = strdup("csv");
	t->compression = strdup("gzip");
	t->rows = 123;
	t->raw_bytes = 4567;
	t->compressed_bytes = 890;
	c = mf_add_column(t);
	c->name = strdup("id");
	c->type = strdup("integer");
	c->position = 1;
	c->not_null = true;
	json = mf_to_json(m);
	ok(m->format == MANIFEST_FORMAT, "manifest: mf_new sets format %d",
	   MANIFEST_FORMAT);
	is_str(json, golden, "manifest: exact JSON layout (2-space indent, key order, nulls)");
	free(json);
	mf_free(m);

	/* server_encoding is optional: a manifest written before 0.2 reads */
	{
		char	   *old = replace(golden, "  \"server_encoding\": \"LATIN1\",\n", "");
		char		err[256];
		Manifest   *p;

		p = old && old[0] ? mf_parse(old, strlen(old), err, sizeof(err)) : NULL;
		ok(old && strstr(old, "server_encoding") == NULL && p != NULL &&
		   p->server_encoding == NULL && strcmp(p->database, "shop") == 0,
		   "manifest: one without server_encoding reads, with NULL for it");
		mf_free(p);
		free(old);
		old = replace(golden, "\"LATIN1\"", "5");
		p = old && old[0] ? mf_parse(old, strlen(old), err, sizeof(err)) : NULL;
		ok(p == NULL && strstr(err, "server_encoding") != NULL,
		   "manifest: a server_encoding that is not a string is refused");
		mf_free(p);
		free(old);
	}
}

/* what an incremental backup's proof reads back from the previous manifest */
/* the CSV reader, fed whole and byte by byte */
static void
test_csv(void)
{
	const char *data = "id,name,note\n"
	"1,plain,\n"
	"2,\"with, comma\",\"\"\n"
	"3,\"quote \"\" inside\",\"new\nline\"\n"
	"4,\"\r\",x\r\n"
	"\n"
	"5,last,no newline";
	const char *want[][3] = {
		{"id", "name", "note"},
		{"1", "plain", NULL},
		{"2", "with, comma", ""},
		{"3", "quote \" inside", "new\nline"},
		{"4", "\r", "x"},
		{NULL, "-", "-"},		/* an empty line: one NULL field */
		{"5", "last", "no newline"},
	};
	int			nwant = 7;

	for (int mode = 0; mode < 2; mode++)
	{
		CsvReader  *r = csv_new(1024);
		CsvRecord	rec;
		int			n = 0;
		bool		same = true;
		size_t		fed = 0;
		int			rc;

		for (;;)
		{
			rc = csv_next(r, &rec);
			if (rc == 0 && fed < strlen(data))
			{
				size_t		step = mode == 0 ? strlen(data) : 1;

				csv_feed(r, data + fed, step);
				fed += step;
				if (fed == strlen(data))
					csv_end(r);
				continue;
			}
			if (rc <= 0)
				break;
			if (n < nwant)
			{
				int			nf = want[n][1] && strcmp(want[n][1], "-") == 0 ? 1 : 3;

				same = same && rec.nfields == nf;
				for (int f = 0; same && f < nf; f++)
					same = want[n][f] == NULL ? rec.nulls[f] :
						(!rec.nulls[f] && rec.lens[f] == strlen(want[n][f]) &&
						 strcmp(rec.fields[f], want[n][f]) == 0);
			}
			n++;
		}
		ok(rc == 0 && n == nwant && same,
		   "csv: quotes, doubled quotes, NULL vs \"\", newlines and CR in quotes, CRLF, an empty line, no final newline (%s; %d records)",
		   mode ? "byte by byte" : "whole", n);
		csv_free(r);
	}

	{
		const char *bad[] = {"1,\"open\n", "1,a\"b\n", "1,\"a\"b\n"};

		for (int i = 0; i < 3; i++)
		{
			CsvReader  *r = csv_new(1024);
			CsvRecord	rec;

			csv_feed(r, bad[i], strlen(bad[i]));
			csv_end(r);
			ok(csv_next(r, &rec) == -1 && strlen(csv_error(r)) > 0,
			   "csv: refuses malformed input %d (%s)", i, csv_error(r));
			csv_free(r);
		}
	}
	{
		CsvReader  *r = csv_new(10);

		ok(!csv_feed(r, "0123456789012345\n", 17),
		   "csv: a record longer than the limit is refused");
		csv_free(r);
	}
}

static void
test_manifest_reuse(void)
{
	Manifest   *m = mf_new();
	MfTable    *t = mf_add_table(m);
	Manifest   *p;
	char	   *json;
	char		err[256];

	m->backup_id = strdup("20261124T040000Z");
	m->database = strdup("shop");
	m->status = strdup("ok");
	m->reuse_lsn = strdup("1/A2B3C4D0");
	m->snapshot_xmin = ((int64_t) 3 << 32) + 123456;
	m->timeline = 7;
	m->database_oid = 4000000000;
	m->from_standby = true;
	t->schema = strdup("public");
	t->name = strdup("orders");
	t->status = strdup("ok");
	t->object_key = strdup("k");
	t->relfilenode = 4000000001;
	t->toast_relfilenode = 16390;
	t->definition_hash = strdup("ab12");
	t->etag = strdup("306f3bd6b94497905e063f7b68eac82c-3");
	t->copied_from = strdup("20261124T000000Z");
	t->read_in = strdup("20261123T200000Z");
	json = mf_to_json(m);
	p = json ? mf_parse(json, strlen(json), err, sizeof(err)) : NULL;
	ok(p != NULL && p->reuse_lsn && strcmp(p->reuse_lsn, "1/A2B3C4D0") == 0 &&
	   p->snapshot_xmin == ((int64_t) 3 << 32) + 123456 && p->timeline == 7 &&
	   p->database_oid == 4000000000 && p->from_standby,
	   "manifest: the snapshot's LSN, 64-bit xmin, timeline, database OID and from_standby read back");
	ok(p != NULL && p->ntables == 1 && p->tables[0].relfilenode == 4000000001u &&
	   p->tables[0].toast_relfilenode == 16390 &&
	   strcmp(p->tables[0].definition_hash, "ab12") == 0 &&
	   strcmp(p->tables[0].etag, "306f3bd6b94497905e063f7b68eac82c-3") == 0 &&
	   strcmp(p->tables[0].copied_from, "20261124T000000Z") == 0 &&
	   strcmp(p->tables[0].read_in, "20261123T200000Z") == 0,
	   "manifest: a table's relfilenodes, definition hash, ETag, copied_from and read_in read back");
	mf_free(p);
	free(json);

	/* a manifest of 0.3 has none of them: zeros and NULLs, no error */
	free(m->reuse_lsn);
	m->reuse_lsn = NULL;
	m->from_standby = false;
	t->relfilenode = t->toast_relfilenode = 0;
	free(t->definition_hash);
	free(t->etag);
	free(t->copied_from);
	free(t->read_in);
	t->definition_hash = t->etag = t->copied_from = t->read_in = NULL;
	json = mf_to_json(m);
	p = json ? mf_parse(json, strlen(json), err, sizeof(err)) : NULL;
	ok(json && strstr(json, "snapshot_xmin") == NULL &&
	   strstr(json, "copied_from") == NULL &&
	   strstr(json, "from_standby") == NULL && p != NULL &&
	   p->reuse_lsn == NULL && p->snapshot_xmin == 0 && !p->from_standby &&
	   p->tables[0].etag == NULL && p->tables[0].relfilenode == 0,
	   "manifest: without them nothing is written, and reading gives none");
	mf_free(p);
	free(json);
	mf_free(m);
}

/* mf_table_pack/unpack: every field exactly, whatever its bytes */
static void
test_manifest_pack(void)
{
	Manifest   *m = mf_new();
	MfTable    *t = mf_add_table(m);
	MfTable		u;
	MfColumn   *c;
	MfDdl	   *d;
	char	   *bytes;
	char	   *again;
	size_t		len;
	size_t		len2;
	int			truncated_ok = 1;

	t->schema = strdup("caf\xe9");	/* LATIN1, not UTF-8: kept as is */
	t->name = strdup("t\"\\\n");
	t->parent = NULL;
	t->extension = strdup("");
	t->status = strdup("ok");
	t->object_key = strdup("db/x/caf%E9.t.csv.gz");
	t->sha256 = strdup("ab");
	t->ddl = strdup("CREATE TABLE \xff;");
	t->owner = strdup("o");
	t->etag = strdup("e-3");
	t->copied_from = strdup("20261124T000000Z");
	t->relid = 4000000000u;
	t->rows = -1;
	t->raw_bytes = INT64_MAX;
	t->compressed_bytes = 7;
	t->relfilenode = 16390;
	t->toast_relfilenode = UINT32_MAX;
	for (int i = 0; i < 5; i++)
	{
		c = mf_add_column(t);
		c->name = strdup(i == 2 ? "\xe9" : "col");
		c->type = i == 3 ? NULL : strdup("numeric(10,2)");
		c->position = i + 1;
		c->not_null = i % 2;
	}
	d = mf_add_ddl(t);
	d->kind = strdup("index");
	d->sql = strdup("CREATE INDEX i ON t (a)");

	bytes = mf_table_pack(t, &len);
	ok(bytes != NULL && mf_table_unpack(bytes, len, &u),
	   "manifest pack: an entry packs and unpacks");
	again = mf_table_pack(&u, &len2);
	ok(again != NULL && len2 == len && memcmp(again, bytes, len) == 0,
	   "manifest pack: unpacked and packed again, the same bytes");
	ok(strcmp(u.schema, "caf\xe9") == 0 && u.parent == NULL &&
	   strcmp(u.extension, "") == 0 && u.error == NULL &&
	   strcmp(u.ddl, "CREATE TABLE \xff;") == 0 && u.relid == 4000000000u &&
	   u.rows == -1 && u.raw_bytes == INT64_MAX &&
	   u.toast_relfilenode == UINT32_MAX && u.ncolumns == 5 &&
	   strcmp(u.columns[2].name, "\xe9") == 0 && u.columns[3].type == NULL &&
	   u.columns[4].position == 5 && u.columns[3].not_null &&
	   u.nddl == 1 && u.ddls[0].name == NULL &&
	   strcmp(u.ddls[0].sql, "CREATE INDEX i ON t (a)") == 0,
	   "manifest pack: bytes, NULLs, empty strings, extremes, columns and definition kept");
	mf_free_table(&u);
	free(again);

	for (size_t cut = 0; cut < len; cut++)
	{
		if (mf_table_unpack(bytes, cut, &u) || u.schema != NULL || u.ncolumns != 0)
			truncated_ok = 0;
	}
	ok(truncated_ok, "manifest pack: every truncation is refused, leaving an empty entry");
	again = malloc(len + 1);
	memcpy(again, bytes, len);
	again[len] = 'x';
	ok(!mf_table_unpack(again, len + 1, &u) && u.schema == NULL,
	   "manifest pack: trailing bytes are refused");
	free(again);
	free(bytes);
	mf_free(m);
}

static void
test_manifest_roundtrip(void)
{
	Manifest   *m = build_manifest();
	Manifest   *p;
	char	   *json;
	char	   *json2;
	char	   *path;
	char		err[256];
	char		cmd[4096];

	json = mf_to_json(m);
	ok(json != NULL, "manifest: to_json");
	p = json ? mf_parse(json, strlen(json), err, sizeof(err)) : NULL;
	ok(p != NULL, "manifest: its JSON parses back");
	if (p == NULL)
		printf("# %s\n", err);
	ok(p && manifests_equal(m, p), "manifest: identical field by field after the round trip");
	json2 = p ? mf_to_json(p) : NULL;
	is_str(json2, json, "manifest: writing the parsed manifest gives the same bytes");
	free(json2);

	path = temp_file(json ? json : "", json ? strlen(json) : 0);
	snprintf(cmd, sizeof(cmd), "python3 -m json.tool '%s' > /dev/null",
			 path ? path : "/nonexistent");
	ok(path && run(cmd), "manifest: python3 -m json.tool accepts it");

	/* and python reads the tricky strings as we meant them */
	snprintf(cmd, sizeof(cmd),
			 "python3 -c 'import json,sys\n"
			 "d = json.load(open(sys.argv[1], encoding=\"utf-8\"))\n"
			 "t = d[\"tables\"]\n"
			 "assert d[\"format\"] == 1 and d[\"snapshot_lsn\"] is None\n"
			 "assert t[1][\"name\"] == \"we\\\"ird\" and t[1][\"schema\"] == \"Sales Dept\"\n"
			 "assert t[1][\"rows\"] == 9007199254740993\n"
			 "assert t[1][\"raw_bytes\"] == 2**63 - 1 and t[1][\"compressed_bytes\"] == -2**63\n"
			 "assert t[1][\"error\"] == \"could not read: \\\"disk\\\"\\n\\tat line 1\\x01\"\n"
			 "assert t[2][\"name\"] == \"Order Items\" and t[0][\"parent\"] is None\n"
			 "c = [x[\"name\"] for x in t[2][\"columns\"]]\n"
			 "assert c[1:8] == [\"quote\\\"inside\", \"back\\\\slash\", \"new\\nline\", \"tab\\there\", \"ctrl\\x01char\", \"Gr\\u00fc\\u00dfe\", \"emoji \\U0001F600 \\U0001F355\"], c\n"
			 "assert c[12] == \"all\\b\\f\\r\\x1f\\x7f\"\n"
			 "assert d[\"sequences\"][0] == {\"schema\": \"public\", \"name\": \"orders_id_seq\", \"last_value\": 42, \"is_called\": True}\n"
			 "' '%s'", path ? path : "/nonexistent");
	ok(path && run(cmd), "manifest: python's json reads the same values");
	if (path)
		unlink(path);
	free(path);

	ok(p && mf_find_table(p, "public", "orders") == &p->tables[0] &&
	   mf_find_table(p, "Sales Dept", "we\"ird") == &p->tables[1] &&
	   mf_find_table(p, "public", "Order Items") == &p->tables[2],
	   "manifest: mf_find_table finds exact matches");
	ok(p && mf_find_table(p, "public", "Orders") == NULL &&
	   mf_find_table(p, "Public", "orders") == NULL &&
	   mf_find_table(p, "public", "order") == NULL &&
	   mf_find_table(p, "public", "orders ") == NULL &&
	   mf_find_table(p, "public", "order items") == NULL &&
	   mf_find_table(p, "sales dept", "we\"ird") == NULL &&
	   mf_find_table(p, "public", "we\"ird") == NULL &&
	   mf_find_table(NULL, "public", "orders") == NULL,
	   "manifest: mf_find_table is exact and case-sensitive");

	mf_free(p);
	free(json);
	mf_free(m);
}

/* partitioned tables: definitions only, in their own array */
static void
test_manifest_partitioned(void)
{
	Manifest   *m = mf_new();
	Manifest   *p;
	MfTable    *t = mf_add_table(m);
	MfTable    *pt = mf_add_partitioned(m);
	MfColumn   *c = mf_add_column(pt);
	MfDdl	   *d = mf_add_ddl(pt);
	char	   *json;
	char	   *json2;
	char		err[256];

	m->backup_id = strdup("20261201T000000Z");
	m->database = strdup("db");
	m->status = strdup("ok");
	t->schema = strdup("public");
	t->name = strdup("m1");
	t->parent = strdup("public.m");
	t->status = strdup("ok");
	t->object_key = strdup("p/db/20261201T000000Z/public.m1.csv.gz");
	pt->schema = strdup("public");
	pt->name = strdup("m");
	pt->relid = 16400;
	pt->owner = strdup("app");
	pt->partitions = 3;
	c->name = strdup("ts");
	c->type = strdup("date");
	c->position = 1;
	d->kind = strdup("partition_by");
	d->sql = strdup("RANGE (ts)");

	json = mf_to_json(m);
	ok(json && strstr(json, "\"partitioned\"") != NULL, "manifest: partitioned tables are written");
	ok(json && strstr(strstr(json, "\"partitioned\""), "\"status\"") == NULL &&
	   strstr(strstr(json, "\"partitioned\""), "\"object_key\"") == NULL,
	   "manifest: with no data fields");
	p = json ? mf_parse(json, strlen(json), err, sizeof(err)) : NULL;
	ok(p && p->npartitioned == 1 && p->ntables == 1, "manifest: partitioned tables parse back");
	ok(p && p->partitioned[0].status == NULL && p->partitioned[0].relid == 16400 &&
	   p->partitioned[0].partitions == 3 &&
	   strcmp(p->partitioned[0].owner, "app") == 0 && p->partitioned[0].ncolumns == 1 &&
	   p->partitioned[0].nddl == 1 &&
	   strcmp(p->partitioned[0].ddls[0].sql, "RANGE (ts)") == 0,
	   "manifest: a partitioned table's fields survive the round trip");
	ok(p && mf_find_partitioned(p, "public", "m") == &p->partitioned[0] &&
	   mf_find_table(p, "public", "m") == NULL &&
	   mf_find_partitioned(p, "public", "m1") == NULL,
	   "manifest: partitioned tables are found apart from tables");
	json2 = p ? mf_to_json(p) : NULL;
	is_str(json2, json, "manifest: and written back to the same bytes");
	if (p)
		mf_clear_partitioned(p);
	ok(p && p->npartitioned == 0 && p->partitioned == NULL && p->ntables == 1,
	   "manifest: mf_clear_partitioned drops them, and only them");
	free(json2);
	free(json);
	mf_free(p);
	mf_free(m);
}

static void
test_manifest_many(void)
{
	Manifest   *m = mf_new();
	Manifest   *p;
	char	   *json;
	char		err[256];
	int			i;
	int			j;
	bool		built = true;

	m->backup_id = strdup("20261124T040000Z");
	m->database = strdup("big");
	m->status = strdup("ok");
	for (i = 0; i < 1500 && built; i++)
	{
		MfTable    *t = mf_add_table(m);
		char		name[32];

		if (t == NULL)
		{
			built = false;
			break;
		}
		snprintf(name, sizeof(name), "t%04d", i);
		t->status = strdup("ok");
		t->object_key = strdup(name);
		t->schema = strdup("s");
		t->name = strdup(name);
		t->rows = (int64_t) i * 1000003;
		for (j = 0; j < i % 9; j++)
		{
			MfColumn   *c = mf_add_column(t);

			c->name = strdup(name);
			c->type = strdup("text");
			c->position = j + 1;
		}
	}
	for (i = 0; i < 300; i++)
	{
		MfSequence *s = mf_add_sequence(m);

		s->schema = strdup("s");
		s->name = strdup("q");
		s->last_value = i;
	}
	json = mf_to_json(m);
	p = json ? mf_parse(json, strlen(json), err, sizeof(err)) : NULL;
	ok(built && p && manifests_equal(m, p),
	   "manifest: 1500 tables and 300 sequences round trip");
	ok(p && mf_find_table(p, "s", "t1234") == &p->tables[1234] &&
	   p->tables[1234].rows == INT64_C(1234) * 1000003,
	   "manifest: finds table 1234 of 1500");
	mf_free(p);
	mf_free(m);
	free(json);
}

static void
test_manifest_reject(void)
{
	Manifest   *m;
	Manifest   *p;
	char	   *json;
	char	   *bad;
	char		err[256];
	size_t		cut;
	size_t		len;
	int			accepted = 0;
	const char *txt;

	m = build_manifest();
	json = mf_to_json(m);
	len = strlen(json);

	/* every truncation (the text ends "}\n": cutting the newline is fine) */
	for (cut = 0; cut < len - 1; cut++)
	{
		p = mf_parse(json, cut, err, sizeof(err));
		if (p != NULL)
		{
			accepted++;
			mf_free(p);
		}
	}
	ok(accepted == 0, "manifest: every one of %zu truncations rejected", len - 1);
	ok(mf_parse(json, len / 2, err, sizeof(err)) == NULL &&
	   strstr(err, "invalid manifest") != NULL,
	   "manifest: truncated JSON -> error (%s)", err);

	bad = malloc(len + 10);
	memcpy(bad, json, len);
	strcpy(bad + len, "x");
	ok(mf_rejects(bad, "after the JSON value"), "manifest: trailing garbage rejected");
	strcpy(bad + len, "{}");
	ok(mf_rejects(bad, NULL), "manifest: a second object after it rejected");
	free(bad);

	bad = replace(json, "\"relid\": 4294967295", "\"relid\": 4294967296");
	ok(mf_rejects(bad, "relid"), "manifest: relid beyond 32 bits rejected");
	free(bad);
	bad = replace(json, "\"relid\": 4294967295", "\"relid\": -1");
	ok(mf_rejects(bad, "relid"), "manifest: negative relid rejected");
	free(bad);
	bad = replace(json, "\"relid\": 4294967295,", "");
	p = bad ? mf_parse(bad, strlen(bad), err, sizeof(err)) : NULL;
	ok(p && p->tables[0].relid == 0,
	   "manifest: a manifest without relid (before 0.2) reads as relid 0");
	mf_free(p);
	free(bad);
	bad = replace(json, "\"rows\": 123", "\"rows\": \"123\"");
	ok(mf_rejects(bad, "rows"), "manifest: rows as a string rejected");
	free(bad);
	bad = replace(json, "\"rows\": 123", "\"rows\": 1.5");
	ok(mf_rejects(bad, "rows"), "manifest: rows as a fraction rejected");
	free(bad);
	bad = replace(json, "\"rows\": 123", "\"rows\": 9223372036854775808");
	ok(mf_rejects(bad, "rows"), "manifest: rows beyond int64 rejected");
	free(bad);
	bad = replace(json, "\"position\": 1", "\"position\": 2147483648");
	ok(mf_rejects(bad, "position"), "manifest: position beyond int rejected");
	free(bad);
	bad = replace(json, "\"not_null\": true", "\"not_null\": 1");
	ok(mf_rejects(bad, "not_null"), "manifest: not_null as a number rejected");
	free(bad);
	bad = replace(json, "\"database\": \"shop\"", "\"database\": 7");
	ok(mf_rejects(bad, "database"), "manifest: database as a number rejected");
	free(bad);
	bad = replace(json, "\"database\": \"shop\"", "\"database\": null");
	ok(mf_rejects(bad, "database"), "manifest: database null rejected");
	free(bad);
	bad = replace(json, "\"started_at\": \"", "\"started_at\": [\"");
	{
		char	   *b2 = replace(bad, "Z\",\n  \"finished_at\"", "Z\"],\n  \"finished_at\"");

		ok(mf_rejects(b2, "started_at"), "manifest: started_at as an array rejected");
		free(b2);
	}
	free(bad);
	bad = replace(json, "\"tables\": [", "\"tablez\": [");
	ok(mf_rejects(bad, "\"tables\" is missing"), "manifest: missing tables rejected");
	free(bad);
	bad = replace(json, "\"tables\": [", "\"tables\": {\"x\": [");
	{
		char	   *b2 = replace(bad, "\n  ],\n  \"sequences\"", "\n  ]},\n  \"sequences\"");

		ok(mf_rejects(b2, "tables"), "manifest: tables as an object rejected");
		free(b2);
	}
	free(bad);
	bad = replace(json, "\"backup_id\"", "\"backup\"");
	ok(mf_rejects(bad, "backup_id"), "manifest: missing backup_id rejected");
	free(bad);
	bad = replace(json, "\"status\": \"partial\"", "\"state\": \"partial\"");
	ok(mf_rejects(bad, "status"), "manifest: missing status rejected");
	free(bad);
	bad = replace(json, "\"format\": 1,", "");
	ok(mf_rejects(bad, "format"), "manifest: missing format rejected");
	free(bad);
	bad = replace(json, "\"format\": 1,", "\"format\": \"1\",");
	ok(mf_rejects(bad, "format"), "manifest: format as a string rejected");
	free(bad);
	bad = replace(json, "\"format\": 1,", "\"format\": 0,");
	ok(mf_rejects(bad, "format"), "manifest: format 0 rejected");
	free(bad);
	bad = replace(json, "\"format\": 1,", "\"format\": 99,");
	ok(mf_rejects(bad, "manifest format 99 is newer than this version understands"),
	   "manifest: format 99 -> newer");
	free(bad);
	ok(mf_rejects("{\"format\": 2, \"everything\": \"different\"}", "newer"),
	   "manifest: a newer format is reported before missing fields");
	bad = replace(json, "\"name\": \"orders\"", "\"nam\": \"orders\"");
	ok(mf_rejects(bad, "tables[0].name"), "manifest: table without a name rejected");
	free(bad);
	bad = replace(json, "\"type\": \"integer\"", "\"type\": null");
	ok(mf_rejects(bad, "tables[0].columns[0].type"),
	   "manifest: column type null rejected, with its path");
	free(bad);
	bad = replace(json, "\"name\": \"orders\"", "\"name\": \"ord\\u0000ers\"");
	ok(mf_rejects(bad, "NUL"), "manifest: NUL in a name rejected");
	free(bad);
	ok(mf_rejects("[]", "object"), "manifest: top level array rejected");
	ok(mf_rejects("", "invalid manifest"), "manifest: empty text rejected");
	ok(mf_parse(NULL, 0, NULL, 0) == NULL, "manifest: NULL text, NULL errbuf");
	ok(mf_rejects("{\"format\": 1, \"backup_id\": \"x\", \"database\": \"d\", "
				  "\"status\": \"ok\", \"tables\": [7]}", "tables[0]"),
	   "manifest: a table that is not an object rejected");

	/* unknown fields anywhere are ignored */
	bad = replace(json, "\"format\": 1,",
				  "\"format\": 1, \"future\": {\"a\": [1, 2, {\"b\": null}]}, \"zz\": 1.5e10,");
	{
		char	   *b2 = replace(bad, "\"rows\": 123,", "\"rows\": 123, \"x_new\": [true],");
		char	   *b3 = replace(b2, "\"not_null\": true", "\"not_null\": true, \"collation\": \"C\"");

		p = mf_parse(b3, strlen(b3), err, sizeof(err));
		ok(p && manifests_equal(m, p), "manifest: unknown fields ignored");
		if (p == NULL)
			printf("# %s\n", err);
		mf_free(p);
		free(b2);
		free(b3);
	}
	free(bad);

	/* a table's status and object key are required: readers rely on them */
	txt = "{\"format\": 1, \"backup_id\": \"x\", \"database\": \"d\", "
		"\"status\": \"ok\", \"tables\": [{\"schema\": \"s\", \"name\": \"t\"}]}";
	p = mf_parse(txt, strlen(txt), err, sizeof(err));
	ok(p == NULL && strstr(err, "status") != NULL,
	   "manifest: a table without status is rejected (%s)", err);
	mf_free(p);

	/* optional fields may be missing altogether */
	txt = "{\"format\": 1, \"backup_id\": \"x\", \"database\": \"d\", "
		"\"status\": \"ok\", \"tables\": [{\"schema\": \"s\", \"name\": \"t\", "
		"\"status\": \"ok\", \"object_key\": \"k\"}]}";
	p = mf_parse(txt, strlen(txt), err, sizeof(err));
	ok(p && p->ntables == 1 && p->tables[0].rows == 0 &&
	   p->tables[0].ncolumns == 0 && p->tables[0].sha256 == NULL &&
	   p->nsequences == 0 && p->started_at == NULL,
	   "manifest: minimal manifest parses, optional fields empty");
	if (p == NULL)
		printf("# %s\n", err);
	mf_free(p);

	/* int64 exactness straight from text */
	txt = "{\"format\": 1, \"backup_id\": \"x\", \"database\": \"d\", "
		"\"status\": \"ok\", \"tables\": [{\"schema\": \"s\", \"name\": \"t\", "
		"\"status\": \"ok\", \"object_key\": \"k\", "
		"\"rows\": 9007199254740993, \"raw_bytes\": 9223372036854775807}]}";
	p = mf_parse(txt, strlen(txt), err, sizeof(err));
	ok(p && p->tables[0].rows == INT64_C(9007199254740993) &&
	   p->tables[0].raw_bytes == INT64_MAX,
	   "manifest: 9007199254740993 and INT64_MAX read exactly");
	if (p == NULL)
		printf("# %s\n", err);
	mf_free(p);

	free(json);
	mf_free(m);
}

/* random damage to the manifest text: parse must fail or succeed, not crash */
static void
test_manifest_fuzz(int rounds)
{
	Manifest   *m = build_manifest();
	char	   *json = mf_to_json(m);
	size_t		len = strlen(json);
	char	   *bad = malloc(len + 1);
	uint64_t	st = 777;
	char		err[256];
	int			i;
	int			rejected = 0;

	for (i = 0; i < rounds; i++)
	{
		int			k;
		int			n = 1 + rnd(&st) % 3;
		size_t		blen = len;
		Manifest   *p;

		memcpy(bad, json, len + 1);
		for (k = 0; k < n; k++)
		{
			static const char pool[] = "{}[]\",:\\0123456789eE.-+ tfnu\x01\xC3\xFF";

			bad[rnd(&st) % len] = pool[rnd(&st) % (sizeof(pool) - 1)];
		}
		if (rnd(&st) % 5 == 0)
			blen = rnd(&st) % len;
		p = mf_parse(bad, blen, err, sizeof(err));
		if (p == NULL)
			rejected++;
		mf_free(p);
	}
	ok(rejected > 0, "manifest: %d damaged texts: %d rejected, no crash",
	   rounds, rejected);
	free(bad);
	free(json);
	mf_free(m);
}

/* ----------------------------------------------------------------
 * Backup index (index.json)
 * ----------------------------------------------------------------
 */

static bool
bi_rejects(const char *json, const char *want)
{
	char		err[256];
	BackupIndex *ix = bi_parse(json, strlen(json), err, sizeof(err));

	if (ix != NULL)
	{
		bi_free(ix);
		printf("# accepted: %s\n", json);
		return false;
	}
	if (want && strstr(err, want) == NULL)
	{
		printf("# error was: %s\n", err);
		return false;
	}
	return true;
}

static void
test_backup_index(void)
{
	BackupIndex *ix = bi_new();
	BackupIndex *p;
	BiEntry    *e;
	char	   *json;
	char	   *json2;
	char		err[256];
	bool		same;

	ix->format = BINDEX_FORMAT;
	ix->database = strdup("caf\xc3\xa9 \"db\"");
	ix->system_identifier = strdup("7312345678901234567");
	ix->updated_at = strdup("2026-12-01T12:00:00.000000Z");
	for (int i = 0; i < 300; i++)
	{
		char		id[32];

		e = bi_add(ix);
		snprintf(id, sizeof(id), "20261201T%06dZ", i);
		e->backup_id = strdup(id);
		e->status = strdup(i % 3 == 0 ? "ok" : i % 3 == 1 ? "partial" : "failed");
		e->started_at = i % 7 ? strdup("2026-12-01T00:00:00.5Z") : NULL;
		e->system_identifier = strdup("7312345678901234567");
		e->tables_ok = i;
		e->tables_failed = 300 - i;
		e->rows = INT64_MAX - i;
		e->raw_bytes = (int64_t) i << 40;
		e->compressed_bytes = i;
		e->from_standby = i % 5 == 0;
	}
	json = bi_to_json(ix);
	ok(json != NULL, "index: to_json");
	p = json ? bi_parse(json, strlen(json), err, sizeof(err)) : NULL;
	ok(p != NULL, "index: its JSON parses back");
	if (p == NULL)
		printf("# %s\n", err);
	same = p && p->nentries == 300 && strcmp(p->database, ix->database) == 0 &&
		strcmp(p->system_identifier, ix->system_identifier) == 0;
	for (int i = 0; same && i < 300; i++)
	{
		BiEntry    *a = &ix->entries[i];
		BiEntry    *b = &p->entries[i];

		same = strcmp(a->backup_id, b->backup_id) == 0 &&
			strcmp(a->status, b->status) == 0 &&
			(a->started_at == NULL ? b->started_at == NULL :
			 b->started_at && strcmp(a->started_at, b->started_at) == 0) &&
			b->finished_at == NULL &&
			a->tables_ok == b->tables_ok && a->tables_failed == b->tables_failed &&
			a->rows == b->rows && a->raw_bytes == b->raw_bytes &&
			a->compressed_bytes == b->compressed_bytes &&
			a->from_standby == b->from_standby;
	}
	ok(same, "index: 300 entries identical after the round trip");
	json2 = p ? bi_to_json(p) : NULL;
	is_str(json2, json, "index: writing what was read gives the same bytes");
	free(json2);
	bi_free(p);

	ok(bi_rejects("", "invalid index"), "index: empty text rejected");
	ok(bi_rejects("[]", "top level"), "index: an array rejected");
	ok(bi_rejects("{\"database\": \"d\", \"backups\": []}", "format"),
	   "index: no format rejected");
	ok(bi_rejects("{\"format\": 2, \"database\": \"d\", \"backups\": []}", "newer"),
	   "index: a newer format rejected");
	ok(bi_rejects("{\"format\": 1, \"backups\": []}", "database"),
	   "index: no database rejected");
	ok(bi_rejects("{\"format\": 1, \"database\": \"d\"}", "backups"),
	   "index: no backups rejected");
	ok(bi_rejects("{\"format\": 1, \"database\": \"d\", \"backups\": [1]}", "object"),
	   "index: a backup that is not an object rejected");
	ok(bi_rejects("{\"format\": 1, \"database\": \"d\", \"backups\": [{\"backup_id\": \"x\"}]}", "status"),
	   "index: an entry without status rejected");
	ok(bi_rejects("{\"format\": 1, \"database\": \"d\", \"backups\": [{\"backup_id\": \"x\", \"status\": \"ok\", \"rows\": -1}]}", "rows"),
	   "index: a negative count rejected");
	ok(bi_rejects("{\"format\": 1, \"database\": \"d\", \"backups\": [{\"backup_id\": \"x\", \"status\": \"ok\", \"from_standby\": 1}]}", "from_standby"),
	   "index: a from_standby that is not true or false rejected");
	ok(bi_rejects("{\"format\": 1, \"database\": \"d\\u0000x\", \"backups\": []}", "database"),
	   "index: a NUL in a string rejected");
	ok(bi_rejects("{\"format\": 1, \"database\": \"d\", \"backups\": []} x", NULL),
	   "index: trailing garbage rejected");
	p = bi_parse("{\"format\": 1, \"database\": \"d\", \"future\": {\"a\": [1]}, \"backups\": [{\"backup_id\": \"x\", \"status\": \"ok\", \"new_field\": true}]}",
				 strlen("{\"format\": 1, \"database\": \"d\", \"future\": {\"a\": [1]}, \"backups\": [{\"backup_id\": \"x\", \"status\": \"ok\", \"new_field\": true}]}"),
				 err, sizeof(err));
	ok(p != NULL && p->nentries == 1 && p->system_identifier == NULL,
	   "index: unknown fields are ignored, the owner may be absent");
	bi_free(p);

	/* every truncation of a valid index is rejected */
	{
		size_t		len = strlen(json);
		int			accepted = 0;

		for (size_t cut = 0; cut + 1 < len; cut += 7)
		{
			p = bi_parse(json, cut, err, sizeof(err));
			if (p)
				accepted++;
			bi_free(p);
		}
		ok(accepted == 0, "index: truncations rejected");
	}

	/* a newer format is told from damage */
	{
		const char *newer = "{\"format\": 7, \"database\": 5, \"backups\": \"?\"}";
		const char *other[] = {"[1]", "{\"format\": \"7\"}", "{\"format\": -2}",
		"{\"format\": 7.5}", "{\"format\": 7", "{}"};
		int			zeros = 0;

		ok(bi_parse(newer, strlen(newer), err, sizeof(err)) == NULL &&
		   bi_peek_format(newer, strlen(newer)) == 7,
		   "index: a newer format is refused, and its number read: %s", err);
		for (int i = 0; i < (int) (sizeof(other) / sizeof(other[0])); i++)
			zeros += bi_peek_format(other[i], strlen(other[i])) == 0;
		ok(bi_peek_format(json, strlen(json)) == BINDEX_FORMAT && zeros == 6,
		   "index: the format of anything else is 0");
	}
	free(json);
	bi_free(ix);
}

int
main(void)
{
	const char *env = getenv("AIBACKUP_TEST_BIG_MB");
	size_t		big_mb = env ? strtoul(env, NULL, 10) : 50;

	if (big_mb == 0)
		big_mb = 1;

	test_gzip_empty();
	test_gzip_small();
	test_gzip_big(big_mb * 1024 * 1024);
	test_gzip_bytewise();
	test_gzip_concat();
	test_gzip_corrupt();
	test_gzip_truncated();
	test_gzip_not_gzip();
	test_gzip_levels();
	test_gzip_sink_failure();
	test_gzip_members();
	test_gzip_thread_failure();
#ifdef AB_TEST_GZIP_THREADS_ONLY
	/* the ThreadSanitizer build: the tests that run the compressing thread */
	return done_testing();
#endif
	test_gzip_fuzz(3000);

	test_json();

	test_manifest_golden();
	test_manifest_roundtrip();
	test_manifest_reuse();
	test_manifest_pack();
	test_csv();
	test_manifest_partitioned();
	test_manifest_many();
	test_manifest_reject();
	test_manifest_fuzz(5000);

	test_backup_index();

	return done_testing();
}
