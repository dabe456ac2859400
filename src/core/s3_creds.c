/*
 * s3_creds.c
 *		Which credentials the S3 client signs with, and when it asks for
 *		new ones.  The sources (s3_creds_sources.c) are AWS's own default
 *		chain, walked in the SDKs' order: the keys of S3Config, the
 *		environment, web identity, the shared files, the container
 *		endpoint, IMDS.  In AUTO the first that is configured is used, and
 *		if it fails the fetch fails: a configured source is never skipped
 *		silently for the next.  A pinned source is the only one tried.
 *
 * Temporary credentials are kept for the process (every client of a
 * session starts from them) and fetched again S3_CREDS_REFRESH_SECONDS
 * before they expire; inside that window before each request, but at most
 * every S3_CREDS_RETRY_SECONDS while a minute is left.  A fetch that fails
 * for a moment leaves credentials still valid in use; a wrong setting or
 * file does not.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "s3_internal.h"

const char *
s3_cred_source_name(S3CredSource source)
{
	switch (source)
	{
		case S3CRED_AUTO:
			return "auto";
		case S3CRED_STATIC:
			return "settings";
		case S3CRED_ENV:
			return "environment";
		case S3CRED_WEB_IDENTITY:
			return "web identity";
		case S3CRED_PROFILE:
			return "profile";
		case S3CRED_CONTAINER:
			return "container endpoint";
		case S3CRED_IMDS:
			return "instance metadata";
	}
	return "?";
}

/* the chain: a pinned source, or the first configured one */
static bool
creds_fetch(S3Client *c, S3Credentials *out, S3Error *err)
{
	const S3Config *cfg = &c->cfg;
	S3CredSource pin = cfg->cred_source;
	bool		have_static = cfg->access_key && cfg->access_key[0];
	S3CredResult r = S3CRED_ABSENT;

	memset(out, 0, sizeof(*out));
	if (pin == S3CRED_STATIC || (pin == S3CRED_AUTO && have_static))
	{
		if (!have_static || !cfg->secret_key || !cfg->secret_key[0])
		{
			s3_set_error(err, S3ERR_CONFIG, "credentials", NULL,
						 "settings: the access key id and the secret access key must both be set");
			return false;
		}
		return s3_creds_keep(out, S3CRED_STATIC, cfg->access_key, cfg->secret_key,
							 cfg->session_token, 0, err) == S3CRED_FOUND;
	}
	if (r == S3CRED_ABSENT && (pin == S3CRED_AUTO || pin == S3CRED_ENV))
		r = s3_creds_from_env(out, err);
	if (r == S3CRED_ABSENT && (pin == S3CRED_AUTO || pin == S3CRED_WEB_IDENTITY))
		r = s3_creds_from_web_identity(c, out, err);
	if (r == S3CRED_ABSENT && (pin == S3CRED_AUTO || pin == S3CRED_PROFILE))
		r = s3_creds_from_profile(out, err);
	if (r == S3CRED_ABSENT && (pin == S3CRED_AUTO || pin == S3CRED_CONTAINER))
		r = s3_creds_from_container(c, out, err);
	if (r == S3CRED_ABSENT && (pin == S3CRED_AUTO || pin == S3CRED_IMDS))
		r = s3_creds_from_imds(c, pin == S3CRED_IMDS, out, err);
	if (r == S3CRED_ABSENT)
	{
		if (pin == S3CRED_AUTO)
			s3_set_error(err, S3ERR_CONFIG, "credentials", NULL,
						 "no S3 credentials were found (settings, environment, web identity, profile, container endpoint, instance metadata)");
		else
			s3_set_error(err, S3ERR_CONFIG, "credentials", NULL,
						 "%s: not configured", s3_cred_source_name(pin));
	}
	return r == S3CRED_FOUND;
}

/*
 * Temporary credentials outlive the client that fetched them: every client
 * of the process with the same source setting starts from them (a SQL call
 * makes a client, and IMDS or STS need not be asked at every call).
 */
static S3Credentials process_creds;
static S3CredSource process_creds_pin;

static bool
creds_copy(S3Credentials *dst, const S3Credentials *src)
{
	S3Error		ignore;

	return s3_creds_keep(dst, src->source, src->access_key, src->secret_key,
						 src->session_token, src->expires, &ignore) == S3CRED_FOUND;
}

/* whether credentials are good for a while: not inside the refresh window */
static bool
creds_fresh(const S3Credentials *cr, time_t now)
{
	return cr->access_key &&
		(cr->expires == 0 || now + S3_CREDS_REFRESH_SECONDS < cr->expires);
}

/* whether the client's settings name keys, which the chain does not touch */
static bool
uses_static_keys(const S3Client *c)
{
	return (c->cfg.cred_source == S3CRED_AUTO || c->cfg.cred_source == S3CRED_STATIC) &&
		c->cfg.access_key && c->cfg.access_key[0];
}

/* whether the process's credentials can serve this client until when */
static bool
process_creds_usable(const S3Client *c, time_t until)
{
	return !uses_static_keys(c) && process_creds.access_key &&
		process_creds_pin == c->cfg.cred_source &&
		process_creds.expires != 0 && until < process_creds.expires;
}

/* the client takes the process's credentials */
static bool
take_process_creds(S3Client *c)
{
	s3_creds_clear(&c->creds);
	return creds_copy(&c->creds, &process_creds);
}

/*
 * Inside the refresh window, a source that keeps handing out the same
 * credentials (IMDS does until it rotates them) is asked at most once per
 * S3_CREDS_RETRY_SECONDS while they have a minute left: not before every
 * request.
 */
#define S3_CREDS_RETRY_SECONDS		10
static time_t process_creds_asked;

/*
 * After a fetch failed for a moment (no answer, a 5xx, credentials that
 * came expired), credentials still valid are used: the client's, else the
 * process's.  Not after a setting or a file is wrong: that is the error.
 */
static bool
creds_fallback(S3Client *c, time_t now, bool transient, S3Error *err)
{
	S3Credentials *cur = &c->creds;

	if (!transient)
		return false;
	if (!(cur->access_key && (cur->expires == 0 || now + 10 < cur->expires)) &&
		!(process_creds_usable(c, now + 10) && take_process_creds(c)))
		return false;
	memset(err, 0, sizeof(*err));
	return true;
}

bool
s3_creds_ensure(S3Client *c, bool force, S3Error *err)
{
	S3Credentials fresh;
	time_t		now = time(NULL);
	bool		ok;
	bool		transient;

	if (c->creds_fixed)
	{
		/* a prefetch thread's client: its caller fetches new credentials */
		if (!force && creds_fresh(&c->creds, now))
			return true;
		c->creds_wanted = true;
		s3_set_error(err, S3ERR_CONFIG, "credentials", NULL,
					 "new credentials are needed");
		return false;
	}
	if (force && !uses_static_keys(c))
		s3_creds_clear(&process_creds);
	else if (!force && creds_fresh(&c->creds, now))
		return true;
	else if (!force &&
			 (process_creds_usable(c, now + S3_CREDS_REFRESH_SECONDS) ||
			  (process_creds_usable(c, now + 60) &&
			   now < process_creds_asked + S3_CREDS_RETRY_SECONDS)) &&
			 take_process_creds(c))
		return true;

	process_creds_asked = now;
	ok = creds_fetch(c, &fresh, err);
	transient = !ok && (err->kind == S3ERR_NETWORK ||
						(err->kind == S3ERR_HTTP && err->http_status >= 500));
	if (ok && fresh.expires != 0 && fresh.expires <= now)
	{
		char		when[32];
		struct tm	tm;

		gmtime_r(&fresh.expires, &tm);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
		s3_set_error(err, S3ERR_CONFIG, "credentials", NULL,
					 "%s: the credentials it gave had expired already (at %s); check the clock",
					 s3_cred_source_name(fresh.source), when);
		s3_creds_clear(&fresh);
		ok = false;
		transient = true;
	}
	if (!ok)
		return !force && creds_fallback(c, now, transient, err);

	s3_creds_clear(&c->creds);
	c->creds = fresh;
	/* the process keeps the newest temporary credentials, or none */
	if (!uses_static_keys(c))
	{
		s3_creds_clear(&process_creds);
		if (fresh.expires != 0 && creds_copy(&process_creds, &fresh))
			process_creds_pin = c->cfg.cred_source;
	}
	return true;
}

char *
s3_client_presign_get(S3Client *c, const char *key, long expires,
					  time_t signed_at, time_t *creds_expire, S3Error *err)
{
	S3Config	cfg = c->cfg;

	if (!s3_creds_ensure(c, false, err))
		return NULL;
	cfg.access_key = c->creds.access_key;
	cfg.secret_key = c->creds.secret_key;
	cfg.session_token = c->creds.session_token;
	*creds_expire = c->creds.expires;
	return s3_presign_get(&cfg, key, expires, signed_at, err);
}
