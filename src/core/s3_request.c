/*
 * s3_request.c
 *		The S3 client's single request path: build the URL, sign with SigV4,
 *		send with libcurl, classify the answer, retry what is retryable.
 *		Every operation in s3_object.c and s3_multipart.c goes through
 *		s3_request(), so signing, retry and error rules live here only:
 *		which failures are retried (s3_is_retryable), and which belong to
 *		one object rather than to S3 or the settings
 *		(s3_error_is_per_object).  Before each attempt the credentials are
 *		made current (s3_creds_ensure); an ExpiredToken answer renews them
 *		once.  The credential services' own calls (S3Request.url) take the
 *		same path, unsigned.
 *
 * Hazards:
 *	- libcurl callbacks run inside curl_easy_perform(): they must never
 *	  longjmp (no ereport, no palloc, no CHECK_FOR_INTERRUPTS).  Interrupts
 *	  are seen through the caller's abort callback, which only reads a flag.
 *	- Every attempt is signed anew (a stale x-amz-date is refused as
 *	  RequestTimeTooSkewed).
 *	- A streamed GET that drops mid-body resumes with Range from the last
 *	  byte delivered, with If-Match on the first answer's ETag, so the sink
 *	  never sees a byte twice or bytes of a different object version.
 *	- Error texts carry the operation, key, status and S3's code/message;
 *	  never a header, a signature, a secret or a token.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "digest.h"
#include "s3_internal.h"
#include "xml.h"

#define S3_ERROR_BODY_MAX	(64 * 1024)
#define S3_BACKOFF_BASE_MS	100
#define S3_BACKOFF_MAX_MS	5000
#define S3_MAX_HEADERS		24

/* state shared with the libcurl callbacks of one attempt */
typedef struct S3Transfer
{
	S3Client   *client;
	const S3Request *req;
	S3Response *resp;
	bool		success_status; /* status line said 2xx (206 when resuming) */
	bool		want_partial;	/* a resumed GET: only 206 is success */
	bool		status_seen;
	bool		sink_failed;
	bool		interrupted;
	const char *upload_data;	/* request body being sent */
	size_t		upload_len;
	size_t		upload_pos;
} S3Transfer;

void
s3_set_error(S3Error *err, S3ErrorKind kind, const char *op, const char *key,
			 const char *fmt,...)
{
	va_list		ap;

	if (err == NULL)
		return;
	memset(err, 0, sizeof(*err));
	err->kind = kind;
	snprintf(err->op, sizeof(err->op), "%s", op ? op : "");
	snprintf(err->key, sizeof(err->key), "%s", key ? key : "");
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
}

void
s3_error_format(const S3Error *err, char *buf, size_t len)
{
	char		status[96] = "";

	if (err->http_status > 0 && err->code[0])
		snprintf(status, sizeof(status), " (HTTP %ld, %s)",
				 err->http_status, err->code);
	else if (err->http_status > 0)
		snprintf(status, sizeof(status), " (HTTP %ld)", err->http_status);
	else if (err->code[0])
		snprintf(status, sizeof(status), " (%s)", err->code);

	if (err->key[0])
		snprintf(buf, len, "%s \"%s\": %s%s", err->op, err->key,
				 err->message, status);
	else
		snprintf(buf, len, "%s: %s%s", err->op, err->message, status);
}

bool
s3_is_retryable(int curl_code, long http_status, const char *s3_code)
{
	if (curl_code != CURLE_OK)
	{
		switch (curl_code)
		{
			case CURLE_COULDNT_RESOLVE_HOST:
			case CURLE_COULDNT_CONNECT:
			case CURLE_OPERATION_TIMEDOUT:
			case CURLE_SEND_ERROR:
			case CURLE_RECV_ERROR:
			case CURLE_GOT_NOTHING:
			case CURLE_PARTIAL_FILE:
			case CURLE_SSL_CONNECT_ERROR:
			case CURLE_HTTP2:
			case CURLE_HTTP2_STREAM:
				return true;
			default:
				/* TLS verification, bad URL, callback aborts, ... */
				return false;
		}
	}
	if (http_status >= 500 && http_status <= 599)
		return true;
	if (http_status == 408 || http_status == 429)
		return true;
	if (http_status == 400 && s3_code && strcmp(s3_code, "RequestTimeout") == 0)
		return true;
	/* a 200 whose body is an <Error> (CompleteMultipartUpload) */
	if (http_status >= 200 && http_status <= 299 && s3_code &&
		(strcmp(s3_code, "InternalError") == 0 ||
		 strcmp(s3_code, "SlowDown") == 0 ||
		 strcmp(s3_code, "ServiceUnavailable") == 0))
		return true;
	return false;
}

/*
 * The S3 error codes that describe the object a request was about, not S3
 * or the settings (see s3_error_is_per_object).
 */
static const char *const s3_object_codes[] = {
	"KeyTooLongError",			/* the key is over 1024 bytes */
	"EntityTooLarge",			/* a part or the object is over the maximum */
	"EntityTooSmall",			/* a part (not the last) under the minimum */
	"InvalidPart",				/* Complete: a part missing or unequal (R2) */
	"InvalidPartOrder",
	"NoSuchUpload",				/* the upload was aborted under us (say by a
								 * lifecycle rule, during a very long copy) */
};

bool
s3_error_is_per_object(const S3Error *err)
{
	if (err->kind == S3ERR_LIMIT)
		return true;
	if (err->kind != S3ERR_HTTP && err->kind != S3ERR_NOT_FOUND)
		return false;			/* network, settings, cancel, memory, protocol */
	for (size_t i = 0; i < sizeof(s3_object_codes) / sizeof(s3_object_codes[0]); i++)
	{
		if (strcmp(err->code, s3_object_codes[i]) == 0)
			return true;
	}

	/*
	 * InvalidArgument is ours only on a part: its number is beyond what the
	 * store allows (Swift's s3api: max_upload_part_num, 1000 by default).
	 * Elsewhere it points at a header every request sends.
	 */
	if (strcmp(err->code, "InvalidArgument") == 0)
		return strcmp(err->op, "UploadPart") == 0;
	/* a proxy's limits on the body or the URL, whatever the code */
	return err->http_status == 413 || err->http_status == 414;
}

/*
 * host[:port] of n bytes: 0 if valid, 1 for a bad host, 2 for a bad port.
 * A host is a name or IPv4 address (letters, digits, '-', '.', '_') or an
 * IPv6 address in brackets; a port, if any, is 1 to 65535.
 */
/* 0-9, a-f, A-F: whatever the locale says of other bytes */
static bool
ascii_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int
authority_check(const char *s, size_t n)
{
	const char *end = s + n;
	const char *p;
	long		port = 0;

	if (n > 0 && s[0] == '[')
	{
		const char *close = memchr(s, ']', n);

		if (close == NULL || close == s + 1)
			return 1;
		for (p = s + 1; p < close; p++)
		{
			if (!ascii_hex(*p) && *p != ':' && *p != '.')
				return 1;
		}
		p = close + 1;
	}
	else
	{
		for (p = s; p < end && *p != ':'; p++)
		{
			if (!ascii_hex(*p) && !(*p >= 'g' && *p <= 'z') &&
				!(*p >= 'G' && *p <= 'Z') && *p != '-' && *p != '.' && *p != '_')
				return 1;
		}
		if (p == s)
			return 1;
	}
	if (p == end)
		return 0;				/* no port */
	if (*p != ':')
		return 1;
	if (++p == end)
		return 2;				/* "host:" */
	for (; p < end; p++)
	{
		if (*p == ':')
			return 1;			/* an unbracketed IPv6 address, "h:80:90" */
		if (*p < '0' || *p > '9' || (port = port * 10 + (*p - '0')) > 65535)
			return 2;
	}
	return port >= 1 ? 0 : 2;
}

bool
s3_parse_endpoint(const char *endpoint, const char *region,
				  char **scheme, char **hostport, char *msg, size_t msglen)
{
	const char *rest;
	size_t		n;
	AbBuf		b;

	*scheme = NULL;
	*hostport = NULL;
	if (endpoint == NULL || endpoint[0] == '\0')
	{
		if (region == NULL || region[0] == '\0')
		{
			snprintf(msg, msglen, "no endpoint and no region are set");
			return false;
		}
		abuf_init(&b);
		abuf_appendf(&b, "s3.%s.amazonaws.com", region);
		*scheme = strdup("https");
		*hostport = abuf_steal(&b);
		return *scheme && *hostport;
	}
	if (strncasecmp(endpoint, "https://", 8) == 0)
	{
		*scheme = strdup("https");
		rest = endpoint + 8;
	}
	else if (strncasecmp(endpoint, "http://", 7) == 0)
	{
		*scheme = strdup("http");
		rest = endpoint + 7;
	}
	else
	{
		snprintf(msg, msglen, "the endpoint must start with http:// or https://");
		return false;
	}
	n = strcspn(rest, "/?#");
	if (n == 0)
	{
		free(*scheme);
		*scheme = NULL;
		snprintf(msg, msglen, "the endpoint has no host name");
		return false;
	}
	if (rest[n] == '?' || rest[n] == '#' ||
		(rest[n] == '/' && rest[n + 1] != '\0'))
	{
		free(*scheme);
		*scheme = NULL;
		snprintf(msg, msglen, "the endpoint must be a scheme and host[:port] with no path");
		return false;
	}
	switch (authority_check(rest, n))
	{
		case 0:
			break;
		case 1:
			free(*scheme);
			*scheme = NULL;
			snprintf(msg, msglen, "the endpoint's host is not valid");
			return false;
		default:
			free(*scheme);
			*scheme = NULL;
			snprintf(msg, msglen, "the endpoint's port is not a number from 1 to 65535");
			return false;
	}
	*hostport = strndup(rest, n);
	return *scheme && *hostport;
}

bool
s3_endpoint_valid(const char *endpoint, char *msg, size_t len)
{
	char	   *scheme;
	char	   *hostport;
	bool		ok;

	if (endpoint == NULL || endpoint[0] == '\0')
		return true;
	ok = s3_parse_endpoint(endpoint, "us-east-1", &scheme, &hostport, msg, len);
	free(scheme);
	free(hostport);
	return ok;
}

bool
s3_url_parts(const S3Config *cfg, const char *scheme, const char *hostport,
			 const char *key, AbBuf *host, AbBuf *path)
{
	(void) scheme;
	if (cfg->path_style)
	{
		abuf_appends(host, hostport);
		abuf_appendc(path, '/');
		sigv4_uri_encode(path, cfg->bucket, strlen(cfg->bucket), false);
		if (key && key[0])
		{
			abuf_appendc(path, '/');
			sigv4_uri_encode(path, key, strlen(key), true);
		}
	}
	else
	{
		abuf_appendf(host, "%s.%s", cfg->bucket, hostport);
		abuf_appendc(path, '/');
		if (key && key[0])
			sigv4_uri_encode(path, key, strlen(key), true);
	}
	return !host->oom && !path->oom;
}

void
s3_response_init(S3Response *resp)
{
	memset(resp, 0, sizeof(*resp));
	abuf_init(&resp->body);
	resp->content_length = -1;
}

void
s3_response_free(S3Response *resp)
{
	abuf_free(&resp->body);
}

/* --- libcurl callbacks: no longjmp, no allocation outside malloc --- */

static size_t
s3_cb_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	S3Transfer *t = userdata;
	size_t		n = size * nmemb;

	if (t->success_status && t->req->sink != NULL)
	{
		if (t->req->sink(t->req->sink_arg, ptr, n) != 0)
		{
			t->sink_failed = true;
			return 0;
		}
		t->resp->delivered += n;
		return n;
	}
	/* bodies we keep: success bodies without a sink, and error bodies */
	if (!t->success_status && t->resp->body.len + n > S3_ERROR_BODY_MAX)
		return n;				/* enough of an error body to parse */
	if (t->success_status && t->req->max_body > 0 &&
		t->resp->body.len + n > t->req->max_body)
		return 0;				/* more than asked for: fail, do not buffer */
	if (!abuf_append(&t->resp->body, ptr, n))
		return 0;
	return n;
}

void
s3_copy_header_value(char *dst, size_t dstlen, const char *v, size_t n,
					 bool strip_quotes)
{
	while (n > 0 && (*v == ' ' || *v == '\t'))
		v++, n--;
	while (n > 0 && (v[n - 1] == '\r' || v[n - 1] == '\n' ||
					 v[n - 1] == ' ' || v[n - 1] == '\t'))
		n--;
	if (strip_quotes && n >= 2 && v[0] == '"' && v[n - 1] == '"')
		v++, n -= 2;
	if (n >= dstlen)
		n = dstlen - 1;
	memcpy(dst, v, n);
	dst[n] = '\0';
}

static size_t
s3_cb_header(char *buffer, size_t size, size_t nitems, void *userdata)
{
	S3Transfer *t = userdata;
	size_t		n = size * nitems;
	const char *colon;

	if (n >= 5 && strncmp(buffer, "HTTP/", 5) == 0)
	{
		/* a new status line (also after 100 Continue): parse it */
		const char *sp = memchr(buffer, ' ', n);
		long		status = sp ? strtol(sp + 1, NULL, 10) : 0;

		if (status != 100)
		{
			t->resp->status = status;
			t->success_status = t->want_partial ? (status == 206) :
				(status >= 200 && status <= 299);
			t->status_seen = true;
		}
		return n;
	}
	colon = memchr(buffer, ':', n);
	if (colon == NULL)
		return n;
#define HDR_IS(name) ((size_t) (colon - buffer) == strlen(name) && \
					  strncasecmp(buffer, name, strlen(name)) == 0)
	if (HDR_IS("etag"))
		s3_copy_header_value(t->resp->etag, sizeof(t->resp->etag),
							 colon + 1, n - (colon + 1 - buffer), true);
	else if (HDR_IS("last-modified"))
		s3_copy_header_value(t->resp->last_modified,
							 sizeof(t->resp->last_modified),
							 colon + 1, n - (colon + 1 - buffer), false);
	else if (HDR_IS("content-length"))
	{
		char		v[32];

		s3_copy_header_value(v, sizeof(v), colon + 1,
							 n - (colon + 1 - buffer), false);
		t->resp->content_length = strtoll(v, NULL, 10);
	}
#undef HDR_IS
	return n;
}

static size_t
s3_cb_read(char *buffer, size_t size, size_t nitems, void *userdata)
{
	S3Transfer *t = userdata;
	size_t		want = size * nitems;
	size_t		left = t->upload_len - t->upload_pos;

	if (want > left)
		want = left;
	if (want > 0)
		memcpy(buffer, t->upload_data + t->upload_pos, want);
	t->upload_pos += want;
	return want;
}

static int
s3_cb_seek(void *userdata, curl_off_t offset, int origin)
{
	S3Transfer *t = userdata;

	if (origin != SEEK_SET || offset < 0 || (size_t) offset > t->upload_len)
		return CURL_SEEKFUNC_CANTSEEK;
	t->upload_pos = (size_t) offset;
	return CURL_SEEKFUNC_OK;
}

static int
s3_cb_progress(void *clientp, curl_off_t dltotal, curl_off_t dlnow,
			   curl_off_t ultotal, curl_off_t ulnow)
{
	S3Transfer *t = clientp;
	const S3Config *cfg = &t->client->cfg;

	if (!t->client->cleanup &&
		cfg->abort_cb != NULL && cfg->abort_cb(cfg->abort_arg) != 0)
	{
		t->interrupted = true;
		return 1;
	}
	return 0;
}

/* --- one attempt --- */

static unsigned int
s3_rand(S3Client *c)
{
	/* xorshift: jitter only, not security */
	unsigned int x = c->rng;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	c->rng = x ? x : 2463534242u;
	return c->rng;
}

static long
s3_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* sleep ms, in slices, giving up early when the abort callback fires */
static bool
s3_sleep(S3Client *c, long ms)
{
	while (ms > 0)
	{
		long		slice = ms > 50 ? 50 : ms;
		struct timespec ts = {slice / 1000, (slice % 1000) * 1000000L};

		if (!c->cleanup &&
			c->cfg.abort_cb && c->cfg.abort_cb(c->cfg.abort_arg) != 0)
			return false;
		while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		{
			if (!c->cleanup &&
				c->cfg.abort_cb && c->cfg.abort_cb(c->cfg.abort_arg) != 0)
				return false;
		}
		ms -= slice;
	}
	return c->cleanup ||
		!(c->cfg.abort_cb && c->cfg.abort_cb(c->cfg.abort_arg) != 0);
}

/* fill code/message from an S3 <Error> body, if there is one */
static bool
s3_parse_error_body(const AbBuf *body, char *code, size_t codelen,
					char *message, size_t msglen)
{
	XmlSpan		doc = {body->data, body->len};
	XmlSpan		e;
	char	   *s;

	const char *p = body->data;
	const char *end = body->data + body->len;

	if (body->data == NULL)
		return false;
	/* only an <Error> root counts (DeleteResult holds per-key <Error>s) */
	for (;;)
	{
		while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
			p++;
		if (end - p >= 2 && p[0] == '<' && (p[1] == '?' || p[1] == '!'))
		{
			p = memchr(p, '>', end - p);
			if (p == NULL)
				return false;
			p++;
			continue;
		}
		break;
	}
	if (end - p < 7 || strncmp(p, "<Error", 6) != 0 ||
		!(p[6] == '>' || p[6] == ' ' || p[6] == '/'))
		return false;
	if (!xml_find(doc, "Error", &e))
		return false;
	s = xml_find_text(e, "Code");
	snprintf(code, codelen, "%s", s ? s : "");
	free(s);
	s = xml_find_text(e, "Message");
	if (s)
	{
		/* keep it one line */
		for (char *p = s; *p; p++)
		{
			if (*p == '\n' || *p == '\r')
				*p = ' ';
		}
		snprintf(message, msglen, "%s", s);
	}
	free(s);
	return true;
}

static const char *
s3_status_text(long status)
{
	switch (status)
	{
		case 400:
			return "bad request";
		case 403:
			return "access denied";
		case 404:
			return "not found";
		case 409:
			return "conflict";
		case 412:
			return "precondition failed";
		case 416:
			return "range not satisfiable";
		case 500:
			return "internal server error";
		case 501:
			return "not implemented";
		case 503:
			return "service unavailable";
		default:
			return "unexpected answer";
	}
}

bool
s3_uses_md5(const S3Client *c)
{
	char		md5[DIGEST_MD5_B64];

	switch (c->cfg.checksum)
	{
		case S3CHECKSUM_MD5:
			return true;
		case S3CHECKSUM_SHA256:
			return false;
		default:
			/* a FIPS-mode OpenSSL has no MD5 */
			return digest_md5_base64("", 0, md5);
	}
}

int
s3_new_object_headers(const S3Client *c, SigV4Param *out)
{
	int			n = 0;

	if (c->cfg.sse && c->cfg.sse[0])
	{
		out[n++] = sigv4_param("x-amz-server-side-encryption", c->cfg.sse);
		if (strcmp(c->cfg.sse, "aws:kms") == 0 &&
			c->cfg.sse_kms_key_id && c->cfg.sse_kms_key_id[0])
			out[n++] = sigv4_param("x-amz-server-side-encryption-aws-kms-key-id",
								   c->cfg.sse_kms_key_id);
	}
	if (c->cfg.storage_class && c->cfg.storage_class[0])
		out[n++] = sigv4_param("x-amz-storage-class", c->cfg.storage_class);
	return n;
}

/* what the signed headers of one attempt point into */
typedef struct S3Signing
{
	AbBuf		host;
	char		amz_date[17];
	char		payload_hash[DIGEST_SHA256_HEX];
	char		md5[DIGEST_MD5_B64];
	char		sha256_b64[48];
	char		range[64];
	char		quoted_etag[96];
} S3Signing;

/*
 * The URL, headers and Authorization of an S3 request, signed with the
 * client's current credentials.  False when it cannot be signed; *rc says
 * why.  The headers point into sg.
 */
static bool
s3_sign(S3Client *c, const S3Request *req, int64_t range_from,
		const char *if_match, S3Signing *sg, AbBuf *url, AbBuf *authz,
		SigV4Param *hdrs, int *nhdrs, CURLcode *rc)
{
	const S3Config *cfg = &c->cfg;
	AbBuf		path,
				query;
	int			nh = 0;
	SigV4Request sr;
	bool		ok;

	abuf_init(&path);
	abuf_init(&query);
	s3_url_parts(cfg, c->scheme, c->hostport, req->key, &sg->host, &path);
	sigv4_canonical_query(&query, req->query, req->nquery);
	abuf_appendf(url, "%s://%s%s%s%s", c->scheme,
				 sg->host.data ? sg->host.data : "", path.data ? path.data : "",
				 query.len ? "?" : "", query.len ? query.data : "");

	sigv4_amz_date(time(NULL), sg->amz_date);
	digest_sha256_hex(req->body ? req->body : "", req->body ? req->body_len : 0,
					  sg->payload_hash);

	hdrs[nh++] = sigv4_param("host", sg->host.data);
	hdrs[nh++] = sigv4_param("x-amz-date", sg->amz_date);
	hdrs[nh++] = sigv4_param("x-amz-content-sha256", sg->payload_hash);
	if (c->creds.session_token && c->creds.session_token[0])
		hdrs[nh++] = sigv4_param("x-amz-security-token", c->creds.session_token);
	if (req->has_body && s3_uses_md5(c))
	{
		digest_md5_base64(req->body ? req->body : "", req->body_len, sg->md5);
		hdrs[nh++] = sigv4_param("content-md5", sg->md5);
	}
	else if (req->has_body && req->checksum_required)
	{
		/* without MD5 the signed payload hash checks the body; S3 wants more */
		unsigned char sha[DIGEST_SHA256_LEN];

		digest_sha256(req->body ? req->body : "", req->body_len, sha);
		digest_base64(sha, DIGEST_SHA256_LEN, sg->sha256_b64);
		hdrs[nh++] = sigv4_param("x-amz-checksum-sha256", sg->sha256_b64);
	}
	if (req->content_type)
		hdrs[nh++] = sigv4_param("content-type", req->content_type);
	if (range_from >= 0)
	{
		snprintf(sg->range, sizeof(sg->range), "bytes=%lld-", (long long) range_from);
		hdrs[nh++] = sigv4_param("range", sg->range);
	}
	if (if_match && if_match[0])
	{
		snprintf(sg->quoted_etag, sizeof(sg->quoted_etag), "\"%s\"", if_match);
		hdrs[nh++] = sigv4_param("if-match", sg->quoted_etag);
	}
	for (int i = 0; i < req->nheaders && nh < S3_MAX_HEADERS; i++)
		hdrs[nh++] = req->headers[i];
	*nhdrs = nh;

	sr.method = req->method;
	sr.encoded_path = path.data;
	sr.canonical_query = query.data ? query.data : "";
	sr.headers = hdrs;
	sr.nheaders = nh;
	sr.payload_hash = sg->payload_hash;
	sr.region = cfg->region;
	sr.service = "s3";
	sr.amz_date = sg->amz_date;
	sr.access_key = c->creds.access_key;
	sr.secret_key = c->creds.secret_key;
	ok = !sg->host.oom && !path.oom && !query.oom && !url->oom;
	*rc = ok ? CURLE_OK : CURLE_OUT_OF_MEMORY;
	if (ok && !sigv4_authorization(&sr, authz))
	{
		ok = false;
		*rc = CURLE_BAD_FUNCTION_ARGUMENT;
	}
	abuf_free(&path);
	abuf_free(&query);
	return ok;
}

/*
 * Send one attempt.  Returns the CURLcode; resp holds the answer.
 * range_from >= 0 asks for the rest of a partly delivered body.
 */
static CURLcode
s3_attempt(S3Client *c, const S3Request *req, S3Response *resp,
		   int64_t range_from, const char *if_match, S3Transfer *t)
{
	const S3Config *cfg = &c->cfg;
	AbBuf		url,
				authz,
				line;
	SigV4Param	hdrs[S3_MAX_HEADERS];
	int			nh = 0;
	S3Signing	sg;
	struct curl_slist *list = NULL;
	CURLcode	rc = CURLE_OK;
	CURL	   *curl = c->curl;

	memset(t, 0, sizeof(*t));
	abuf_init(&url);
	abuf_init(&authz);
	abuf_init(&line);
	abuf_init(&sg.host);

	if (req->url)
	{
		/* a credential service: unsigned, only the headers given */
		abuf_appends(&url, req->url);
		for (int i = 0; i < req->nheaders && nh < S3_MAX_HEADERS; i++)
			hdrs[nh++] = req->headers[i];
		if (req->content_type)
			hdrs[nh++] = sigv4_param("content-type", req->content_type);
		if (url.oom)
		{
			rc = CURLE_OUT_OF_MEMORY;
			goto done;
		}
	}
	else if (!s3_sign(c, req, range_from, if_match, &sg, &url, &authz,
					  hdrs, &nh, &rc))
		goto done;

	for (int i = 0; i < nh; i++)
	{
		abuf_reset(&line);
		abuf_appendf(&line, "%s: %s", hdrs[i].name, hdrs[i].value);
		list = curl_slist_append(list, line.data);
	}
	if (!req->url)
	{
		abuf_reset(&line);
		abuf_appendf(&line, "Authorization: %s", authz.data ? authz.data : "");
		list = curl_slist_append(list, line.data);
	}
	/* no "Expect: 100-continue" round trip; no default content type */
	list = curl_slist_append(list, "Expect:");
	if (req->content_type == NULL)
		list = curl_slist_append(list, "Content-Type:");
	list = curl_slist_append(list, "Accept:");

	/* the signature must not linger in freed memory longer than needed */
	if (line.data)
		memset(line.data, 0, line.len);

	if (authz.oom || line.oom || list == NULL)
	{
		rc = CURLE_OUT_OF_MEMORY;
		goto done;
	}

	t->client = c;
	t->req = req;
	t->resp = resp;
	t->want_partial = (range_from >= 0);
	t->upload_data = req->body;
	t->upload_len = req->body ? req->body_len : 0;

	curl_easy_reset(curl);
	curl_easy_setopt(curl, CURLOPT_URL, url.data);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
	if (req->connect_timeout_ms > 0)
		curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, req->connect_timeout_ms);
	else
		curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS,
						 cfg->connect_timeout_ms > 0 ? cfg->connect_timeout_ms : 10000L);
	if (req->timeout_ms > 0)
		curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, req->timeout_ms);
	/* else libcurl's *_proxy environment, as for every request */
	if (req->direct)
		curl_easy_setopt(curl, CURLOPT_PROXY, "");
	else if (req->url == NULL && cfg->proxy && cfg->proxy[0])
	{
		curl_easy_setopt(curl, CURLOPT_PROXY, cfg->proxy);
		/* the environment's no_proxy is for the environment's proxy */
		curl_easy_setopt(curl, CURLOPT_NOPROXY, "");
	}
	curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME,
					 cfg->stall_seconds > 0 ? cfg->stall_seconds : 60L);
	curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT,
					 cfg->stall_bytes > 0 ? cfg->stall_bytes : 1L);
	curl_easy_setopt(curl, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, cfg->verify_tls ? 1L : 0L);
	curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, cfg->verify_tls ? 2L : 0L);
	if (cfg->ca_file && cfg->ca_file[0])
		curl_easy_setopt(curl, CURLOPT_CAINFO, cfg->ca_file);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, s3_cb_write);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, t);
	curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, s3_cb_header);
	curl_easy_setopt(curl, CURLOPT_HEADERDATA, t);
	curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, s3_cb_progress);
	curl_easy_setopt(curl, CURLOPT_XFERINFODATA, t);

	if (c->cleanup)
		curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 3000L);

	if (req->head)
		curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
	else if (strcmp(req->method, "GET") == 0)
		curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
	else if (strcmp(req->method, "PUT") == 0)
	{
		curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(curl, CURLOPT_READFUNCTION, s3_cb_read);
		curl_easy_setopt(curl, CURLOPT_READDATA, t);
		curl_easy_setopt(curl, CURLOPT_SEEKFUNCTION, s3_cb_seek);
		curl_easy_setopt(curl, CURLOPT_SEEKDATA, t);
		curl_easy_setopt(curl, CURLOPT_INFILESIZE_LARGE,
						 (curl_off_t) t->upload_len);
	}
	else if (strcmp(req->method, "POST") == 0)
	{
		curl_easy_setopt(curl, CURLOPT_POST, 1L);
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, req->body ? req->body : "");
		curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE,
						 (curl_off_t) t->upload_len);
	}
	else
		curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, req->method);

	rc = curl_easy_perform(curl);
	if (!t->status_seen)
		curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &resp->status);

done:
	curl_slist_free_all(list);
	if (authz.data)
		memset(authz.data, 0, authz.len);
	abuf_free(&sg.host);
	abuf_free(&url);
	abuf_free(&authz);
	abuf_free(&line);
	return rc;
}

bool
s3_request(S3Client *c, const S3Request *req, S3Response *resp, S3Error *err)
{
	const S3Config *cfg = &c->cfg;
	long		budget = cfg->retry_budget_ms > 0 ? cfg->retry_budget_ms : 60000;
	int			max_attempts = cfg->max_attempts > 0 ? cfg->max_attempts : 6;
	long		start = s3_now_ms();
	int			attempt = 0;
	char		first_etag[80] = "";
	int64_t		delivered = 0;
	bool		refreshed = false;
	char		md5[DIGEST_MD5_B64];

	if (req->max_attempts > 0)
		max_attempts = req->max_attempts;
	for (int i = 0; i < req->nheaders; i++)
	{
		/* a line break would start a header of its own */
		if (req->headers[i].value && strpbrk(req->headers[i].value, "\r\n"))
		{
			s3_set_error(err, S3ERR_CONFIG, req->op, req->key,
						 "the value of header %s holds a line break", req->headers[i].name);
			return false;
		}
	}
	if (req->url == NULL && req->has_body && cfg->checksum == S3CHECKSUM_MD5 &&
		!digest_md5_base64("", 0, md5))
	{
		s3_set_error(err, S3ERR_CONFIG, req->op, req->key,
					 "MD5 is not available in this OpenSSL (FIPS mode?) and the checksum setting asks for it");
		return false;
	}

	/* S3 would refuse it; say why here, before anything is sent */
	if (req->url == NULL && req->key != NULL && strlen(req->key) > S3_MAX_KEY_LEN)
	{
		s3_set_error(err, S3ERR_LIMIT, req->op, req->key,
					 "the key is %zu bytes long, more than S3's limit of %d bytes",
					 strlen(req->key), S3_MAX_KEY_LEN);
		/* the code S3 would have answered */
		snprintf(err->code, sizeof(err->code), "KeyTooLongError");
		return false;
	}

	if (c->cleanup)
	{
		/* cleaning up after a failure: two quick tries only */
		budget = budget < 3000 ? budget : 3000;
		max_attempts = 2;
	}

	for (;;)
	{
		S3Transfer	t;
		CURLcode	rc;
		char		code[64] = "";
		char		message[512] = "";
		bool		retry;
		bool		ok;
		int64_t		range_from = -1;

		attempt++;
		if (req->sink && delivered > 0)
			range_from = delivered;

		/* credentials first: they may be due for a refresh */
		if (req->url == NULL && !s3_creds_ensure(c, false, err))
			return false;

		abuf_free(&resp->body);
		resp->status = 0;
		resp->etag[0] = '\0';
		resp->content_length = -1;
		resp->delivered = delivered;

		rc = s3_attempt(c, req, resp, range_from,
						range_from >= 0 ? first_etag : NULL, &t);
		delivered = resp->delivered;

		if (t.interrupted)
		{
			s3_set_error(err, S3ERR_INTERRUPTED, req->op, req->key,
						 "canceled on request");
			err->attempts = attempt;
			return false;
		}
		if (t.sink_failed)
		{
			s3_set_error(err, S3ERR_CALLBACK, req->op, req->key,
						 "the data callback failed");
			err->attempts = attempt;
			return false;
		}
		if (rc == CURLE_BAD_FUNCTION_ARGUMENT)
		{
			s3_set_error(err, S3ERR_CONFIG, req->op, req->key,
						 "could not sign the request (check region and credentials)");
			return false;
		}
		if (rc == CURLE_OUT_OF_MEMORY)
		{
			s3_set_error(err, S3ERR_OOM, req->op, req->key, "out of memory");
			return false;
		}

		if (rc == CURLE_OK && resp->status >= 200 && resp->status <= 299)
		{
			if (first_etag[0] == '\0' && req->sink)
				snprintf(first_etag, sizeof(first_etag), "%s", resp->etag);
			ok = true;
			if (range_from >= 0 && resp->status != 206)
			{
				/* asked for the rest and got the whole: cannot splice */
				s3_set_error(err, S3ERR_PROTOCOL, req->op, req->key,
							 "the server ignored the Range of a resumed download");
				err->http_status = resp->status;
				return false;
			}
			if (req->body_may_hold_error &&
				s3_parse_error_body(&resp->body, code, sizeof(code),
									message, sizeof(message)))
				ok = false;
			if (ok)
				return true;
		}
		else if (rc == CURLE_OK)
			s3_parse_error_body(&resp->body, code, sizeof(code),
								message, sizeof(message));
		else if (resp->status >= 200 && resp->status <= 299 && req->sink &&
				 first_etag[0] == '\0')
			snprintf(first_etag, sizeof(first_etag), "%s", resp->etag);

		/* temporary credentials S3 says are stale: new ones, once */
		if (req->url == NULL && rc == CURLE_OK && !refreshed &&
			(strcmp(code, "ExpiredToken") == 0 ||
			 strcmp(code, "TokenRefreshRequired") == 0))
		{
			refreshed = true;
			if (!s3_creds_ensure(c, true, err))
				return false;
			continue;
		}

		retry = s3_is_retryable(rc, rc == CURLE_OK ? resp->status : 0, code);
		/* a streamed body can only resume if we know which version it was */
		if (retry && req->sink && delivered > 0 && first_etag[0] == '\0')
			retry = false;

		if (retry && attempt < max_attempts)
		{
			long		cap = S3_BACKOFF_BASE_MS << (attempt < 6 ? attempt : 6);
			long		sleep_ms;

			if (cap > S3_BACKOFF_MAX_MS)
				cap = S3_BACKOFF_MAX_MS;
			/* "full jitter": anywhere in [cap/2, cap] */
			sleep_ms = cap / 2 + (long) (s3_rand(c) % (unsigned) (cap / 2 + 1));
			if (s3_now_ms() - start + sleep_ms <= budget)
			{
				if (!s3_sleep(c, sleep_ms))
				{
					s3_set_error(err, S3ERR_INTERRUPTED, req->op, req->key,
								 "canceled on request");
					err->attempts = attempt;
					return false;
				}
				continue;
			}
		}

		/* give up: describe the last failure */
		if (rc != CURLE_OK)
		{
			const char *what = curl_easy_strerror(rc);

			if (rc == CURLE_PEER_FAILED_VERIFICATION ||
				rc == CURLE_SSL_CACERT_BADFILE)
				s3_set_error(err, S3ERR_NETWORK, req->op, req->key,
							 "TLS verification failed: %s", what);
			else
				s3_set_error(err, S3ERR_NETWORK, req->op, req->key, "%s", what);
			err->http_status = 0;
		}
		else
		{
			S3ErrorKind kind = S3ERR_HTTP;

			/* a missing bucket is a configuration error, not a missing key */
			if (resp->status == 404 && strcmp(code, "NoSuchBucket") != 0)
				kind = S3ERR_NOT_FOUND;
			s3_set_error(err, kind, req->op, req->key, "%s",
						 message[0] ? message : s3_status_text(resp->status));
			err->http_status = resp->status;
			snprintf(err->code, sizeof(err->code), "%s", code);
		}
		err->attempts = attempt;
		return false;
	}
}
