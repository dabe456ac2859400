/*
 * s3_creds_sources.c
 *		The places AWS's SDKs take credentials from, one function each
 *		(s3_creds.c walks them in order and decides when to ask again):
 *
 *		- the environment: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY /
 *		  AWS_SESSION_TOKEN;
 *		- web identity: AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN
 *		  (+ AWS_ROLE_SESSION_NAME), exchanged at STS by the unsigned
 *		  AssumeRoleWithWebIdentity (regional endpoint, or
 *		  AWS_ENDPOINT_URL_STS);
 *		- the shared files: AWS_SHARED_CREDENTIALS_FILE (~/.aws/credentials)
 *		  and AWS_CONFIG_FILE (~/.aws/config), profile AWS_PROFILE or
 *		  "default", read as the AWS CLI reads them (ini.c);
 *		- the container endpoint: AWS_CONTAINER_CREDENTIALS_FULL_URI or
 *		  _RELATIVE_URI, with AWS_CONTAINER_AUTHORIZATION_TOKEN(_FILE);
 *		- EC2 instance metadata, IMDSv2 (a token first, kept for its 6
 *		  hours), at AWS_EC2_METADATA_SERVICE_ENDPOINT, unless
 *		  AWS_EC2_METADATA_DISABLED=true; IMDSv1 only if S3Config allows.
 *
 * Each says FOUND, ABSENT (not configured here: the chain goes on) or
 * FAILED (configured, and *err says why).  IMDS is ABSENT when nothing
 * answers like EC2's service and its endpoint was not set.
 *
 * Every HTTP call goes through s3_request() (retries, timeouts, the abort
 * callback); the container agent and IMDS without any proxy.  Error
 * messages name the source and what it answered, never an answer's body,
 * a token or a key.  Token files are read at every fetch: they rotate.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "ini.h"
#include "json.h"
#include "s3_internal.h"
#include "xml.h"

#define CREDS_FILE_MAX		(64 * 1024) /* a token file, a service's answer */
#define PROFILE_FILE_MAX	(1024 * 1024)	/* the shared files */
#define IMDS_DEFAULT		"http://169.254.169.254"
#define CONTAINER_HOST		"http://169.254.170.2"

static void
wipe_free(char *s)
{
	if (s)
	{
		memset(s, 0, strlen(s));
		free(s);
	}
}

void
s3_creds_clear(S3Credentials *cr)
{
	wipe_free(cr->access_key);
	wipe_free(cr->secret_key);
	wipe_free(cr->session_token);
	memset(cr, 0, sizeof(*cr));
}

/* a non-empty environment variable, or NULL */
static const char *
env(const char *name)
{
	const char *v = getenv(name);

	return (v && v[0]) ? v : NULL;
}

static S3CredResult fail(S3Error *err, S3CredSource src, S3ErrorKind kind,
						 const char *fmt,...)
			__attribute__((format(printf, 4, 5)));

static S3CredResult
fail(S3Error *err, S3CredSource src, S3ErrorKind kind, const char *fmt,...)
{
	char		msg[400];
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	s3_set_error(err, kind, "credentials", NULL, "%s: %s",
				 s3_cred_source_name(src), msg);
	return S3CRED_FAILED;
}

/* printable ASCII without spaces: what can go into a header unharmed */
static bool
header_safe(const char *s)
{
	for (; *s; s++)
	{
		if (*s <= ' ' || *s > '~')
			return false;
	}
	return true;
}

S3CredResult
s3_creds_keep(S3Credentials *out, S3CredSource src, const char *ak, const char *sk,
			  const char *token, time_t expires, S3Error *err)
{
	/* the secret only keys an HMAC: it never goes into a header */
	if (!header_safe(ak) || (token && !header_safe(token)))
		return fail(err, src, S3ERR_PROTOCOL,
					"the credentials hold characters no key or token has (spaces, line breaks or other control characters)");
	out->access_key = strdup(ak);
	out->secret_key = strdup(sk);
	out->session_token = strdup(token ? token : "");
	out->expires = expires;
	out->source = src;
	if (!out->access_key || !out->secret_key || !out->session_token)
	{
		s3_creds_clear(out);
		s3_set_error(err, S3ERR_OOM, "credentials", NULL, "out of memory");
		return S3CRED_FAILED;
	}
	return S3CRED_FOUND;
}

/*
 * "2026-12-02T04:00:00Z" -> time_t: a fraction of a second, "z", and an
 * offset "+hh:mm" or "-hh:mm" are allowed, no zone means UTC; a field out
 * of range is not.
 */
bool
s3_parse_iso8601(const char *s, time_t *out)
{
	struct tm	tm = {0};
	int			n = 0;
	int			oh = 0,
				om = 0;
	long		offset = 0;
	const char *p;

	if (s == NULL ||
		sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon,
			   &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n) != 6)
		return false;
	if (tm.tm_year < 1970 || tm.tm_mon < 1 || tm.tm_mon > 12 ||
		tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 ||
		tm.tm_min > 59 || tm.tm_sec > 60 ||
		tm.tm_hour < 0 || tm.tm_min < 0 || tm.tm_sec < 0)
		return false;
	p = s + n;
	if (*p == '.')
		for (p++; isdigit((unsigned char) *p); p++);
	if ((*p == '+' || *p == '-') && strlen(p) == 6 &&
		sscanf(p + 1, "%2d:%2d", &oh, &om) == 2 && oh <= 23 && om <= 59)
		offset = (*p == '+' ? 1 : -1) * (oh * 3600L + om * 60L);
	else if (!(strcmp(p, "Z") == 0 || strcmp(p, "z") == 0 || *p == '\0'))
		return false;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	*out = timegm(&tm) - offset;
	return *out > 0;
}

/*
 * A file's text, trailing white space cut; NULL if unreadable or longer
 * than max bytes (*too_big then): a file cut short is never parsed.
 */
static char *
read_small_file(const char *path, size_t max, bool *too_big)
{
	FILE	   *f = fopen(path, "r");
	char	   *buf;
	size_t		n;

	*too_big = false;
	if (f == NULL)
		return NULL;
	buf = malloc(max + 2);
	if (buf == NULL)
	{
		fclose(f);
		return NULL;
	}
	n = fread(buf, 1, max + 1, f);
	fclose(f);
	if (n > max)
	{
		*too_big = true;
		wipe_free(buf);
		return NULL;
	}
	while (n > 0 && isspace((unsigned char) buf[n - 1]))
		n--;
	buf[n] = '\0';
	return buf;
}

/*
 * One GET/PUT/POST to a credential service; resp holds the answer.
 * direct: no proxy.  The container agent and IMDS live on loopback or
 * link-local addresses no proxy reaches, and the container token must not
 * leave the host: only STS, on the internet, goes through a proxy.
 */
static bool
service_call(S3Client *c, const char *op, const char *method, const char *url,
			 bool direct, const SigV4Param *headers, int nheaders,
			 const char *body, const char *content_type, long timeout_ms,
			 int attempts, S3Response *resp, S3Error *err)
{
	S3Request	req = {0};

	req.direct = direct;
	req.op = op;
	req.method = method;
	req.url = url;
	req.headers = headers;
	req.nheaders = nheaders;
	req.body = body;
	req.body_len = body ? strlen(body) : 0;
	req.content_type = content_type;
	req.timeout_ms = timeout_ms;
	req.connect_timeout_ms = timeout_ms < 2000 ? timeout_ms : 2000;
	req.max_attempts = attempts;
	req.max_body = CREDS_FILE_MAX;
	return s3_request(c, &req, resp, err);
}

/*
 * Say what a failed service call was, without its body; code is the
 * service's error code if it gave one (STS's InvalidIdentityToken).
 */
static S3CredResult
call_failed(S3CredSource src, const char *what, const char *code, S3Error *err)
{
	S3Error		e = *err;

	if (e.kind == S3ERR_INTERRUPTED || e.kind == S3ERR_OOM)
		return S3CRED_FAILED;
	if (e.http_status > 0 && code && code[0])
		fail(err, src, S3ERR_HTTP, "%s answered HTTP %ld, %.60s",
			 what, e.http_status, code);
	else if (e.http_status > 0)
		fail(err, src, S3ERR_HTTP, "%s answered HTTP %ld", what, e.http_status);
	else
		fail(err, src, e.kind, "%s: %s", what, e.message);
	/* keep the status for the code that maps it, e.g. 403 */
	err->http_status = e.http_status;
	err->attempts = e.attempts;
	return S3CRED_FAILED;
}

/* {"AccessKeyId", "SecretAccessKey", "Token", "Expiration"} (IMDS, ECS) */
static S3CredResult
from_json(S3CredSource src, const char *what, const AbBuf *body,
		  S3Credentials *out, S3Error *err)
{
	JsonValue  *doc = json_parse(body->data ? body->data : "", body->len,
								 NULL, 0);
	const JsonValue *ak = json_get(doc, "AccessKeyId");
	const JsonValue *sk = json_get(doc, "SecretAccessKey");
	const JsonValue *tok = json_get(doc, "Token");
	const JsonValue *exp = json_get(doc, "Expiration");
	const JsonValue *code = json_get(doc, "Code");
	time_t		expires = 0;
	S3CredResult r;

	if (doc == NULL || doc->type != JV_OBJECT)
		r = fail(err, src, S3ERR_PROTOCOL, "%s did not answer with a JSON object", what);
	else if (code && code->type == JV_STRING && strcmp(code->string, "Success") != 0)
	{
		/* a word like "Failed" is repeated; anything else is not */
		bool		word = strspn(code->string, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") == strlen(code->string);

		r = fail(err, src, S3ERR_HTTP, "%s answered Code \"%.60s\"", what,
				 word ? code->string : "(not shown)");
	}
	else if (!ak || ak->type != JV_STRING || !ak->string[0] ||
			 !sk || sk->type != JV_STRING || !sk->string[0])
		r = fail(err, src, S3ERR_PROTOCOL, "%s answered without AccessKeyId and SecretAccessKey", what);
	else if (exp && (exp->type != JV_STRING || !s3_parse_iso8601(exp->string, &expires)))
		r = fail(err, src, S3ERR_PROTOCOL, "%s answered an Expiration that is not an ISO 8601 time", what);
	else
		r = s3_creds_keep(out, src, ak->string, sk->string,
						  tok && tok->type == JV_STRING ? tok->string : "", expires, err);
	json_free(doc);
	return r;
}

S3CredResult
s3_creds_from_env(S3Credentials *out, S3Error *err)
{
	const char *ak = env("AWS_ACCESS_KEY_ID");
	const char *sk = env("AWS_SECRET_ACCESS_KEY");

	if (ak == NULL && sk == NULL)
		return S3CRED_ABSENT;
	if (ak == NULL || sk == NULL)
		return fail(err, S3CRED_ENV, S3ERR_CONFIG,
					"AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set together");
	return s3_creds_keep(out, S3CRED_ENV, ak, sk, env("AWS_SESSION_TOKEN"), 0, err);
}

/* append s form-encoded (application/x-www-form-urlencoded, RFC 3986) */
static void
form_param(AbBuf *b, const char *name, const char *value)
{
	if (b->len > 0)
		abuf_appendc(b, '&');
	abuf_appends(b, name);
	abuf_appendc(b, '=');
	sigv4_uri_encode(b, value, strlen(value), false);
}

S3CredResult
s3_creds_from_web_identity(S3Client *c, S3Credentials *out, S3Error *err)
{
	const char *file = env("AWS_WEB_IDENTITY_TOKEN_FILE");
	const char *role = env("AWS_ROLE_ARN");
	const char *name = env("AWS_ROLE_SESSION_NAME");
	const char *region = env("AWS_REGION");
	char		session[64];
	char	   *token;
	bool		too_big;
	AbBuf		url,
				body;
	S3Response	resp;
	S3CredResult r;

	if (file == NULL && role == NULL)
		return S3CRED_ABSENT;
	if (file == NULL || role == NULL)
		return fail(err, S3CRED_WEB_IDENTITY, S3ERR_CONFIG,
					"AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN must be set together");
	token = read_small_file(file, CREDS_FILE_MAX, &too_big);
	if (token == NULL || token[0] == '\0')
	{
		free(token);
		return fail(err, S3CRED_WEB_IDENTITY, S3ERR_CONFIG,
					"could not read a token from AWS_WEB_IDENTITY_TOKEN_FILE \"%.200s\"%s", file,
					too_big ? " (larger than 64 kB)" : "");
	}
	if (name == NULL)
	{
		snprintf(session, sizeof(session), "aibackup-%ld", (long) time(NULL));
		name = session;
	}
	if (region == NULL)
		region = env("AWS_DEFAULT_REGION");
	if (region == NULL)
		region = c->cfg.region;

	abuf_init(&url);
	abuf_init(&body);
	if (env("AWS_ENDPOINT_URL_STS"))
		abuf_appendf(&url, "%s/", env("AWS_ENDPOINT_URL_STS"));
	else
		abuf_appendf(&url, "https://sts.%s.amazonaws.com/", region);
	form_param(&body, "Action", "AssumeRoleWithWebIdentity");
	form_param(&body, "Version", "2011-06-15");
	form_param(&body, "RoleArn", role);
	form_param(&body, "RoleSessionName", name);
	form_param(&body, "WebIdentityToken", token);
	wipe_free(token);

	s3_response_init(&resp);
	if (url.oom || body.oom)
		r = fail(err, S3CRED_WEB_IDENTITY, S3ERR_OOM, "out of memory");
	else if (!service_call(c, "AssumeRoleWithWebIdentity", "POST", url.data,
						   false, NULL, 0, body.data,
						   "application/x-www-form-urlencoded",
						   10000, 3, &resp, err))
	{
		XmlSpan		doc = {resp.body.data, resp.body.len};
		char	   *code = resp.body.data ? xml_find_text(doc, "Code") : NULL;

		/* STS's codes are words; anything else is not repeated */
		if (code && strspn(code, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz.") != strlen(code))
			code[0] = '\0';
		r = call_failed(S3CRED_WEB_IDENTITY, "STS", code, err);
		free(code);
	}
	else
	{
		XmlSpan		doc = {resp.body.data, resp.body.len};
		XmlSpan		cr;
		char	   *ak = NULL,
				   *sk = NULL,
				   *tok = NULL,
				   *exp = NULL;
		time_t		expires = 0;

		if (xml_find(doc, "Credentials", &cr))
		{
			ak = xml_find_text(cr, "AccessKeyId");
			sk = xml_find_text(cr, "SecretAccessKey");
			tok = xml_find_text(cr, "SessionToken");
			exp = xml_find_text(cr, "Expiration");
		}
		if (!ak || !ak[0] || !sk || !sk[0] || !tok || !tok[0])
			r = fail(err, S3CRED_WEB_IDENTITY, S3ERR_PROTOCOL,
					 "STS answered without Credentials");
		else if (!s3_parse_iso8601(exp, &expires))
			r = fail(err, S3CRED_WEB_IDENTITY, S3ERR_PROTOCOL,
					 "STS answered an Expiration that is not an ISO 8601 time");
		else
			r = s3_creds_keep(out, S3CRED_WEB_IDENTITY, ak, sk, tok, expires, err);
		wipe_free(ak);
		wipe_free(sk);
		wipe_free(tok);
		free(exp);
	}
	if (resp.body.data)
		memset(resp.body.data, 0, resp.body.len);
	s3_response_free(&resp);
	abuf_free(&url);
	if (body.data)
		memset(body.data, 0, body.len);
	abuf_free(&body);
	return r;
}

/* file named by var, else ~/.aws/name; NULL when neither is set */
static char *
aws_file_path(const char *var, const char *name)
{
	const char *v = env(var);
	const char *home = env("HOME");
	char		path[1024];

	if (v)
		return strdup(v);
	if (home == NULL)
		return NULL;
	snprintf(path, sizeof(path), "%s/.aws/%s", home, name);
	return access(path, F_OK) == 0 ? strdup(path) : NULL;
}

/* the first of keys[] the profile has, in the credentials or config file */
static const char *
profile_has(const char *cdoc, const char *fdoc, const char *profile,
			const char *const *keys, int nkeys)
{
	for (int i = 0; i < nkeys; i++)
	{
		char	   *c = cdoc ? ini_get(cdoc, profile, keys[i]) : NULL;
		char	   *f = fdoc ? ini_config_get(fdoc, profile, keys[i]) : NULL;
		bool		has = c || f;

		free(c);
		free(f);
		if (has)
			return keys[i];
	}
	return NULL;
}

/* a shared file's text; NULL with *failed (and *err) when it is too big */
static char *
read_profile_file(const char *path, const char *var, bool *failed, S3Error *err)
{
	bool		too_big;
	char	   *doc = path ? read_small_file(path, PROFILE_FILE_MAX, &too_big) : NULL;

	if (path && doc == NULL && too_big && !*failed)
	{
		*failed = true;
		fail(err, S3CRED_PROFILE, S3ERR_CONFIG, "%s \"%.200s\" is larger than 1 MB",
			 var, path);
	}
	return doc;
}

/*
 * The shared files, in botocore's order for a profile: a role or SSO
 * (refused: aibackup lacks them), keys in the credentials file,
 * credential_process (refused), keys in the config file.  A profile
 * without any passes to the next source; a profile AWS_PROFILE names
 * that neither file has is an error.  Missing files are not.
 */
S3CredResult
s3_creds_from_profile(S3Credentials *out, S3Error *err)
{
	static const char *const roles[] = {
		"role_arn", "sso_session", "sso_start_url", "web_identity_token_file",
	};
	static const char *const process[] = {"credential_process"};
	const char *profile = env("AWS_PROFILE");
	char	   *cpath = aws_file_path("AWS_SHARED_CREDENTIALS_FILE", "credentials");
	char	   *fpath = aws_file_path("AWS_CONFIG_FILE", "config");
	bool		failed = false;
	char	   *cdoc = read_profile_file(cpath, "AWS_SHARED_CREDENTIALS_FILE", &failed, err);
	char	   *fdoc = read_profile_file(fpath, "AWS_CONFIG_FILE", &failed, err);
	const char *other;
	char	   *ak = NULL,
			   *sk = NULL,
			   *tok = NULL;
	S3CredResult r = S3CRED_ABSENT;

	if (profile == NULL)
		profile = "default";
	if (failed)
		r = S3CRED_FAILED;
	else if ((other = profile_has(cdoc, NULL, profile, roles, 4)) != NULL ||
			 (other = profile_has(NULL, fdoc, profile, roles, 4)) != NULL)
		r = fail(err, S3CRED_PROFILE, S3ERR_CONFIG,
				 "profile \"%.100s\" uses %s, which aibackup does not support; give it static keys or use another source",
				 profile, other);
	else if (cdoc && (ak = ini_get(cdoc, profile, "aws_access_key_id")) != NULL)
	{
		sk = ini_get(cdoc, profile, "aws_secret_access_key");
		tok = ini_get(cdoc, profile, "aws_session_token");
	}
	else if ((other = profile_has(cdoc, fdoc, profile, process, 1)) != NULL)
		r = fail(err, S3CRED_PROFILE, S3ERR_CONFIG,
				 "profile \"%.100s\" uses %s, which aibackup does not support; give it static keys or use another source",
				 profile, other);
	else if (fdoc && (ak = ini_config_get(fdoc, profile, "aws_access_key_id")) != NULL)
	{
		sk = ini_config_get(fdoc, profile, "aws_secret_access_key");
		tok = ini_config_get(fdoc, profile, "aws_session_token");
	}
	else if (env("AWS_PROFILE") &&
			 !(cdoc && ini_has_section(cdoc, profile)) &&
			 !(fdoc && ini_config_has_profile(fdoc, profile)))
		r = fail(err, S3CRED_PROFILE, S3ERR_CONFIG,
				 "profile \"%.100s\" (AWS_PROFILE) is in neither the shared credentials nor the config file", profile);

	if (ak && (sk == NULL || sk[0] == '\0'))
		r = fail(err, S3CRED_PROFILE, S3ERR_CONFIG,
				 "profile \"%.100s\" has aws_access_key_id but no aws_secret_access_key", profile);
	else if (ak)
		r = s3_creds_keep(out, S3CRED_PROFILE, ak, sk, tok, 0, err);
	wipe_free(ak);
	wipe_free(sk);
	wipe_free(tok);
	wipe_free(cdoc);
	wipe_free(fdoc);
	free(cpath);
	free(fpath);
	return r;
}

/*
 * A full container URI must be https, or http to a loopback address or to
 * the ECS/EKS agents' link-local addresses, and carry no user name (as the
 * SDKs require: the token must not travel in the clear anywhere else).
 * The host is compared whole, as libcurl parses it.
 */
bool
s3_container_uri_allowed(const char *uri)
{
	static const char *const hosts[] = {
		"localhost", "[::1]", "169.254.170.2", "169.254.170.23", "[fd00:ec2::23]",
	};
	CURLU	   *u = curl_url();
	char	   *scheme = NULL,
			   *host = NULL,
			   *user = NULL;
	bool		ok = false;

	if (u && curl_url_set(u, CURLUPART_URL, uri, 0) == CURLUE_OK &&
		curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
		curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
		curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_NO_USER)
	{
		struct in_addr v4;

		if (strcasecmp(scheme, "https") == 0)
			ok = true;
		else if (strcasecmp(scheme, "http") == 0)
		{
			/* 127.0.0.0/8 in dotted decimal, as libcurl passes it on */
			ok = inet_pton(AF_INET, host, &v4) == 1 &&
				(ntohl(v4.s_addr) >> 24) == 127;
			for (size_t i = 0; !ok && i < sizeof(hosts) / sizeof(hosts[0]); i++)
				ok = strcasecmp(host, hosts[i]) == 0;
		}
	}
	curl_free(scheme);
	curl_free(host);
	curl_free(user);
	curl_url_cleanup(u);
	return ok;
}

S3CredResult
s3_creds_from_container(S3Client *c, S3Credentials *out, S3Error *err)
{
	const char *full = env("AWS_CONTAINER_CREDENTIALS_FULL_URI");
	const char *rel = env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
	const char *token_file = env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
	char	   *token = NULL;
	AbBuf		url;
	SigV4Param	h[1];
	int			nh = 0;
	S3Response	resp;
	S3CredResult r;

	if (full == NULL && rel == NULL)
		return S3CRED_ABSENT;
	abuf_init(&url);
	if (rel)
		abuf_appendf(&url, "%s%s%s", CONTAINER_HOST, rel[0] == '/' ? "" : "/", rel);
	else if (!s3_container_uri_allowed(full))
		return fail(err, S3CRED_CONTAINER, S3ERR_CONFIG,
					"AWS_CONTAINER_CREDENTIALS_FULL_URI must be https, or http to a loopback address or the container agent");
	else
		abuf_appends(&url, full);

	if (token_file)
	{
		bool		too_big;

		token = read_small_file(token_file, CREDS_FILE_MAX, &too_big);
		if (token == NULL)
		{
			abuf_free(&url);
			return fail(err, S3CRED_CONTAINER, S3ERR_CONFIG,
						"could not read AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE \"%.200s\"%s", token_file,
						too_big ? " (larger than 64 kB)" : "");
		}
	}
	else if (env("AWS_CONTAINER_AUTHORIZATION_TOKEN"))
		token = strdup(env("AWS_CONTAINER_AUTHORIZATION_TOKEN"));
	if (token && (strchr(token, '\r') || strchr(token, '\n')))
	{
		wipe_free(token);
		abuf_free(&url);
		return fail(err, S3CRED_CONTAINER, S3ERR_CONFIG,
					"the authorization token holds a line break");
	}
	if (token && token[0])
		h[nh++] = sigv4_param("Authorization", token);

	s3_response_init(&resp);
	if (url.oom)
		r = fail(err, S3CRED_CONTAINER, S3ERR_OOM, "out of memory");
	else if (!service_call(c, "container credentials", "GET", url.data, true, h, nh,
						   NULL, NULL, 5000, 3, &resp, err))
		r = call_failed(S3CRED_CONTAINER, "the container endpoint", NULL, err);
	else
		r = from_json(S3CRED_CONTAINER, "the container endpoint", &resp.body, out, err);
	if (resp.body.data)
		memset(resp.body.data, 0, resp.body.len);
	s3_response_free(&resp);
	wipe_free(token);
	abuf_free(&url);
	return r;
}

/*
 * IMDSv2 session token, kept for the process: it lives 6 hours, and a
 * refresh need not cost a third request.
 */
#define IMDS_TOKEN_TTL		21600
static char imds_token[256];
static char imds_token_base[512];
static time_t imds_token_until;

/*
 * The token into token[]: the kept one, or a new one ("" where IMDSv1 is
 * allowed and no v2 is offered).  configured: the caller asked for IMDS
 * (pinned, or its endpoint set), so an answer that is not EC2's is an
 * error, not a sign that this is no EC2 instance.
 */
static S3CredResult
imds_token_get(S3Client *c, const char *base, bool configured,
			   char *token, size_t tlen, bool *fresh, S3Error *err)
{
	SigV4Param	h[1];
	AbBuf		url;
	S3Response	resp;
	S3CredResult r = S3CRED_FOUND;
	char		ttl[16];
	time_t		now = time(NULL);

	token[0] = '\0';
	*fresh = false;
	if (imds_token[0] && strcmp(imds_token_base, base) == 0 &&
		now + 60 < imds_token_until)
	{
		snprintf(token, tlen, "%s", imds_token);
		return S3CRED_FOUND;
	}
	*fresh = true;
	abuf_init(&url);
	abuf_appendf(&url, "%s/latest/api/token", base);
	snprintf(ttl, sizeof(ttl), "%d", IMDS_TOKEN_TTL);
	h[0] = sigv4_param("X-aws-ec2-metadata-token-ttl-seconds", ttl);
	s3_response_init(&resp);
	if (url.oom)
		r = fail(err, S3CRED_IMDS, S3ERR_OOM, "out of memory");
	else if (service_call(c, "IMDS token", "PUT", url.data, true, h, 1, NULL, NULL,
						  1000, 2, &resp, err))
	{
		snprintf(token, tlen, "%.*s", (int) resp.body.len,
				 resp.body.data ? resp.body.data : "");
		if (token[0] == '\0' || !header_safe(token))
			r = fail(err, S3CRED_IMDS, S3ERR_PROTOCOL, "the IMDSv2 token is not usable");
	}
	else if (err->kind == S3ERR_INTERRUPTED || err->kind == S3ERR_OOM)
		r = S3CRED_FAILED;
	else if (c->cfg.imds_v1 && (err->kind == S3ERR_NETWORK ||
								err->http_status == 404 ||
								err->http_status == 405))
		memset(err, 0, sizeof(*err));	/* no IMDSv2 answer (or a hop limit of
										 * 1): v1 is allowed */
	else if (!configured && (err->kind == S3ERR_NETWORK ||
							 (err->http_status >= 400 && err->http_status < 500)))
		r = S3CRED_ABSENT;		/* no EC2 metadata service here */
	else if (err->http_status == 404 || err->http_status == 405)
		r = fail(err, S3CRED_IMDS, S3ERR_CONFIG,
				 "the instance metadata service offers no IMDSv2 token (HTTP %ld); allow IMDSv1 with aibackup.s3_imds_v1 or require IMDSv2 on the instance",
				 err->http_status);
	else
		r = call_failed(S3CRED_IMDS, "the IMDSv2 token request", NULL, err);
	if (r == S3CRED_FOUND && token[0])
	{
		snprintf(imds_token, sizeof(imds_token), "%s", token);
		snprintf(imds_token_base, sizeof(imds_token_base), "%s", base);
		imds_token_until = now + IMDS_TOKEN_TTL;
	}
	if (resp.body.data)
		memset(resp.body.data, 0, resp.body.len);
	s3_response_free(&resp);
	abuf_free(&url);
	return r;
}

/* GET base/latest/meta-data/iam/security-credentials/<role> into resp */
static bool
imds_get(S3Client *c, const char *base, const char *role, const char *token,
		 S3Response *resp, S3Error *err)
{
	SigV4Param	h[1];
	AbBuf		url;
	bool		ok;

	abuf_init(&url);
	abuf_appendf(&url, "%s/latest/meta-data/iam/security-credentials/%s",
				 base, role);
	h[0] = sigv4_param("X-aws-ec2-metadata-token", token);
	s3_response_free(resp);
	s3_response_init(resp);
	if (url.oom)
	{
		s3_set_error(err, S3ERR_OOM, "IMDS credentials", NULL, "out of memory");
		ok = false;
	}
	else
		ok = service_call(c, "IMDS credentials", "GET", url.data, true, h,
						  token[0] ? 1 : 0, NULL, NULL, 2000, 2, resp, err);
	abuf_free(&url);
	return ok;
}

S3CredResult
s3_creds_from_imds(S3Client *c, bool pinned, S3Credentials *out, S3Error *err)
{
	const char *endpoint = env("AWS_EC2_METADATA_SERVICE_ENDPOINT");
	const char *off = env("AWS_EC2_METADATA_DISABLED");
	char		base[512];
	char		token[256];
	char		role[256] = "";
	S3Response	resp;
	S3CredResult r;
	size_t		blen;
	bool		fresh;

	if (off && strcasecmp(off, "true") == 0)
		return pinned ? fail(err, S3CRED_IMDS, S3ERR_CONFIG,
							 "disabled by AWS_EC2_METADATA_DISABLED") : S3CRED_ABSENT;
	snprintf(base, sizeof(base), "%s", endpoint ? endpoint : IMDS_DEFAULT);
	blen = strlen(base);
	while (blen > 0 && base[blen - 1] == '/')
		base[--blen] = '\0';

	r = imds_token_get(c, base, pinned || endpoint != NULL, token,
					   sizeof(token), &fresh, err);
	s3_response_init(&resp);

	/* the role's name, then its credentials */
	for (int step = 0; step < 2 && r == S3CRED_FOUND; step++)
	{
		const char *what = step == 0 ? "the instance's role name request" :
		"the instance's credentials request";
		bool		ok = imds_get(c, base, role, token, &resp, err);

		/* a kept token the service no longer takes: a new one, once */
		if (!ok && err->http_status == 401 && token[0] && !fresh)
		{
			imds_token[0] = '\0';
			r = imds_token_get(c, base, true, token, sizeof(token), &fresh, err);
			if (r != S3CRED_FOUND)
				break;
			ok = imds_get(c, base, role, token, &resp, err);
		}
		if (!ok)
		{
			r = call_failed(S3CRED_IMDS, what, NULL, err);
			break;
		}
		if (step == 0)
		{
			size_t		n = strcspn(resp.body.data ? resp.body.data : "", "\r\n");

			if (n == 0 || n >= sizeof(role) ||
				strspn(resp.body.data, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+=,.@_-") < n)
				r = fail(err, S3CRED_IMDS, S3ERR_PROTOCOL,
						 "the instance has no IAM role (or answered an unusable role name)");
			else
				snprintf(role, sizeof(role), "%.*s", (int) n, resp.body.data);
		}
		else
			r = from_json(S3CRED_IMDS, "the instance metadata service",
						  &resp.body, out, err);
	}
	if (resp.body.data)
		memset(resp.body.data, 0, resp.body.len);
	s3_response_free(&resp);
	memset(token, 0, sizeof(token));
	return r;
}
