/*
 * test_s3_client.c
 *		Integration tests of the pure-C S3 client against a real S3 server
 *		(OpenStack Swift's s3api on 127.0.0.1, started by scripts/s3server.sh)
 *		and, for faults, through scripts/faultproxy.py in front of it.
 *
 * Reads the server's coordinates from the environment that
 * scripts/s3server.sh writes (S3_HTTP_ENDPOINT, S3_HTTPS_ENDPOINT, ...),
 * plus S3_FAULT_ENDPOINT for the fault proxy.  Output is TAP.
 */
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/digest.h"
#include "core/s3.h"
#include "../unit/tap.h"

static const char *run_prefix;	/* unique per run: tests never see old data */

static const char *
env(const char *name)
{
	const char *v = getenv(name);

	if (v == NULL || v[0] == '\0')
	{
		printf("Bail out! %s is not set (source the s3server env file)\n", name);
		exit(1);
	}
	return v;
}

static S3Config
base_config(const char *endpoint)
{
	S3Config	cfg;

	memset(&cfg, 0, sizeof(cfg));
	cfg.endpoint = endpoint;
	cfg.region = env("S3_REGION");
	cfg.bucket = env("S3_BUCKET");
	cfg.path_style = true;
	cfg.access_key = env("S3_ACCESS_KEY");
	cfg.secret_key = env("S3_SECRET_KEY");
	cfg.verify_tls = true;
	cfg.retry_budget_ms = 20000;
	return cfg;
}

static S3Client *
client_for(S3Config cfg)
{
	S3Error		err;
	S3Client   *c = s3_client_new(&cfg, &err);

	if (c == NULL)
	{
		printf("Bail out! client: %s\n", err.message);
		exit(1);
	}
	return c;
}

static char *
key_of(const char *name)
{
	static char buf[8][512];
	static int	n = 0;
	char	   *b = buf[n++ % 8];

	snprintf(b, 512, "%s/%s", run_prefix, name);
	return b;
}

/* collects a GET into memory */
typedef struct Collect
{
	char	   *data;
	size_t		len;
	size_t		cap;
} Collect;

static int
collect_sink(void *arg, const void *data, size_t len)
{
	Collect    *c = arg;

	if (c->len + len > c->cap)
	{
		c->cap = (c->len + len) * 2;
		c->data = realloc(c->data, c->cap);
	}
	memcpy(c->data + c->len, data, len);
	c->len += len;
	return 0;
}

/* a deterministic pseudo-random, poorly compressible buffer */
static void
fill_pattern(unsigned char *p, size_t n, unsigned int seed)
{
	unsigned int x = seed ? seed : 1;

	for (size_t i = 0; i < n; i++)
	{
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		p[i] = (unsigned char) x;
	}
}

static void
md5_raw(const void *data, size_t len, unsigned char out[16])
{
	unsigned int n = 16;

	EVP_Digest(data, len, out, &n, EVP_md5(), NULL);
}

static int
count_entry(void *arg, const S3ListEntry *e)
{
	(*(int *) arg)++;
	return 0;
}

static int
count_prefix_entry(void *arg, const S3ListEntry *e)
{
	if (e->is_prefix)
		(*(int *) arg)++;
	return 0;
}

typedef struct FindUpload
{
	const char *key;
	int			found;
} FindUpload;

static int
find_upload(void *arg, const S3UploadEntry *e)
{
	FindUpload *f = arg;

	if (strcmp(e->key, f->key) == 0)
		f->found++;
	return 0;
}

static int
fault(const char *json)
{
	char		cmd[1024];
	const char *ep = getenv("S3_FAULT_ENDPOINT");

	if (ep == NULL)
		return -1;
	if (json)
		snprintf(cmd, sizeof(cmd),
				 "curl -s -f -o /dev/null -X POST -d '%s' %s/__fault__", json, ep);
	else
		snprintf(cmd, sizeof(cmd), "curl -s -f -o /dev/null -X DELETE %s/__fault__", ep);
	return system(cmd);
}

static int	interrupt_now = 0;

static int
abort_when_asked(void *arg)
{
	return interrupt_now;
}

static void
test_roundtrip(S3Client *c)
{
	const char *body = "id,name\n1,caf\xc3\xa9\n";
	const char *key = key_of("dir with space/t+able ~ caf\xc3\xa9%.csv");
	S3Error		err;
	S3ObjectInfo info;
	Collect		got = {0};
	bool		found = false;

	ok(s3_put_object(c, key, body, strlen(body), "text/csv", &err),
	   "put an object whose key has spaces, +, ~, %% and UTF-8");
	ok(s3_head_object(c, key, &found, &info, &err) && found &&
	   info.size == (int64_t) strlen(body),
	   "head finds it with the right size");
	ok(s3_get_object(c, key, collect_sink, &got, &info, &err) &&
	   got.len == strlen(body) && memcmp(got.data, body, got.len) == 0,
	   "get returns the same bytes");
	free(got.data);

	ok(s3_head_object(c, key_of("no-such-object"), &found, &info, &err) && !found,
	   "head of a missing key says not found without failing");
	memset(&got, 0, sizeof(got));
	ok(!s3_get_object(c, key_of("no-such-object"), collect_sink, &got, NULL, &err) &&
	   err.kind == S3ERR_NOT_FOUND && strcmp(err.code, "NoSuchKey") == 0 &&
	   err.http_status == 404,
	   "get of a missing key fails with NoSuchKey (got kind %d code '%s')",
	   err.kind, err.code);
	free(got.data);

	ok(s3_put_object(c, key_of("empty"), "", 0, NULL, &err) &&
	   s3_head_object(c, key_of("empty"), &found, &info, &err) && found &&
	   info.size == 0,
	   "a zero-byte object round-trips");
}

static void
test_list_and_delete(S3Client *c)
{
	enum
	{
	NKEYS = 1100};
	char	  **keys = calloc(NKEYS, sizeof(char *));
	char		prefix[600];
	S3Error		err;
	int			n = 0;
	int			np = 0;
	bool		all = true;

	snprintf(prefix, sizeof(prefix), "%s/many/", run_prefix);
	for (int i = 0; i < NKEYS && all; i++)
	{
		keys[i] = malloc(700);
		snprintf(keys[i], 700, "%s%s/k%05d", prefix, i % 2 ? "odd" : "even", i);
		all = s3_put_object(c, keys[i], "x", 1, NULL, &err);
	}
	ok(all, "put %d small objects", NKEYS);
	ok(s3_list_objects(c, prefix, NULL, count_entry, &n, &err) && n == NKEYS,
	   "ListObjectsV2 pages through all %d keys (saw %d)", NKEYS, n);
	ok(s3_list_objects(c, prefix, "/", count_prefix_entry, &np, &err) && np == 2,
	   "a delimiter groups keys into common prefixes (saw %d)", np);
	ok(s3_delete_objects(c, (const char *const *) keys, NKEYS, &err),
	   "DeleteObjects removes them in batches of 1000");
	n = 0;
	ok(s3_list_objects(c, prefix, NULL, count_entry, &n, &err) && n == 0,
	   "nothing is left under the prefix (saw %d)", n);
	for (int i = 0; i < NKEYS; i++)
		free(keys[i]);
	free(keys);
}

static void
test_multipart(S3Client *c)
{
	const size_t total = 100 * 1024 * 1024 + 12345;
	const size_t part = 8 * 1024 * 1024;
	unsigned char *data = malloc(total);
	const char *key = key_of("big.bin");
	S3Upload   *u;
	S3Error		err;
	S3ObjectInfo info;
	bool		found;
	bool		w = true;
	unsigned char md5s[16 * 32];
	unsigned char etag_md5[16];
	char		want_etag[64];
	int			nparts = 0;
	char		want_sha[DIGEST_SHA256_HEX];
	char		got_sha[DIGEST_SHA256_HEX];
	Collect		got = {0};

	fill_pattern(data, total, 42);
	u = s3_upload_begin(c, key, "application/octet-stream", part, &err);
	/* feed it in odd-sized pieces, as COPY would */
	for (size_t off = 0; off < total && w; off += 777777)
	{
		size_t		n = total - off < 777777 ? total - off : 777777;

		w = s3_upload_write(u, data + off, n, &err);
	}
	ok(w && s3_upload_finish(u, &err), "a 100 MB streaming upload completes");
	ok(s3_upload_parts(u) == 13, "it went as 13 equal parts of 8 MiB (%d)",
	   s3_upload_parts(u));
	ok(s3_upload_bytes_sent(u) == (int64_t) total, "every byte was sent");
	s3_upload_free(u);

	for (size_t off = 0; off < total; off += part, nparts++)
		md5_raw(data + off, total - off < part ? total - off : part,
				md5s + 16 * nparts);
	md5_raw(md5s, 16 * nparts, etag_md5);
	for (int i = 0; i < 16; i++)
		sprintf(want_etag + 2 * i, "%02x", etag_md5[i]);
	sprintf(want_etag + 32, "-%d", nparts);
	ok(s3_head_object(c, key, &found, &info, &err) && found &&
	   info.size == (int64_t) total,
	   "the object has the full size (%lld)", (long long) info.size);
	is_str(info.etag, want_etag, "its ETag is the multipart MD5-of-MD5s");

	ok(s3_get_object(c, key, collect_sink, &got, NULL, &err) &&
	   got.len == total, "it downloads whole");
	digest_sha256_hex(data, total, want_sha);
	digest_sha256_hex(got.data ? got.data : "", got.len, got_sha);
	is_str(got_sha, want_sha, "the downloaded bytes are the uploaded bytes");
	free(got.data);

	/* small object: one PUT, no multipart */
	u = s3_upload_begin(c, key_of("small.bin"), NULL, part, &err);
	ok(s3_upload_write(u, data, 1000, &err) && s3_upload_finish(u, &err) &&
	   s3_head_object(c, key_of("small.bin"), &found, &info, &err) &&
	   strchr(info.etag, '-') == NULL,
	   "an object that fits one part is a single PUT (ETag %s)", info.etag);
	s3_upload_free(u);

	/* exactly one part's worth stays a single PUT */
	u = s3_upload_begin(c, key_of("onepart.bin"), NULL, S3_MIN_PART_SIZE, &err);
	ok(s3_upload_write(u, data, S3_MIN_PART_SIZE, &err) &&
	   s3_upload_finish(u, &err) && s3_upload_parts(u) == 1,
	   "an object of exactly one part size is a single PUT");
	s3_upload_free(u);
	free(data);
}

static void
test_abort(S3Client *c)
{
	S3Multipart *mp = NULL;
	S3Error		err;
	const char *key = key_of("aborted.bin");
	char	   *part = calloc(1, S3_MIN_PART_SIZE);
	FindUpload	f = {key, 0};
	S3Upload   *u;
	char		prefix[600];
	bool		found = true;
	S3ObjectInfo info;

	snprintf(prefix, sizeof(prefix), "%s/", run_prefix);
	ok(s3_multipart_create(c, key, NULL, &mp, &err) &&
	   s3_multipart_upload_part(c, mp, part, S3_MIN_PART_SIZE, &err),
	   "start a multipart upload with one part");
	ok(s3_list_multipart_uploads(c, prefix, find_upload, &f, &err) && f.found == 1,
	   "ListMultipartUploads shows it");
	ok(s3_multipart_abort(c, mp, &err), "abort it");
	f.found = 0;
	ok(s3_list_multipart_uploads(c, prefix, find_upload, &f, &err) && f.found == 0,
	   "after abort no upload is listed");
	s3_multipart_free(mp);

	mp = calloc(1, sizeof(S3Multipart));
	mp->key = strdup(key);
	mp->upload_id = strdup("x");
	ok(!s3_multipart_complete(c, mp, NULL, 0, &err),
	   "completing with zero parts is refused locally");
	s3_multipart_free(mp);

	/* an upload dropped half way is aborted by free */
	u = s3_upload_begin(c, key_of("dropped.bin"), NULL, S3_MIN_PART_SIZE, &err);
	s3_upload_write(u, part, S3_MIN_PART_SIZE, &err);
	s3_upload_write(u, part, 10, &err); /* forces part 1 out */
	s3_upload_free(u);
	f.key = key_of("dropped.bin");
	f.found = 0;
	ok(s3_list_multipart_uploads(c, prefix, find_upload, &f, &err) && f.found == 0 &&
	   s3_head_object(c, f.key, &found, &info, &err) && !found,
	   "an unfinished streaming upload leaves no upload and no object");
	free(part);
}

static void
test_bad_secret(void)
{
	S3Config	cfg = base_config(env("S3_HTTP_ENDPOINT"));
	const char *secret = "not-the-Secret-0123456789";
	S3Client   *c;
	S3Error		err;
	char		msg[1024];

	cfg.secret_key = secret;
	c = client_for(cfg);
	ok(!s3_put_object(c, key_of("x"), "x", 1, NULL, &err) &&
	   strcmp(err.code, "SignatureDoesNotMatch") == 0 && err.http_status == 403,
	   "a wrong secret fails with SignatureDoesNotMatch (code '%s')", err.code);
	ok(err.attempts == 1, "a 403 is not retried (attempts %d)", err.attempts);
	s3_error_format(&err, msg, sizeof(msg));
	ok(strstr(msg, "SignatureDoesNotMatch") != NULL && strstr(msg, secret) == NULL &&
	   strstr(msg, "Signature=") == NULL,
	   "the error names the code and holds no secret or signature: %s", msg);
	s3_client_free(c);
}

static void
test_tls(void)
{
	S3Config	cfg = base_config(env("S3_HTTPS_ENDPOINT"));
	S3Client   *c;
	S3Error		err;
	bool		found;
	S3ObjectInfo info;

	cfg.ca_file = "/nonexistent/none.crt";
	c = client_for(cfg);
	ok(!s3_head_object(c, key_of("x"), &found, &info, &err) &&
	   err.kind == S3ERR_NETWORK && strstr(err.message, "TLS") != NULL &&
	   err.attempts == 1,
	   "an unreadable CA file refuses the connection at once: %s", err.message);
	s3_client_free(c);

	cfg.ca_file = env("S3_OTHER_CA_FILE");
	c = client_for(cfg);
	ok(!s3_head_object(c, key_of("x"), &found, &info, &err) &&
	   err.kind == S3ERR_NETWORK && strstr(err.message, "TLS") != NULL,
	   "a certificate from an untrusted CA is refused: %s", err.message);
	s3_client_free(c);

	cfg.ca_file = env("S3_CA_FILE");
	c = client_for(cfg);
	ok(s3_put_object(c, key_of("tls.txt"), "hello", 5, NULL, &err) &&
	   s3_head_object(c, key_of("tls.txt"), &found, &info, &err) && found,
	   "with the server's CA as ca_file, HTTPS works");
	s3_client_free(c);

	cfg.ca_file = NULL;
	cfg.verify_tls = false;
	c = client_for(cfg);
	ok(s3_head_object(c, key_of("tls.txt"), &found, &info, &err) && found,
	   "verify_tls off accepts the certificate");
	s3_client_free(c);
}

static void
test_faults(void)
{
	const char *ep = getenv("S3_FAULT_ENDPOINT");
	S3Config	cfg;
	S3Client   *c;
	S3Error		err;
	Collect		got = {0};
	unsigned char *data;
	const size_t n = 3 * 1024 * 1024;
	time_t		t0;

	if (ep == NULL)
	{
		ok(0, "S3_FAULT_ENDPOINT is set");
		return;
	}
	cfg = base_config(ep);
	cfg.abort_cb = abort_when_asked;
	c = client_for(cfg);

	fault(NULL);
	ok(fault("{\"match\": \"PUT\", \"action\": \"status\", \"status\": 503, \"count\": 2}") == 0 &&
	   s3_put_object(c, key_of("retry.txt"), "abc", 3, NULL, &err),
	   "two 503 SlowDown answers are retried and the PUT succeeds");

	fault(NULL);
	fault("{\"match\": \"PUT\", \"action\": \"reset\", \"count\": 1}");
	ok(s3_put_object(c, key_of("retry2.txt"), "abc", 3, NULL, &err),
	   "a reset connection is retried");

	fault(NULL);
	fault("{\"match\": \"PUT\", \"action\": \"status\", \"status\": 500, \"count\": 100}");
	ok(!s3_put_object(c, key_of("retry3.txt"), "abc", 3, NULL, &err) &&
	   err.http_status == 500 && err.attempts > 1,
	   "persistent 500s give up after %d attempts", err.attempts);

	fault(NULL);
	data = malloc(n);
	fill_pattern(data, n, 7);
	s3_put_object(c, key_of("resume.bin"), data, n, NULL, &err);
	fault("{\"match\": \"GET\", \"action\": \"cut_response\", \"bytes\": 1000000, \"count\": 1}");
	ok(s3_get_object(c, key_of("resume.bin"), collect_sink, &got, NULL, &err) &&
	   got.len == n && memcmp(got.data, data, n) == 0,
	   "a download cut after 1 MB resumes with Range and is byte-identical (%zu bytes)",
	   got.len);
	free(got.data);
	free(data);

	fault(NULL);
	fault("{\"match\": \"PUT\", \"action\": \"delay\", \"seconds\": 30, \"count\": 1}");
	t0 = time(NULL);
	interrupt_now = 1;			/* already pending: must stop at once */
	ok(!s3_put_object(c, key_of("slow.txt"), "abc", 3, NULL, &err) &&
	   err.kind == S3ERR_INTERRUPTED && time(NULL) - t0 <= 2,
	   "a pending interrupt cancels a hung request within a second or two");
	interrupt_now = 0;
	fault(NULL);
	s3_client_free(c);
}

/*
 * Without MD5 (a FIPS-mode OpenSSL, or s3_checksum = sha256): uploads carry
 * only the signed SHA-256, and Swift, which insists on Content-MD5 for
 * DeleteObjects, gets the keys deleted one by one.
 */
static void
test_sha256_only(void)
{
	S3Config	cfg = base_config(env("S3_HTTP_ENDPOINT"));
	S3Client   *c;
	S3Error		err;
	char	   *keys[3];
	char		prefix[600];
	unsigned char body[70000];
	int			n = 0;

	cfg.checksum = S3CHECKSUM_SHA256;
	c = client_for(cfg);
	snprintf(prefix, sizeof(prefix), "%s/sha256/", run_prefix);
	fill_pattern(body, sizeof(body), 7);
	for (int i = 0; i < 3; i++)
	{
		keys[i] = malloc(700);
		snprintf(keys[i], 700, "%sk%d", prefix, i);
	}
	ok(s3_put_object(c, keys[0], body, sizeof(body), NULL, &err) &&
	   s3_put_object(c, keys[1], "x", 1, NULL, &err) &&
	   s3_put_object(c, keys[2], "", 0, NULL, &err),
	   "sha256 only: PutObject works without Content-MD5");
	ok(s3_delete_objects(c, (const char *const *) keys, 3, &err),
	   "sha256 only: deleting works on a store that wants Content-MD5 for DeleteObjects (%s)",
	   err.message);
	ok(s3_list_objects(c, prefix, NULL, count_entry, &n, &err) && n == 0,
	   "sha256 only: nothing is left (saw %d)", n);
	for (int i = 0; i < 3; i++)
		free(keys[i]);
	s3_client_free(c);
}

/* CopyObject: exact bytes, a key that needs encoding, the ETag condition */
static void
test_copy(S3Client *c)
{
	const char *body = "id,name\n1,caf\xc3\xa9\n2,x\n";
	const char *src = key_of("copy src/t+a ~ caf\xc3\xa9%.csv.gz");
	const char *dst = key_of("copy dst/t.csv.gz");
	const size_t total = 12 * 1024 * 1024 + 7;
	unsigned char *big = malloc(total);
	char		etag[80] = "";
	char		copy_etag[80] = "";
	char		big_etag[80] = "";
	S3Error		err;
	S3Upload   *u;
	Collect		got = {0};

	ok(s3_put_object_etag(c, src, body, strlen(body), "application/gzip",
						  etag, sizeof(etag), &err) && etag[0] != '\0',
	   "a PUT gives the object's ETag (%s)", etag);
	ok(s3_copy_object(c, src, etag, dst, copy_etag, sizeof(copy_etag), &err) &&
	   copy_etag[0] != '\0',
	   "CopyObject copies while the source's ETag matches (%s)", copy_etag);
	ok(s3_get_object(c, dst, collect_sink, &got, NULL, &err) &&
	   got.len == strlen(body) && memcmp(got.data, body, got.len) == 0,
	   "the copy holds the same bytes");
	free(got.data);
	ok(!s3_copy_object(c, src, "0123456789abcdef0123456789abcdef", dst,
					   copy_etag, sizeof(copy_etag), &err) &&
	   err.http_status == 412,
	   "CopyObject refuses a source whose ETag changed (HTTP %ld)",
	   err.http_status);
	ok(!s3_copy_object(c, key_of("no such source"), etag, dst, copy_etag,
					   sizeof(copy_etag), &err) &&
	   (err.kind == S3ERR_NOT_FOUND || err.http_status == 412),
	   "CopyObject of a missing source fails as not found (kind %d, HTTP %ld)",
	   err.kind, err.http_status);

	/* a multipart source: the copy is whole, and the ETag names the parts */
	for (size_t i = 0; i < total; i++)
		big[i] = (unsigned char) (i * 7 + i / 4096);
	u = s3_upload_begin(c, src, "application/gzip", 5 * 1024 * 1024, &err);
	ok(u != NULL && s3_upload_write(u, big, total, &err) &&
	   s3_upload_finish(u, &err) && strstr(s3_upload_etag(u), "-3") != NULL,
	   "a 3-part upload's ETag is the multipart one (%s)",
	   u ? s3_upload_etag(u) : "");
	if (u)
		snprintf(big_etag, sizeof(big_etag), "%s", s3_upload_etag(u));
	s3_upload_free(u);
	memset(&got, 0, sizeof(got));
	ok(s3_copy_object(c, src, big_etag, dst, copy_etag, sizeof(copy_etag),
					  &err) &&
	   s3_get_object(c, dst, collect_sink, &got, NULL, &err) &&
	   got.len == total && memcmp(got.data, big, total) == 0,
	   "CopyObject of a multipart object copies all of it");
	free(got.data);
	ok(!s3_copy_object(c, src, "0123456789abcdef0123456789abcdef-3", dst,
					   copy_etag, sizeof(copy_etag), &err) &&
	   err.http_status == 412,
	   "... and refuses one whose multipart ETag changed (HTTP %ld)",
	   err.http_status);
	free(big);
}

/* read a whole object through a reader; false with *err on failure */
static bool
read_all(S3Client *c, const char *key, size_t chunk, bool prefetch,
		 Collect *got, bool *threaded, S3Error *err)
{
	bool		found = false;
	S3Reader   *r = s3_reader_open_opt(c, key, chunk, prefetch, &found, err);
	bool		good = r != NULL;

	memset(got, 0, sizeof(*got));
	while (good)
	{
		const void *data;
		size_t		len;

		good = s3_reader_next(r, &data, &len, err);
		if (!good || len == 0)
			break;
		collect_sink(got, data, len);
	}
	if (threaded)
		*threaded = s3_reader_prefetching(r);
	s3_reader_free(r);
	return good;
}

static long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#define READER_CHUNK	(256 * 1024)

/* the reader, with and without prefetch: the same bytes, object by object */
static void
test_reader(S3Client *c)
{
	const size_t sizes[] = {0, 1, READER_CHUNK, READER_CHUNK + 1,
	10 * READER_CHUNK + 123};
	const size_t max = 10 * READER_CHUNK + 123;
	unsigned char *data = malloc(max);
	S3Error		err;

	fill_pattern(data, max, 11);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
	{
		size_t		n = sizes[i];
		char		name[64];
		const char *key;
		Collect		got;
		bool		threaded = false;
		bool		ranges = n > READER_CHUNK;

		snprintf(name, sizeof(name), "reader/%zu.bin", n);
		key = key_of(name);
		ok(s3_put_object(c, key, data, n, NULL, &err),
		   "reader: put an object of %zu bytes", n);
		for (int prefetch = 1; prefetch >= 0; prefetch--)
		{
			bool		good = read_all(c, key, READER_CHUNK, prefetch, &got,
										&threaded, &err);

			ok(good && got.len == n && (n == 0 || memcmp(got.data, data, n) == 0),
			   "reader%s: %zu bytes read back identical (got %zu%s%s)",
			   prefetch ? " with prefetch" : " without prefetch", n, got.len,
			   good ? "" : ", failed: ", good ? "" : err.message);
			ok(threaded == (prefetch && ranges),
			   "reader%s: %zu bytes %s the thread",
			   prefetch ? " with prefetch" : " without prefetch", n,
			   prefetch && ranges ? "start" : "do not start");
			free(got.data);
		}
	}

	/* an object changed between ranges fails with 412, not spliced */
	{
		const char *key = key_of("reader/changing.bin");
		bool		found = false;
		S3Reader   *r;
		const void *d;
		size_t		len = 0;
		bool		good;
		int			ranges = 0;

		s3_put_object(c, key, data, max, NULL, &err);
		r = s3_reader_open(c, key, READER_CHUNK, &found, &err);
		good = r != NULL && s3_reader_next(r, &d, &len, &err) && len > 0;
		ok(good, "reader: the first range of an object about to change");
		data[0] ^= 0xff;
		ok(s3_put_object(c, key, data, max, NULL, &err),
		   "reader: the object is replaced (same size, other bytes)");
		data[0] ^= 0xff;
		while (good && len > 0)
		{
			good = s3_reader_next(r, &d, &len, &err);
			ranges++;
		}
		ok(!good && err.http_status == 412,
		   "reader with prefetch: a later range fails with HTTP 412 (after %d more, HTTP %ld: %s)",
		   ranges, err.http_status, err.message);
		s3_reader_free(r);
	}
	free(data);
}

/*
 * The reader's thread against the fault proxy: a failure of the range it
 * fetched is reported by the call that asks for it, as without prefetch; a
 * range it is stuck on is abandoned by free and by the caller's abort
 * callback, promptly.
 */
static void
test_reader_faults(void)
{
	const char *ep = getenv("S3_FAULT_ENDPOINT");
	const size_t n = 4 * READER_CHUNK + 5;
	unsigned char *data;
	const char *key = key_of("reader/faults.bin");
	S3Config	cfg;
	S3Client   *c;
	S3Error		err;
	S3Error		errs[2];
	S3Reader   *r;
	bool		found;
	const void *d;
	size_t		len;
	Collect		got = {0};
	long		t0;
	bool		good;

	if (ep == NULL)
	{
		ok(0, "S3_FAULT_ENDPOINT is set");
		return;
	}
	cfg = base_config(ep);
	cfg.abort_cb = abort_when_asked;
	c = client_for(cfg);
	data = malloc(n);
	fill_pattern(data, n, 5);
	fault(NULL);
	ok(s3_put_object(c, key, data, n, NULL, &err),
	   "reader faults: put a 4-range object");

	/* the second range refused: the same error with and without prefetch */
	for (int prefetch = 1; prefetch >= 0; prefetch--)
	{
		const char *how = prefetch ? "with prefetch" : "without prefetch";

		fault(NULL);
		fault("{\"match\": \"GET\", \"skip\": 1, \"action\": \"status\", \"status\": 403, \"code\": \"AccessDenied\", \"count\": 1}");
		r = s3_reader_open_opt(c, key, READER_CHUNK, prefetch, &found, &err);
		good = r != NULL && s3_reader_next(r, &d, &len, &err) &&
			len == READER_CHUNK && memcmp(d, data, len) == 0;
		ok(good, "reader %s: the first range comes", how);
		memset(&errs[prefetch], 0, sizeof(S3Error));
		ok(good && !s3_reader_next(r, &d, &len, &errs[prefetch]) &&
		   errs[prefetch].http_status == 403 &&
		   strcmp(errs[prefetch].code, "AccessDenied") == 0,
		   "reader %s: the second call fails with the second range's 403 (%ld %s)",
		   how, errs[prefetch].http_status, errs[prefetch].code);

		/* the next call fetches that range again, and the rest follows */
		memset(&got, 0, sizeof(got));
		collect_sink(&got, data, READER_CHUNK);
		while (good && (good = s3_reader_next(r, &d, &len, &err)) && len > 0)
			collect_sink(&got, d, len);
		ok(good && got.len == n && memcmp(got.data, data, n) == 0,
		   "reader %s: after the failure the range is tried again and the object reads whole",
		   how);
		free(got.data);
		s3_reader_free(r);
	}
	ok(errs[0].kind == errs[1].kind && errs[0].http_status == errs[1].http_status &&
	   errs[0].attempts == errs[1].attempts &&
	   strcmp(errs[0].op, errs[1].op) == 0 && strcmp(errs[0].key, errs[1].key) == 0 &&
	   strcmp(errs[0].code, errs[1].code) == 0 &&
	   strcmp(errs[0].message, errs[1].message) == 0,
	   "reader: the error is the same with and without prefetch");

	/* freed while the thread waits for a range that hangs */
	fault(NULL);
	fault("{\"match\": \"GET\", \"skip\": 1, \"action\": \"delay\", \"seconds\": 30, \"count\": 1}");
	r = s3_reader_open(c, key, READER_CHUNK, &found, &err);
	good = r != NULL && s3_reader_next(r, &d, &len, &err) && len == READER_CHUNK;
	ok(good && s3_reader_prefetching(r),
	   "reader: the first range comes and the thread fetches the second");
	usleep(300 * 1000);
	t0 = now_ms();
	s3_reader_free(r);
	ok(now_ms() - t0 < 2500,
	   "reader: freeing it mid-stream, the thread busy, returns (in %ld ms)",
	   now_ms() - t0);

	/* the caller's abort callback fires while it waits for the thread */
	fault(NULL);
	fault("{\"match\": \"GET\", \"skip\": 1, \"action\": \"delay\", \"seconds\": 30, \"count\": 1}");
	r = s3_reader_open(c, key, READER_CHUNK, &found, &err);
	good = r != NULL && s3_reader_next(r, &d, &len, &err) && len == READER_CHUNK;
	usleep(300 * 1000);
	interrupt_now = 1;
	t0 = now_ms();
	ok(good && !s3_reader_next(r, &d, &len, &err) &&
	   err.kind == S3ERR_INTERRUPTED && now_ms() - t0 < 2500,
	   "reader: a cancel while waiting for the thread fails with S3ERR_INTERRUPTED (kind %d, in %ld ms)",
	   err.kind, now_ms() - t0);
	interrupt_now = 0;
	fault(NULL);
	memset(&got, 0, sizeof(got));
	collect_sink(&got, data, READER_CHUNK);
	while (good && (good = s3_reader_next(r, &d, &len, &err)) && len > 0)
		collect_sink(&got, d, len);
	ok(good && got.len == n && memcmp(got.data, data, n) == 0,
	   "reader: after the cancel the rest reads whole");
	free(got.data);
	s3_reader_free(r);

	/* a cancel already pending when the thread is stuck: no waiting */
	fault("{\"match\": \"GET\", \"skip\": 1, \"action\": \"delay\", \"seconds\": 30, \"count\": 1}");
	r = s3_reader_open(c, key, READER_CHUNK, &found, &err);
	good = r != NULL && s3_reader_next(r, &d, &len, &err);
	interrupt_now = 1;
	t0 = now_ms();
	ok(good && !s3_reader_next(r, &d, &len, &err) &&
	   err.kind == S3ERR_INTERRUPTED && now_ms() - t0 < 2500,
	   "reader: a pending cancel stops the wait promptly (in %ld ms)",
	   now_ms() - t0);
	interrupt_now = 0;
	s3_reader_free(r);
	fault(NULL);
	free(data);
	s3_client_free(c);
}

int
main(void)
{
	S3Client   *c;
	static char prefix[128];

	snprintf(prefix, sizeof(prefix), "client-test-%ld-%d", (long) time(NULL), (int) getpid());
	run_prefix = prefix;
	c = client_for(base_config(env("S3_HTTP_ENDPOINT")));

	test_reader(c);
	test_reader_faults();
#ifdef AB_TEST_READER_ONLY
	/* the ThreadSanitizer build: the tests that run the reader's thread */
	s3_client_free(c);
	return done_testing();
#endif
	test_roundtrip(c);
	test_list_and_delete(c);
	test_multipart(c);
	test_copy(c);
	test_abort(c);
	test_bad_secret();
	test_tls();
	test_faults();
	test_sha256_only();
	s3_client_free(c);
	return done_testing();
}
