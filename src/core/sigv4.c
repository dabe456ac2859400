/*
 * sigv4.c
 *		AWS Signature Version 4: RFC 3986 encoding, canonical query strings,
 *		canonical requests, the string to sign, the derived signing key, the
 *		Authorization header and presigned-URL query strings.  See sigv4.h.
 *
 * This file owns the exact byte layout of everything that is signed.  It is
 * checked against AWS's published examples (S3 "Signature Calculations for
 * the Authorization Header", "Authenticating Requests: Using Query
 * Parameters", and the generic SigV4 test suite) in test/unit/test_core.c.
 *
 * Conventions: every function appends to its output buffer (it never resets
 * it) and returns false, without crashing, on a NULL required argument, on
 * malformed input or when the buffer ran out of memory.  Secrets and
 * derived keys held in local storage are wiped before returning.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "digest.h"
#include "sigv4.h"

#define SIGV4_ALGORITHM		"AWS4-HMAC-SHA256"
#define SIGV4_TERMINATOR	"aws4_request"
#define SIGV4_MAX_EXPIRES	604800	/* seven days */

/* one encoded query parameter */
typedef struct EncodedParam
{
	char	   *name;
	char	   *value;
} EncodedParam;

/* one header as it goes into the canonical request */
typedef struct CanonHeader
{
	char	   *name;			/* trimmed, lower-cased */
	char	   *value;			/* trimmed, inner whitespace folded */
	int			order;			/* position in the caller's array */
} CanonHeader;

/* Overwrite n bytes so that the compiler cannot drop the stores. */
static void
secure_zero(void *p, size_t n)
{
	volatile unsigned char *v = p;

	while (n-- > 0)
		*v++ = 0;
}

static bool
is_unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		(c >= '0' && c <= '9') ||
		c == '-' || c == '_' || c == '.' || c == '~';
}

static bool
is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' ||
		c == '\v' || c == '\f';
}

bool
sigv4_uri_encode(AbBuf *out, const char *s, size_t len, bool keep_slash)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t		i;

	if (out == NULL || out->oom)
		return false;
	if (s == NULL && len != 0)
		return false;
	/* make sure the buffer holds a string even when nothing is appended */
	if (!abuf_append(out, "", 0))
		return false;
	for (i = 0; i < len; i++)
	{
		unsigned char c = (unsigned char) s[i];

		if (is_unreserved(c) || (c == '/' && keep_slash))
			abuf_appendc(out, (char) c);
		else
		{
			char		esc[3];

			esc[0] = '%';
			esc[1] = hex[c >> 4];
			esc[2] = hex[c & 0x0f];
			abuf_append(out, esc, 3);
		}
	}
	return !out->oom;
}

/* the percent-encoded form of a NUL-terminated string, malloc'd */
static char *
encode_dup(const char *s)
{
	AbBuf		b;

	abuf_init(&b);
	if (s == NULL)
		s = "";
	if (!sigv4_uri_encode(&b, s, strlen(s), false))
	{
		abuf_free(&b);
		return NULL;
	}
	return abuf_steal(&b);
}

static int
encoded_param_cmp(const void *a, const void *b)
{
	const EncodedParam *pa = a;
	const EncodedParam *pb = b;
	int			c = strcmp(pa->name, pb->name);

	if (c != 0)
		return c;
	return strcmp(pa->value, pb->value);
}

bool
sigv4_canonical_query(AbBuf *out, const SigV4Param *params, int nparams)
{
	EncodedParam *enc;
	int			n = 0;
	int			i;
	bool		ok = true;

	if (out == NULL || out->oom || nparams < 0)
		return false;
	if (nparams > 0 && params == NULL)
		return false;
	if (!abuf_append(out, "", 0))
		return false;
	if (nparams == 0)
		return true;

	enc = calloc((size_t) nparams, sizeof(EncodedParam));
	if (enc == NULL)
		return false;
	for (i = 0; i < nparams; i++)
	{
		if (params[i].name == NULL || params[i].name[0] == '\0')
		{
			ok = false;
			break;
		}
		enc[i].name = encode_dup(params[i].name);
		enc[i].value = encode_dup(params[i].value);
		n = i + 1;
		if (enc[i].name == NULL || enc[i].value == NULL)
		{
			ok = false;
			break;
		}
	}
	if (ok)
	{
		/* byte order of the encoded forms, name first, then value */
		qsort(enc, (size_t) nparams, sizeof(EncodedParam), encoded_param_cmp);
		for (i = 0; i < nparams; i++)
		{
			if (i > 0)
				abuf_appendc(out, '&');
			abuf_appends(out, enc[i].name);
			abuf_appendc(out, '=');
			abuf_appends(out, enc[i].value);
		}
		ok = !out->oom;
	}
	for (i = 0; i < n; i++)
	{
		free(enc[i].name);
		free(enc[i].value);
	}
	free(enc);
	return ok;
}

void
sigv4_amz_date(time_t t, char out[17])
{
	struct tm	tm;

	if (out == NULL)
		return;
	if (gmtime_r(&t, &tm) == NULL ||
		strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm) != 16)
		strcpy(out, "19700101T000000Z");
}

/* YYYYMMDDTHHMMSSZ, digits where digits belong */
static bool
valid_amz_date(const char *d)
{
	int			i;

	if (d == NULL || strlen(d) != 16 || d[8] != 'T' || d[15] != 'Z')
		return false;
	for (i = 0; i < 15; i++)
	{
		if (i == 8)
			continue;
		if (d[i] < '0' || d[i] > '9')
			return false;
	}
	return true;
}

/* YYYYMMDD */
static bool
valid_date8(const char *d)
{
	int			i;

	if (d == NULL || strlen(d) != 8)
		return false;
	for (i = 0; i < 8; i++)
	{
		if (d[i] < '0' || d[i] > '9')
			return false;
	}
	return true;
}

/* a usable scope component: non-empty, no '/' and no control characters */
static bool
valid_scope_part(const char *s)
{
	if (s == NULL || *s == '\0')
		return false;
	for (; *s; s++)
	{
		if (*s == '/' || (unsigned char) *s < 0x20)
			return false;
	}
	return true;
}

/* trimmed, lower-cased header name; NULL if empty or on OOM */
static char *
canon_header_name(const char *s)
{
	const char *e;
	char	   *r;
	size_t		i;
	size_t		n;

	while (*s && is_space(*s))
		s++;
	e = s + strlen(s);
	while (e > s && is_space(e[-1]))
		e--;
	n = (size_t) (e - s);
	if (n == 0)
		return NULL;
	r = malloc(n + 1);
	if (r == NULL)
		return NULL;
	for (i = 0; i < n; i++)
	{
		char		c = s[i];

		/* a name with ':' or a control character cannot be signed */
		if (c == ':' || (unsigned char) c < 0x20)
		{
			free(r);
			return NULL;
		}
		r[i] = (c >= 'A' && c <= 'Z') ? (char) (c - 'A' + 'a') : c;
	}
	r[n] = '\0';
	return r;
}

/*
 * Header value: leading and trailing whitespace removed, every inner run of
 * whitespace folded into one space (as the SigV4 test suite's
 * get-header-value-trim case wants: '"a   b   c"' signs as '"a b c"').
 */
static char *
canon_header_value(const char *s)
{
	char	   *r;
	size_t		n = 0;
	bool		pending_space = false;

	if (s == NULL)
		s = "";
	r = malloc(strlen(s) + 1);
	if (r == NULL)
		return NULL;
	for (; *s; s++)
	{
		if (is_space(*s))
		{
			pending_space = (n > 0);
			continue;
		}
		if (pending_space)
			r[n++] = ' ';
		pending_space = false;
		r[n++] = *s;
	}
	r[n] = '\0';
	return r;
}

static int
canon_header_cmp(const void *a, const void *b)
{
	const CanonHeader *ha = a;
	const CanonHeader *hb = b;
	int			c = strcmp(ha->name, hb->name);

	if (c != 0)
		return c;
	return (ha->order > hb->order) - (ha->order < hb->order);
}

bool
sigv4_canonical_request(const SigV4Request *r, AbBuf *out,
						AbBuf *signed_headers)
{
	CanonHeader *hdrs = NULL;
	AbBuf		names;
	int			n = 0;
	int			i;
	bool		ok = true;

	if (r == NULL || out == NULL || out->oom)
		return false;
	if (signed_headers != NULL && signed_headers->oom)
		return false;
	if (r->method == NULL || r->method[0] == '\0' ||
		r->payload_hash == NULL || r->payload_hash[0] == '\0')
		return false;
	if (r->nheaders < 0 || (r->nheaders > 0 && r->headers == NULL))
		return false;

	abuf_init(&names);
	if (r->nheaders > 0)
	{
		hdrs = calloc((size_t) r->nheaders, sizeof(CanonHeader));
		if (hdrs == NULL)
			return false;
	}
	for (i = 0; i < r->nheaders; i++)
	{
		n = i + 1;
		if (r->headers[i].name == NULL)
		{
			ok = false;
			break;
		}
		hdrs[i].name = canon_header_name(r->headers[i].name);
		hdrs[i].value = canon_header_value(r->headers[i].value);
		hdrs[i].order = i;
		if (hdrs[i].name == NULL || hdrs[i].value == NULL)
		{
			ok = false;
			break;
		}
	}
	if (!ok)
		goto done;
	if (r->nheaders > 0)
		qsort(hdrs, (size_t) r->nheaders, sizeof(CanonHeader),
			  canon_header_cmp);

	/* method, path, query */
	abuf_appends(out, r->method);
	abuf_appendc(out, '\n');
	abuf_appends(out, (r->encoded_path && r->encoded_path[0]) ?
				 r->encoded_path : "/");
	abuf_appendc(out, '\n');
	abuf_appends(out, r->canonical_query ? r->canonical_query : "");
	abuf_appendc(out, '\n');

	/* headers: one line per name, repeated names joined with ',' */
	for (i = 0; i < r->nheaders; i++)
	{
		if (i > 0 && strcmp(hdrs[i].name, hdrs[i - 1].name) == 0)
		{
			abuf_appendc(out, ',');
			abuf_appends(out, hdrs[i].value);
			continue;
		}
		if (i > 0)
		{
			abuf_appendc(out, '\n');
			abuf_appendc(&names, ';');
		}
		abuf_appends(out, hdrs[i].name);
		abuf_appendc(out, ':');
		abuf_appends(out, hdrs[i].value);
		abuf_appends(&names, hdrs[i].name);
	}
	if (r->nheaders > 0)
		abuf_appendc(out, '\n');
	abuf_appendc(out, '\n');
	abuf_append(&names, "", 0);

	/* signed headers, payload hash */
	if (names.data)
		abuf_appends(out, names.data);
	abuf_appendc(out, '\n');
	abuf_appends(out, r->payload_hash);

	if (signed_headers != NULL && names.data)
		abuf_appends(signed_headers, names.data);
	ok = !out->oom && !names.oom &&
		(signed_headers == NULL || !signed_headers->oom);

done:
	for (i = 0; i < n; i++)
	{
		free(hdrs[i].name);
		free(hdrs[i].value);
	}
	free(hdrs);
	abuf_free(&names);
	return ok;
}

bool
sigv4_string_to_sign(const SigV4Request *r, const char *canonical_request,
					 AbBuf *out)
{
	char		hash[DIGEST_SHA256_HEX];

	if (r == NULL || canonical_request == NULL || out == NULL || out->oom)
		return false;
	if (!valid_amz_date(r->amz_date) ||
		!valid_scope_part(r->region) || !valid_scope_part(r->service))
		return false;
	if (!digest_sha256_hex(canonical_request, strlen(canonical_request),
						   hash))
		return false;
	abuf_appendf(out, "%s\n%s\n%.8s/%s/%s/%s\n%s",
				 SIGV4_ALGORITHM, r->amz_date, r->amz_date,
				 r->region, r->service, SIGV4_TERMINATOR, hash);
	return !out->oom;
}

bool
sigv4_signature(const char *secret_key, const char *date8,
				const char *region, const char *service,
				const char *string_to_sign, char out[65])
{
	unsigned char k1[DIGEST_SHA256_LEN];
	unsigned char k2[DIGEST_SHA256_LEN];
	char	   *ksecret;
	size_t		slen;
	bool		ok;

	if (out == NULL)
		return false;
	out[0] = '\0';
	if (secret_key == NULL || !valid_date8(date8) ||
		!valid_scope_part(region) || !valid_scope_part(service) ||
		string_to_sign == NULL)
		return false;

	/* kSecret = "AWS4" + secret */
	slen = strlen(secret_key);
	ksecret = malloc(slen + 5);
	if (ksecret == NULL)
		return false;
	memcpy(ksecret, "AWS4", 4);
	memcpy(ksecret + 4, secret_key, slen + 1);

	/* kDate, kRegion, kService, kSigning, then the signature itself */
	ok = digest_hmac_sha256(ksecret, slen + 4, date8, 8, k1) &&
		digest_hmac_sha256(k1, sizeof(k1), region, strlen(region), k2) &&
		digest_hmac_sha256(k2, sizeof(k2), service, strlen(service), k1) &&
		digest_hmac_sha256(k1, sizeof(k1), SIGV4_TERMINATOR,
						   strlen(SIGV4_TERMINATOR), k2) &&
		digest_hmac_sha256(k2, sizeof(k2), string_to_sign,
						   strlen(string_to_sign), k1);
	if (ok)
		digest_hex(k1, sizeof(k1), out);

	secure_zero(ksecret, slen + 4);
	free(ksecret);
	secure_zero(k1, sizeof(k1));
	secure_zero(k2, sizeof(k2));
	return ok;
}

/*
 * Canonical request -> string to sign -> signature, for header and query
 * signing alike.  signed_headers may be NULL.
 */
static bool
sign_request(const SigV4Request *r, AbBuf *signed_headers, char sig[65])
{
	AbBuf		creq;
	AbBuf		sts;
	char		date8[9];
	bool		ok;

	sig[0] = '\0';
	if (r->access_key == NULL || r->access_key[0] == '\0' ||
		r->secret_key == NULL || !valid_amz_date(r->amz_date))
		return false;
	memcpy(date8, r->amz_date, 8);
	date8[8] = '\0';
	abuf_init(&creq);
	abuf_init(&sts);
	ok = sigv4_canonical_request(r, &creq, signed_headers) &&
		sigv4_string_to_sign(r, creq.data, &sts) &&
		sigv4_signature(r->secret_key, date8, r->region, r->service,
						sts.data, sig);
	abuf_free(&creq);
	abuf_free(&sts);
	return ok;
}

bool
sigv4_authorization(const SigV4Request *r, AbBuf *out)
{
	AbBuf		names;
	char		sig[65];
	bool		ok;

	if (r == NULL || out == NULL || out->oom)
		return false;
	abuf_init(&names);
	ok = sign_request(r, &names, sig);
	if (ok)
	{
		/* the layout of AWS's S3 examples: no space after the commas */
		abuf_appendf(out, "%s Credential=%s/%.8s/%s/%s/%s,"
					 "SignedHeaders=%s,Signature=%s",
					 SIGV4_ALGORITHM, r->access_key, r->amz_date,
					 r->region, r->service, SIGV4_TERMINATOR,
					 names.data ? names.data : "", sig);
		ok = !out->oom;
	}
	abuf_free(&names);
	secure_zero(sig, sizeof(sig));
	return ok;
}

bool
sigv4_presign_query(const SigV4Presign *p, AbBuf *out)
{
	SigV4Param *params = NULL;
	SigV4Param	host;
	SigV4Request r;
	AbBuf		query;
	AbBuf		cred;
	char		expires[24];
	char		sig[65];
	int			n = 0;
	int			i;
	bool		ok = false;

	if (p == NULL || out == NULL || out->oom)
		return false;
	if (p->nparams < 0 || (p->nparams > 0 && p->params == NULL))
		return false;
	if (p->host == NULL || p->host[0] == '\0' ||
		p->access_key == NULL || p->access_key[0] == '\0' ||
		p->secret_key == NULL ||
		!valid_amz_date(p->amz_date) ||
		!valid_scope_part(p->region) || !valid_scope_part(p->service) ||
		p->expires < 1 || p->expires > SIGV4_MAX_EXPIRES)
		return false;

	abuf_init(&query);
	abuf_init(&cred);
	abuf_appendf(&cred, "%s/%.8s/%s/%s/%s", p->access_key, p->amz_date,
				 p->region, p->service, SIGV4_TERMINATOR);
	snprintf(expires, sizeof(expires), "%ld", p->expires);
	if (cred.oom)
		goto done;

	params = calloc((size_t) p->nparams + 6, sizeof(SigV4Param));
	if (params == NULL)
		goto done;
	for (i = 0; i < p->nparams; i++)
		params[n++] = p->params[i];
	params[n].name = "X-Amz-Algorithm";
	params[n++].value = SIGV4_ALGORITHM;
	params[n].name = "X-Amz-Credential";
	params[n++].value = cred.data;
	params[n].name = "X-Amz-Date";
	params[n++].value = p->amz_date;
	params[n].name = "X-Amz-Expires";
	params[n++].value = expires;
	/* a session token is part of what is signed (S3 wants it so) */
	if (p->session_token != NULL && p->session_token[0] != '\0')
	{
		params[n].name = "X-Amz-Security-Token";
		params[n++].value = p->session_token;
	}
	params[n].name = "X-Amz-SignedHeaders";
	params[n++].value = "host";

	if (!sigv4_canonical_query(&query, params, n))
		goto done;

	host.name = "host";
	host.value = p->host;
	memset(&r, 0, sizeof(r));
	r.method = p->method ? p->method : "GET";
	r.encoded_path = p->encoded_path;
	r.canonical_query = query.data;
	r.headers = &host;
	r.nheaders = 1;
	r.payload_hash = "UNSIGNED-PAYLOAD";
	r.region = p->region;
	r.service = p->service;
	r.amz_date = p->amz_date;
	r.access_key = p->access_key;
	r.secret_key = p->secret_key;
	if (!sign_request(&r, NULL, sig))
		goto done;

	abuf_appends(out, query.data);
	abuf_appends(out, "&X-Amz-Signature=");
	abuf_appends(out, sig);
	ok = !out->oom;
	secure_zero(sig, sizeof(sig));

done:
	free(params);
	abuf_free(&query);
	abuf_free(&cred);
	return ok;
}
