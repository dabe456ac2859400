/*
 * s3_internal.h
 *		What the S3 client's files share and nothing outside them sees:
 *		the client struct and the single request path (s3_request.c).
 */
#ifndef AIBACKUP_S3_INTERNAL_H
#define AIBACKUP_S3_INTERNAL_H

#include <curl/curl.h>

#include "buf.h"
#include "s3.h"
#include "sigv4.h"

/* credentials in use; strings malloc'd, wiped when dropped */
typedef struct S3Credentials
{
	char	   *access_key;
	char	   *secret_key;
	char	   *session_token;	/* "" when none */
	time_t		expires;		/* 0 = never (static keys) */
	S3CredSource source;
} S3Credentials;

struct S3Client
{
	/* copies of the settings (S3Config points into these) */
	S3Config	cfg;
	char	   *strings[16];
	int			nstrings;

	/* parsed endpoint */
	char	   *scheme;			/* "http" or "https" */
	char	   *hostport;		/* "host[:port]" as written */

	CURL	   *curl;			/* reused: keeps the connection alive */
	bool		cleanup;		/* aborting after a failure: ignore the abort
								 * callback, keep it short */
	unsigned int rng;			/* jitter state */

	S3Credentials creds;		/* access_key NULL until first fetched */
	bool		batch_delete_refused;	/* DeleteObjects without Content-MD5
										 * refused: delete key by key */

	/*
	 * A reader's prefetch thread's client (s3_object.c): the credentials it
	 * was given are never fetched anew, since fetching touches the process's
	 * state; a request that needs new ones fails and sets creds_wanted.
	 */
	bool		creds_fixed;
	bool		creds_wanted;
};

/* one HTTP request; everything but method/op is optional */
typedef struct S3Request
{
	const char *op;				/* "PutObject": for error messages */
	const char *method;
	const char *key;			/* NULL or "" = the bucket itself */
	const SigV4Param *query;
	int			nquery;
	const SigV4Param *headers;	/* extra headers, signed and sent */
	int			nheaders;
	const void *body;
	size_t		body_len;
	bool		has_body;		/* send body (even if empty) with MD5 */
	const char *content_type;
	S3DataSink	sink;			/* stream a 2xx body here (GET) */
	void	   *sink_arg;
	bool		body_may_hold_error;	/* a 200 can carry <Error> */
	bool		head;			/* HEAD: no body expected */
	size_t		max_body;		/* > 0: fail a kept body longer than this */

	/*
	 * A request to a credential service instead of S3: an absolute URL, sent
	 * unsigned with only the headers given, never through the
	 * aibackup.s3_proxy setting (libcurl's *_proxy environment applies).
	 */
	const char *url;
	long		timeout_ms;		/* > 0: limit on each attempt */
	long		connect_timeout_ms; /* > 0: instead of the client's */
	int			max_attempts;	/* > 0: instead of the client's */
	bool		direct;			/* no proxy at all (a service on a loopback or
								 * link-local address) */
	bool		checksum_required;	/* S3 wants Content-MD5 or x-amz-checksum-*
									 * (DeleteObjects) */
} S3Request;

typedef struct S3Response
{
	long		status;
	AbBuf		body;			/* 2xx body when no sink; error bodies */
	char		etag[80];		/* without quotes */
	char		last_modified[40];
	int64_t		content_length;
	int64_t		delivered;		/* bytes given to the sink */
} S3Response;

extern void s3_response_init(S3Response *resp);

/* n bytes of a header value (or an ETag from XML) into dst, trimmed, and
 * without its double quotes if strip_quotes */
extern void s3_copy_header_value(char *dst, size_t dstlen, const char *v,
								 size_t n, bool strip_quotes);
extern void s3_response_free(S3Response *resp);

/*
 * The only way a request reaches S3: sign, send, classify, retry.
 * True for a 2xx answer (and, for a sink, all bytes delivered).
 */
extern bool s3_request(S3Client *c, const S3Request *req, S3Response *resp,
					   S3Error *err);

/* retry classification (exposed for unit tests via s3.h) */

/* host and encoded path of key (bucket-level when key is NULL/"") */
extern bool s3_url_parts(const S3Config *cfg, const char *scheme,
						 const char *hostport, const char *key,
						 AbBuf *host, AbBuf *path);
extern bool s3_parse_endpoint(const char *endpoint, const char *region,
							  char **scheme, char **hostport,
							  char *msg, size_t msglen);

/*
 * Credentials for the next request: fetched the first time, and again
 * within S3_CREDS_REFRESH_SECONDS of their expiry (force: now, after S3
 * said ExpiredToken).  A failed refresh keeps credentials still valid.
 */
#define S3_CREDS_REFRESH_SECONDS	300
extern bool s3_creds_ensure(S3Client *c, bool force, S3Error *err);
extern void s3_creds_clear(S3Credentials *cr);

/* the credential sources (s3_creds_sources.c) */
typedef enum S3CredResult
{
	S3CRED_FOUND,
	S3CRED_ABSENT,				/* not configured here: AUTO tries the next */
	S3CRED_FAILED				/* configured and failed: *err says why */
} S3CredResult;

/* fill *out with copies; FAILED for a key or token no header can carry */
extern S3CredResult s3_creds_keep(S3Credentials *out, S3CredSource src,
								  const char *ak, const char *sk,
								  const char *token, time_t expires,
								  S3Error *err);
extern S3CredResult s3_creds_from_env(S3Credentials *out, S3Error *err);
extern S3CredResult s3_creds_from_web_identity(S3Client *c, S3Credentials *out,
											   S3Error *err);
extern S3CredResult s3_creds_from_profile(S3Credentials *out, S3Error *err);
extern S3CredResult s3_creds_from_container(S3Client *c, S3Credentials *out,
											S3Error *err);

/* pinned: an error where EC2's service does not answer, not ABSENT */
extern S3CredResult s3_creds_from_imds(S3Client *c, bool pinned,
									   S3Credentials *out, S3Error *err);

/* helpers of the sources, exposed for the unit tests */
extern bool s3_parse_iso8601(const char *s, time_t *out);
extern bool s3_container_uri_allowed(const char *uri);

/* whether bodies carry Content-MD5 (else only SHA-256 checks) */
extern bool s3_uses_md5(const S3Client *c);

/* SSE and storage class headers for a new object; returns how many */
extern int	s3_new_object_headers(const S3Client *c, SigV4Param *out);

extern void s3_set_error(S3Error *err, S3ErrorKind kind, const char *op,
						 const char *key, const char *fmt,...)
			__attribute__((format(printf, 5, 6)));

#endif							/* AIBACKUP_S3_INTERNAL_H */
