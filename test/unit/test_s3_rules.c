/*
 * test_s3_rules.c
 *		Unit tests of the S3 client's pure rules: retry classification, which
 *		failures belong to one object, S3's limits checked before sending,
 *		part sizing, endpoint parsing, error formatting and presigned URLs.
 *		No server involved (a client pointed at a closed port shows whether
 *		a request was sent at all).
 */
#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

#include "core/s3.h"
#include "core/s3_internal.h"
#include "tap.h"

static void
test_retry(void)
{
	ok(s3_is_retryable(0, 500, ""), "500 is retried");
	ok(s3_is_retryable(0, 503, "SlowDown"), "503 SlowDown is retried");
	ok(s3_is_retryable(0, 429, ""), "429 is retried");
	ok(s3_is_retryable(0, 408, ""), "408 is retried");
	ok(s3_is_retryable(0, 400, "RequestTimeout"), "400 RequestTimeout is retried");
	ok(!s3_is_retryable(0, 400, "InvalidArgument"), "other 400s are not");
	ok(!s3_is_retryable(0, 400, "EntityTooSmall"), "EntityTooSmall is not");
	ok(!s3_is_retryable(0, 403, "SignatureDoesNotMatch"), "403 is not retried");
	ok(!s3_is_retryable(0, 403, "RequestTimeTooSkewed"), "a skewed clock is not retried");
	ok(!s3_is_retryable(0, 404, "NoSuchKey"), "404 is not retried");
	ok(!s3_is_retryable(0, 412, "PreconditionFailed"), "412 is not retried");
	ok(s3_is_retryable(0, 200, "InternalError"),
	   "a 200 carrying <Error>InternalError is retried");
	ok(!s3_is_retryable(0, 200, "InvalidPart"), "a 200 carrying InvalidPart is not");
	ok(s3_is_retryable(CURLE_COULDNT_CONNECT, 0, ""), "connection refused is retried");
	ok(s3_is_retryable(CURLE_OPERATION_TIMEDOUT, 0, ""), "a timeout (stall) is retried");
	ok(s3_is_retryable(CURLE_RECV_ERROR, 0, ""), "a reset while reading is retried");
	ok(s3_is_retryable(CURLE_SEND_ERROR, 0, ""), "a reset while sending is retried");
	ok(s3_is_retryable(CURLE_GOT_NOTHING, 0, ""), "an empty answer is retried");
	ok(s3_is_retryable(CURLE_PARTIAL_FILE, 0, ""), "a cut body is retried");
	ok(!s3_is_retryable(CURLE_PEER_FAILED_VERIFICATION, 0, ""),
	   "a certificate that fails verification is not retried");
	ok(!s3_is_retryable(CURLE_ABORTED_BY_CALLBACK, 0, ""), "a cancel is not retried");
	ok(!s3_is_retryable(CURLE_URL_MALFORMAT, 0, ""), "a bad URL is not retried");
}

/* an S3Error as s3_request() leaves it after an answer */
static S3Error
answer(const char *op, long status, const char *code)
{
	S3Error		err;

	memset(&err, 0, sizeof(err));
	err.kind = status == 404 && strcmp(code, "NoSuchBucket") != 0 ?
		S3ERR_NOT_FOUND : S3ERR_HTTP;
	snprintf(err.op, sizeof(err.op), "%s", op);
	snprintf(err.code, sizeof(err.code), "%s", code);
	err.http_status = status;
	err.attempts = 1;
	return err;
}

static S3Error
local(S3ErrorKind kind)
{
	S3Error		err;

	memset(&err, 0, sizeof(err));
	err.kind = kind;
	snprintf(err.op, sizeof(err.op), "PutObject");
	return err;
}

static void
test_per_object(void)
{
	S3Error		e;

	/* the object's own: the same on every run, harmless to other objects */
	e = local(S3ERR_LIMIT);
	ok(s3_error_is_per_object(&e), "a limit checked before sending is the object's");
	e = answer("PutObject", 400, "KeyTooLongError");
	ok(s3_error_is_per_object(&e), "KeyTooLongError is the object's");
	e = answer("UploadPart", 400, "EntityTooLarge");
	ok(s3_error_is_per_object(&e), "EntityTooLarge is the object's");
	e = answer("CompleteMultipartUpload", 400, "EntityTooSmall");
	ok(s3_error_is_per_object(&e), "EntityTooSmall is the object's");
	e = answer("CompleteMultipartUpload", 400, "InvalidPart");
	ok(s3_error_is_per_object(&e), "InvalidPart (R2's unequal parts) is the object's");
	e = answer("CompleteMultipartUpload", 200, "InvalidPartOrder");
	ok(s3_error_is_per_object(&e), "InvalidPartOrder inside a 200 is the object's");
	e = answer("UploadPart", 404, "NoSuchUpload");
	ok(s3_error_is_per_object(&e), "NoSuchUpload (aborted under us) is the object's");
	e = answer("UploadPart", 400, "InvalidArgument");
	ok(s3_error_is_per_object(&e),
	   "InvalidArgument on a part (part number beyond the store's limit) is the object's");
	e = answer("UploadPart", 413, "");
	ok(s3_error_is_per_object(&e), "413 from a proxy is the object's");
	e = answer("PutObject", 414, "");
	ok(s3_error_is_per_object(&e), "414 from a proxy is the object's");

	/* S3's or the settings': every other object would fail the same way */
	e = answer("PutObject", 400, "InvalidArgument");
	ok(!s3_error_is_per_object(&e), "InvalidArgument elsewhere is not the object's");
	e = answer("PutObject", 403, "AccessDenied");
	ok(!s3_error_is_per_object(&e), "AccessDenied is not the object's");
	e = answer("PutObject", 403, "SignatureDoesNotMatch");
	ok(!s3_error_is_per_object(&e), "SignatureDoesNotMatch is not the object's");
	e = answer("PutObject", 403, "InvalidAccessKeyId");
	ok(!s3_error_is_per_object(&e), "InvalidAccessKeyId is not the object's");
	e = answer("PutObject", 403, "RequestTimeTooSkewed");
	ok(!s3_error_is_per_object(&e), "RequestTimeTooSkewed is not the object's");
	e = answer("PutObject", 404, "NoSuchBucket");
	ok(!s3_error_is_per_object(&e), "NoSuchBucket is not the object's");
	e = answer("PutObject", 301, "PermanentRedirect");
	ok(!s3_error_is_per_object(&e), "a wrong region is not the object's");
	e = answer("PutObject", 400, "AuthorizationHeaderMalformed");
	ok(!s3_error_is_per_object(&e), "AuthorizationHeaderMalformed is not the object's");
	e = answer("UploadPart", 500, "InternalError");
	ok(!s3_error_is_per_object(&e), "500 is not the object's");
	e = answer("UploadPart", 503, "SlowDown");
	ok(!s3_error_is_per_object(&e), "503 SlowDown is not the object's");
	e = answer("PutObject", 400, "");
	ok(!s3_error_is_per_object(&e), "a 400 without a code is not the object's");
	e = answer("CompleteMultipartUpload", 200, "InternalError");
	ok(!s3_error_is_per_object(&e), "InternalError inside a 200 is not the object's");
	e = local(S3ERR_NETWORK);
	ok(!s3_error_is_per_object(&e), "network errors and timeouts are not the object's");
	e = local(S3ERR_INTERRUPTED);
	ok(!s3_error_is_per_object(&e), "a cancel is not the object's");
	e = local(S3ERR_OOM);
	ok(!s3_error_is_per_object(&e), "out of memory is not the object's");
	e = local(S3ERR_PROTOCOL);
	ok(!s3_error_is_per_object(&e), "an answer that makes no sense is not the object's");
	e = local(S3ERR_CONFIG);
	ok(!s3_error_is_per_object(&e), "bad settings are not the object's");
}

/* a client for a closed port: a request that is sent fails as S3ERR_NETWORK */
static S3Client *
unreachable_client(void)
{
	S3Config	cfg;
	S3Error		err;

	memset(&cfg, 0, sizeof(cfg));
	cfg.endpoint = "http://127.0.0.1:9";
	cfg.region = "us-east-1";
	cfg.bucket = "b";
	cfg.path_style = true;
	cfg.access_key = "AKIDEXAMPLE";
	cfg.secret_key = "secret";
	cfg.max_attempts = 1;
	cfg.connect_timeout_ms = 2000;
	return s3_client_new(&cfg, &err);
}

static void
test_limits(void)
{
	S3Client   *c = unreachable_client();
	char		key[S3_MAX_KEY_LEN + 2];
	S3Error		err;
	S3Upload   *u;
	static const char byte = 'x';

	if (c == NULL)
	{
		ok(0, "a client for a closed port");
		return;
	}

	/* 339 three-byte characters and 8 ASCII bytes: 1025 bytes, 347 characters */
	key[0] = '\0';
	for (int i = 0; i < 339; i++)
		strcat(key, "\xe2\x82\xac");
	strcat(key, "/abc.txt");
	ok(strlen(key) == S3_MAX_KEY_LEN + 1, "a key of %zu bytes", strlen(key));
	ok(!s3_put_object(c, key, "x", 1, NULL, &err) && err.kind == S3ERR_LIMIT &&
	   strcmp(err.code, "KeyTooLongError") == 0 && err.attempts == 0,
	   "a key of 1025 bytes (347 characters) is refused before sending: %s",
	   err.message);
	ok(strstr(err.message, "1025 bytes") != NULL && s3_error_is_per_object(&err),
	   "the refusal says how long the key is and belongs to the object");
	key[S3_MAX_KEY_LEN] = '\0';
	ok(!s3_put_object(c, key, "x", 1, NULL, &err) && err.kind == S3ERR_NETWORK,
	   "a key of exactly 1024 bytes is sent (kind %d)", err.kind);

	/* an upload holds at most S3_MAX_PARTS parts of its part size */
	u = s3_upload_begin(c, "k", NULL, S3_MIN_PART_SIZE, &err);
	ok(u != NULL, "an upload with 5 MiB parts");

	/*
	 * The capacity is checked before a byte is copied, so a length beyond it
	 * needs no buffer of that size behind it.
	 */
	ok(u && !s3_upload_write(u, &byte, (size_t) S3_MAX_PARTS * S3_MIN_PART_SIZE + 1,
							 &err) &&
	   err.kind == S3ERR_LIMIT && err.attempts == 0 && s3_error_is_per_object(&err),
	   "a write beyond %d parts fails at once, without a request: %s",
	   S3_MAX_PARTS, err.message);
	ok(u && !s3_upload_write(u, &byte, 1, &err) && err.kind == S3ERR_PROTOCOL,
	   "the failed upload takes no more data");
	s3_upload_free(u);
	s3_client_free(c);
}

static void
test_part_size(void)
{
	const int64_t MiB = 1024 * 1024;

	ok(s3_choose_part_size(0, 0) == S3_MIN_PART_SIZE, "unknown size: 5 MiB parts");
	ok(s3_choose_part_size(100 * MiB, 8 * MiB) == (size_t) (8 * MiB),
	   "a small object keeps the requested minimum");
	for (int64_t est = MiB; est <= (int64_t) 4000000 * MiB; est *= 7)
	{
		size_t		p = s3_choose_part_size(est, 0);

		if (!(p >= S3_MIN_PART_SIZE && p % MiB == 0 &&
			  (est * 2) / (int64_t) p < S3_MAX_PARTS))
		{
			ok(0, "part size for %lld bytes leaves room to double", (long long) est);
			return;
		}
	}
	ok(1, "part sizes are whole MiB >= 5 MiB and leave room for twice the estimate");
	ok(s3_choose_part_size((int64_t) 100 * 1024 * 1024 * MiB, 0) ==
	   (size_t) 5 * 1024 * MiB, "parts never exceed 5 GiB");
}

static void
test_endpoint(void)
{
	char		msg[256];

	ok(s3_endpoint_valid("", msg, sizeof(msg)), "empty endpoint means AWS");
	ok(s3_endpoint_valid("https://s3.eu-west-1.amazonaws.com", msg, sizeof(msg)),
	   "an https endpoint");
	ok(s3_endpoint_valid("http://127.0.0.1:9000/", msg, sizeof(msg)),
	   "an http endpoint with port and a trailing slash");
	ok(!s3_endpoint_valid("ftp://example.com", msg, sizeof(msg)) &&
	   strstr(msg, "http") != NULL, "ftp is refused: %s", msg);
	ok(!s3_endpoint_valid("s3.amazonaws.com", msg, sizeof(msg)),
	   "a host without scheme is refused");
	ok(!s3_endpoint_valid("https://", msg, sizeof(msg)), "a scheme without host is refused");
	ok(!s3_endpoint_valid("https://host/path", msg, sizeof(msg)),
	   "an endpoint with a path is refused");
	ok(!s3_endpoint_valid("https://user:pw@host", msg, sizeof(msg)),
	   "credentials in the endpoint are refused");
	ok(s3_endpoint_valid("http://[::1]:9000", msg, sizeof(msg)) &&
	   s3_endpoint_valid("http://[::1]", msg, sizeof(msg)) &&
	   s3_endpoint_valid("https://h:65535/", msg, sizeof(msg)) &&
	   s3_endpoint_valid("https://h:1", msg, sizeof(msg)),
	   "ports 1 to 65535 and IPv6 addresses are accepted");
	ok(!s3_endpoint_valid("http://127.0.0.1:99999", msg, sizeof(msg)) &&
	   strstr(msg, "65535") != NULL, "port 99999 is refused: %s", msg);
	ok(!s3_endpoint_valid("http://h:0", msg, sizeof(msg)) &&
	   !s3_endpoint_valid("http://h:", msg, sizeof(msg)) &&
	   !s3_endpoint_valid("http://h:9x", msg, sizeof(msg)) &&
	   !s3_endpoint_valid("http://h:-1", msg, sizeof(msg)) &&
	   !s3_endpoint_valid("http://[::1]x", msg, sizeof(msg)) &&
	   !s3_endpoint_valid("http://[::1", msg, sizeof(msg)) &&
	   !s3_endpoint_valid("http://h:123456789012345678901", msg, sizeof(msg)),
	   "port 0, an empty, signed, non-numeric or overflowing port, a broken IPv6 literal are refused");
	ok(!s3_endpoint_valid("http://:80", msg, sizeof(msg)) &&
	   !s3_endpoint_valid("http://[]", msg, sizeof(msg)) &&
	   !s3_endpoint_valid("http://::1", msg, sizeof(msg)) &&
	   !s3_endpoint_valid("http://2001:db8::1", msg, sizeof(msg)) &&
	   !s3_endpoint_valid("http://h:80:90", msg, sizeof(msg)) &&
	   !s3_endpoint_valid("http://h\tx", msg, sizeof(msg)) &&
	   !s3_endpoint_valid("http://[::1]]:80", msg, sizeof(msg)) &&
	   !s3_endpoint_valid("http://[zz]", msg, sizeof(msg)) &&
	   strstr(msg, "host") != NULL,
	   "an empty host, an unbracketed IPv6 address, two ports, a control character are refused: %s", msg);
	ok(s3_endpoint_valid("http://minio_1.internal:00080", msg, sizeof(msg)) &&
	   s3_endpoint_valid("https://[2001:db8::1]:443/", msg, sizeof(msg)),
	   "an underscore in a name, a port with leading zeros, a bracketed IPv6 address with a port");
}

static void
test_error_format(void)
{
	S3Error		err;
	char		buf[1024];

	memset(&err, 0, sizeof(err));
	strcpy(err.op, "PutObject");
	strcpy(err.key, "p/db/t.csv.gz");
	strcpy(err.message, "Access Denied");
	strcpy(err.code, "AccessDenied");
	err.http_status = 403;
	s3_error_format(&err, buf, sizeof(buf));
	is_str(buf, "PutObject \"p/db/t.csv.gz\": Access Denied (HTTP 403, AccessDenied)",
		   "errors name the operation, key, message, status and code");
}

static void
test_presign(void)
{
	S3Config	cfg;
	S3Error		err;
	char	   *url;

	memset(&cfg, 0, sizeof(cfg));
	cfg.endpoint = "https://s3.amazonaws.com";
	cfg.region = "us-east-1";
	cfg.bucket = "examplebucket";
	cfg.access_key = "AKIAIOSFODNN7EXAMPLE";
	cfg.secret_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
	/* 2013-05-24T00:00:00Z */
	url = s3_presign_get(&cfg, "test.txt", 86400, 1369353600, &err);
	is_str(url,
		   "https://examplebucket.s3.amazonaws.com/test.txt"
		   "?X-Amz-Algorithm=AWS4-HMAC-SHA256"
		   "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
		   "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"
		   "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404",
		   "the presigned URL reproduces AWS's published example");
	free(url);

	cfg.path_style = true;
	cfg.endpoint = "http://127.0.0.1:9000";
	url = s3_presign_get(&cfg, "a b/c+d.csv.gz", 60, 1369353600, &err);
	ok(url && strncmp(url, "http://127.0.0.1:9000/examplebucket/a%20b/c%2Bd.csv.gz?",
					  strlen("http://127.0.0.1:9000/examplebucket/a%20b/c%2Bd.csv.gz?")) == 0,
	   "path style puts the bucket in the path and encodes the key: %s", url);
	free(url);

	url = s3_presign_get(&cfg, "k", 604801, 1369353600, &err);
	ok(url == NULL && err.kind == S3ERR_CONFIG, "more than 7 days is refused");
	url = s3_presign_get(&cfg, "k", 0, 1369353600, &err);
	ok(url == NULL, "zero seconds is refused");
}

/* credential helpers: expiry times and container URIs */
static void
test_creds_helpers(void)
{
	static const char *const allowed[] = {
		"https://example.com/creds", "http://127.0.0.1:9000/x", "http://127.1.2.3/x",
		"HTTP://localhost/x", "http://[::1]:80/x", "http://169.254.170.2/v2/creds",
		"http://169.254.170.23/v1/credentials", "http://[fd00:ec2::23]/x",
	};
	static const char *const refused[] = {
		"http://192.0.2.1/creds", "http://127.0.0.1.evil.example/", "http://127.0.0.1@192.0.2.1/",
		"http://localhost:80@192.0.2.1/", "http://169.254.170.2:@192.0.2.1/",
		"http://[::1]@192.0.2.1/", "http://127.0.0.08/", "http://127.08.0.1/",
		"http://127.0.0.4294967297/", "http://localhost.evil/", "ftp://127.0.0.1/",
		"not a url", "",
	};
	time_t		t;

	for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++)
		ok(s3_container_uri_allowed(allowed[i]), "container URI allowed: %s", allowed[i]);
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
		ok(!s3_container_uri_allowed(refused[i]), "container URI refused: %s", refused[i]);

	ok(s3_parse_iso8601("2026-12-02T04:00:00Z", &t) && t == 1796184000, "ISO 8601: Z");
	ok(s3_parse_iso8601("2026-12-02T04:00:00.123456Z", &t) && t == 1796184000, "ISO 8601: a fraction");
	ok(s3_parse_iso8601("2026-12-02T05:30:00+01:30", &t) && t == 1796184000, "ISO 8601: an offset");
	ok(s3_parse_iso8601("2026-12-02T04:00:00", &t) && t == 1796184000, "ISO 8601: no zone is UTC");
	ok(!s3_parse_iso8601("2026-13-45T99:99:99Z", &t), "ISO 8601: fields out of range");
	ok(!s3_parse_iso8601("2026-12-02T04:00:00Q", &t), "ISO 8601: an unknown zone");
	ok(!s3_parse_iso8601("tomorrow", &t) && !s3_parse_iso8601(NULL, &t), "ISO 8601: not a time");
}

int
main(void)
{
	test_creds_helpers();
	test_retry();
	test_per_object();
	test_limits();
	test_part_size();
	test_endpoint();
	test_error_format();
	test_presign();
	return done_testing();
}
