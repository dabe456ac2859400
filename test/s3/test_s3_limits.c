/*
 * test_s3_limits.c
 *		S3's limits and which failures belong to one object, against a real
 *		S3 server (Swift's s3api on 127.0.0.1, scripts/s3server.sh) and the
 *		fault proxy in front of it.
 *
 * This binary compiles the whole core with S3_MAX_PARTS = 3 (see the
 * Makefile), so that the part limit, 10000 parts of at least 5 MiB in
 * production, is reached with 15 MiB: the same code path, a smaller
 * number.  Nothing else in the core depends on it.  Output is TAP.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/s3.h"
#include "../unit/tap.h"

#if S3_MAX_PARTS != 3
#error "test_s3_limits must be built with -DS3_MAX_PARTS=3"
#endif

static char run_prefix[128];	/* unique per run: tests never see old data */

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
	cfg.retry_budget_ms = 2000;
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

/* no multipart upload of key is left, and no object */
static bool
nothing_left(S3Client *c, const char *key)
{
	FindUpload	f = {key, 0};
	char		prefix[200];
	S3Error		err;
	S3ObjectInfo info;
	bool		found = true;

	snprintf(prefix, sizeof(prefix), "%s/", run_prefix);
	return s3_list_multipart_uploads(c, prefix, find_upload, &f, &err) &&
		f.found == 0 &&
		s3_head_object(c, key, &found, &info, &err) && !found;
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

/* an object of exactly S3_MAX_PARTS parts fits; one byte more does not */
static void
test_part_limit(S3Client *c)
{
	const size_t part = S3_MIN_PART_SIZE;
	char	   *data = malloc(part);
	const char *key = key_of("three-parts.bin");
	S3Upload   *u;
	S3Error		err;
	S3ObjectInfo info;
	bool		found = false;
	bool		w = true;

	memset(data, 'a', part);
	u = s3_upload_begin(c, key, NULL, part, &err);
	for (int i = 0; i < S3_MAX_PARTS && w; i++)
		w = s3_upload_write(u, data, part, &err);
	ok(w && s3_upload_finish(u, &err) && s3_upload_parts(u) == S3_MAX_PARTS,
	   "an object of exactly %d parts completes (%d parts)", S3_MAX_PARTS,
	   s3_upload_parts(u));
	ok(s3_head_object(c, key, &found, &info, &err) && found &&
	   info.size == (int64_t) (S3_MAX_PARTS * part),
	   "S3 holds all of it (%lld bytes)", (long long) info.size);
	s3_upload_free(u);

	key = key_of("four-parts.bin");
	u = s3_upload_begin(c, key, NULL, part, &err);
	w = true;
	for (int i = 0; i < S3_MAX_PARTS && w; i++)
		w = s3_upload_write(u, data, part, &err);
	ok(w && s3_upload_parts(u) == S3_MAX_PARTS - 1,
	   "%d parts' worth is accepted, %d parts sent so far", S3_MAX_PARTS,
	   s3_upload_parts(u));
	ok(!s3_upload_write(u, data, 1, &err) && err.kind == S3ERR_LIMIT &&
	   s3_error_is_per_object(&err),
	   "the first byte beyond %d parts fails, as the object's own failure: %s",
	   S3_MAX_PARTS, err.message);
	ok(strstr(err.message, "more than 3 parts of 5 MiB") != NULL,
	   "the error says how many parts of what size");
	ok(nothing_left(c, key),
	   "the multipart upload is aborted at once: no upload and no object left");
	s3_upload_free(u);
	free(data);
}

/* S3's 1024 bytes are bytes of UTF-8, and the server agrees */
static void
test_key_limit(S3Client *c)
{
	char		key[S3_MAX_KEY_LEN + 8];
	size_t		n;
	S3Error		err;
	S3ObjectInfo info;
	bool		found = false;

	snprintf(key, sizeof(key), "%s/", run_prefix);
	n = strlen(key);
	while (n + 2 <= S3_MAX_KEY_LEN)
	{
		memcpy(key + n, "\xc3\xa9", 2); /* U+00E9 */
		n += 2;
	}
	while (n < S3_MAX_KEY_LEN)
		key[n++] = 'x';
	key[n] = '\0';
	ok(s3_put_object(c, key, "x", 1, NULL, &err) &&
	   s3_head_object(c, key, &found, &info, &err) && found,
	   "the server stores a key of exactly 1024 bytes of UTF-8");
	strcat(key, "y");
	ok(!s3_put_object(c, key, "x", 1, NULL, &err) && err.kind == S3ERR_LIMIT &&
	   err.attempts == 0 && strcmp(err.code, "KeyTooLongError") == 0 &&
	   s3_error_is_per_object(&err),
	   "one byte more is refused before sending, as the object's own failure");
}

/* what a real server answers, classified */
static void
test_server_answers(void)
{
	S3Client   *c = client_for(base_config(env("S3_HTTP_ENDPOINT")));
	S3Config	cfg;
	S3Client   *bad;
	S3Multipart *mp = NULL;
	char	   *small = calloc(1, 1024 * 1024);
	const char *key = key_of("too-small-parts.bin");
	S3Error		err;

	/* a part under 5 MiB that is not the last: the object's own */
	ok(s3_multipart_create(c, key, NULL, &mp, &err) &&
	   s3_multipart_upload_part(c, mp, small, 1024 * 1024, &err) &&
	   s3_multipart_upload_part(c, mp, small, 10, &err),
	   "two parts of 1 MiB and 10 bytes are uploaded");
	ok(mp && !s3_multipart_complete(c, mp, NULL, 0, &err) &&
	   strcmp(err.code, "EntityTooSmall") == 0 && s3_error_is_per_object(&err),
	   "completing them fails with EntityTooSmall (code '%s'), the object's own",
	   err.code);
	if (mp)
		s3_multipart_abort(c, mp, &err);
	s3_multipart_free(mp);
	free(small);
	s3_client_free(c);

	/* the settings' fault: every object would fail */
	cfg = base_config(env("S3_HTTP_ENDPOINT"));
	cfg.secret_key = "not-the-secret";
	bad = client_for(cfg);
	ok(!s3_put_object(bad, key_of("x"), "x", 1, NULL, &err) &&
	   strcmp(err.code, "SignatureDoesNotMatch") == 0 &&
	   !s3_error_is_per_object(&err),
	   "SignatureDoesNotMatch (code '%s') is not the object's", err.code);
	s3_client_free(bad);

	cfg = base_config(env("S3_HTTP_ENDPOINT"));
	cfg.bucket = "no-such-bucket-aibackup";
	bad = client_for(cfg);
	ok(!s3_put_object(bad, key_of("x"), "x", 1, NULL, &err) &&
	   strcmp(err.code, "NoSuchBucket") == 0 && !s3_error_is_per_object(&err),
	   "NoSuchBucket (code '%s') is not the object's", err.code);
	s3_client_free(bad);

	cfg = base_config("http://127.0.0.1:9");
	cfg.max_attempts = 2;
	bad = client_for(cfg);
	ok(!s3_put_object(bad, key_of("x"), "x", 1, NULL, &err) &&
	   err.kind == S3ERR_NETWORK && !s3_error_is_per_object(&err),
	   "an unreachable server is not the object's");
	s3_client_free(bad);
}

/* answers injected by the fault proxy, as a store with other limits gives them */
static void
test_injected_answers(void)
{
	const char *ep = getenv("S3_FAULT_ENDPOINT");
	S3Client   *c;
	S3Upload   *u;
	S3Error		err;
	char	   *data;
	const char *key = key_of("part-two-refused.bin");

	if (ep == NULL)
	{
		ok(0, "S3_FAULT_ENDPOINT is set");
		return;
	}
	c = client_for(base_config(ep));
	data = calloc(1, S3_MIN_PART_SIZE + 1);

	/* Swift's s3api with max_upload_part_num = 1 answers part 2 so */
	fault(NULL);
	ok(fault("{\"method\": \"PUT\", \"path\": \"part-two-refused.bin?partNumber=2\","
			 " \"action\": \"status\", \"status\": 400, \"code\": \"InvalidArgument\","
			 " \"message\": \"Part number must be an integer between 1 and 1, inclusive\","
			 " \"count\": -1}") == 0, "the proxy refuses part 2");
	u = s3_upload_begin(c, key, NULL, S3_MIN_PART_SIZE, &err);
	ok(s3_upload_write(u, data, S3_MIN_PART_SIZE + 1, &err) &&
	   !s3_upload_finish(u, &err) && strcmp(err.code, "InvalidArgument") == 0 &&
	   strcmp(err.op, "UploadPart") == 0 && s3_error_is_per_object(&err),
	   "InvalidArgument on part 2 fails the upload as the object's own (%s %s)",
	   err.op, err.code);
	ok(err.attempts == 1, "and is not retried (%d attempts)", err.attempts);
	s3_upload_free(u);
	fault(NULL);
	ok(nothing_left(c, key), "the refused upload is aborted");

	fault("{\"method\": \"PUT\", \"path\": \"denied.txt\", \"action\": \"status\","
		  " \"status\": 403, \"code\": \"AccessDenied\", \"count\": -1}");
	ok(!s3_put_object(c, key_of("denied.txt"), "x", 1, NULL, &err) &&
	   strcmp(err.code, "AccessDenied") == 0 && !s3_error_is_per_object(&err),
	   "AccessDenied is not the object's");

	fault("{\"method\": \"PUT\", \"path\": \"unavailable.txt\", \"action\": \"status\","
		  " \"status\": 503, \"count\": -1}");
	ok(!s3_put_object(c, key_of("unavailable.txt"), "x", 1, NULL, &err) &&
	   err.http_status == 503 && err.attempts > 1 && !s3_error_is_per_object(&err),
	   "503 after %d attempts is not the object's", err.attempts);
	fault(NULL);
	free(data);
	s3_client_free(c);
}

int
main(void)
{
	S3Client   *c;

	snprintf(run_prefix, sizeof(run_prefix), "limits-test-%ld-%d",
			 (long) time(NULL), (int) getpid());
	c = client_for(base_config(env("S3_HTTP_ENDPOINT")));
	test_part_limit(c);
	test_key_limit(c);
	s3_client_free(c);
	test_server_answers();
	test_injected_answers();
	return done_testing();
}
