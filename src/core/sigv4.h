/*
 * sigv4.h
 *		AWS Signature Version 4: canonical requests, header signing and
 *		query-string (presigned URL) signing.  Pure C: no PostgreSQL headers,
 *		no libcurl.  libcurl's own signer is not used: in 7.88 it mis-signs
 *		unsorted queries and parameters without a value.
 *
 * Encoding rules (RFC 3986, as S3 wants them): unreserved characters
 * A-Z a-z 0-9 - _ . ~ are kept, every other byte becomes %XX (upper-case
 * hex), including '+' and ' ' and each byte of a UTF-8 sequence.  '/' is
 * kept in paths only.  S3 paths are encoded once (never twice).
 */
#ifndef AIBACKUP_SIGV4_H
#define AIBACKUP_SIGV4_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "buf.h"

/* A name/value pair: a query parameter or a header. */
typedef struct SigV4Param
{
	const char *name;
	const char *value;			/* NULL or "" signs as "name=" */
} SigV4Param;

static inline SigV4Param
sigv4_param(const char *name, const char *value)
{
	SigV4Param	p = {name, value};

	return p;
}

/* Percent-encode len bytes of s onto out; keep '/' when keep_slash. */
extern bool sigv4_uri_encode(AbBuf *out, const char *s, size_t len,
							 bool keep_slash);

/*
 * Canonical query string: each name and value encoded, sorted by encoded
 * name then encoded value, joined with '&', "name=" for empty values.  The
 * same string is sent on the wire, so what is signed is what is sent.
 */
extern bool sigv4_canonical_query(AbBuf *out, const SigV4Param *params,
								  int nparams);

/* "YYYYMMDDTHHMMSSZ" (UTC) into out[17] */
extern void sigv4_amz_date(time_t t, char out[17]);

/* What header signing needs. */
typedef struct SigV4Request
{
	const char *method;			/* "GET", "PUT", ... */
	const char *encoded_path;	/* canonical URI, already encoded */
	const char *canonical_query;	/* from sigv4_canonical_query, or "" */
	const SigV4Param *headers;	/* every header to sign; names any case,
								 * values are trimmed and inner runs of spaces
								 * folded; must include host and x-amz-date
								 * (and x-amz-content-sha256 for S3) */
	int			nheaders;
	const char *payload_hash;	/* hex SHA-256 of the body, or
								 * "UNSIGNED-PAYLOAD" */
	const char *region;
	const char *service;		/* "s3" */
	const char *amz_date;		/* YYYYMMDDTHHMMSSZ, the x-amz-date value */
	const char *access_key;
	const char *secret_key;
} SigV4Request;

/* The intermediate strings, exposed for tests and debugging. */
extern bool sigv4_canonical_request(const SigV4Request *r, AbBuf *out,
									AbBuf *signed_headers);
extern bool sigv4_string_to_sign(const SigV4Request *r,
								 const char *canonical_request, AbBuf *out);

/* hex signature of string_to_sign with the derived key */
extern bool sigv4_signature(const char *secret_key, const char *date8,
							const char *region, const char *service,
							const char *string_to_sign, char out[65]);

/*
 * The Authorization header value:
 * "AWS4-HMAC-SHA256 Credential=AK/date/region/s3/aws4_request,
 *  SignedHeaders=..., Signature=..."
 */
extern bool sigv4_authorization(const SigV4Request *r, AbBuf *out);

/* What query signing (a presigned URL) needs. */
typedef struct SigV4Presign
{
	const char *method;			/* "GET" */
	const char *host;			/* Host header value (host[:port]) */
	const char *encoded_path;
	const SigV4Param *params;	/* extra query parameters, may be NULL */
	int			nparams;
	const char *region;
	const char *service;
	const char *amz_date;
	long		expires;		/* seconds, 1 .. 604800 */
	const char *access_key;
	const char *secret_key;
	const char *session_token;	/* NULL or "" when none */
} SigV4Presign;

/*
 * The full query string of a presigned URL, X-Amz-Signature last.
 * The URL is then scheme://host + encoded_path + "?" + out.
 */
extern bool sigv4_presign_query(const SigV4Presign *p, AbBuf *out);

#endif							/* AIBACKUP_SIGV4_H */
