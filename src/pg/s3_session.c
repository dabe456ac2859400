/*
 * s3_session.c
 *		Glue between the pure-C S3 client and a PostgreSQL backend or worker.
 *
 * - Settings become an S3Config (ab_s3_config); where credentials come
 *   from (settings, the server's environment, AWS's services) is the
 *   core's business (core/s3_creds.c).
 * - The client (malloc'd, with a libcurl handle) is freed by a memory
 *   context reset callback, so an ERROR anywhere frees it too, and so
 *   does a FATAL exit (its transaction's abort deletes the context): a
 *   thread of the core must never point into it (core/s3_object.c's
 *   reader gives its thread a client of its own).
 * - Interrupts: libcurl polls ab_s3_abort_requested() from its progress
 *   callback; it only reads InterruptPending (no longjmp inside libcurl).
 *   After the call returns, ab_s3_report() runs CHECK_FOR_INTERRUPTS() so a
 *   cancel or termination is reported as such.
 */
#include "postgres.h"

#include <stdarg.h>
#include <stdlib.h>

#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "postmaster/interrupt.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "pg/s3_session.h"
#include "pg/settings.h"

/*
 * Stop a transfer only for what will really end the work: a cancel or a
 * termination that CHECK_FOR_INTERRUPTS() is free to act on, or a worker's
 * shutdown request.  Other interrupts (memory-context logging, barriers,
 * client connection checks) set InterruptPending too and must not fail a
 * backup.
 */
static int
ab_s3_abort_requested(void *arg)
{
	if (ShutdownRequestPending)
		return 1;
	if (!InterruptPending || InterruptHoldoffCount != 0 || CritSectionCount != 0)
		return 0;
	if (ProcDiePending)
		return 1;
	return (QueryCancelPending && QueryCancelHoldoffCount == 0) ? 1 : 0;
}

/* a proxy URL libcurl takes; the value itself is never quoted (a password) */
static void
check_proxy(const char *proxy)
{
	static const char *const schemes[] = {"http://", "https://", "socks4://",
	"socks4a://", "socks5://", "socks5h://"};

	if (proxy[0] == '\0')
		return;
	for (int i = 0; i < (int) lengthof(schemes); i++)
		if (pg_strncasecmp(proxy, schemes[i], strlen(schemes[i])) == 0 &&
			proxy[strlen(schemes[i])] != '\0')
			return;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("aibackup.s3_proxy is not a proxy URL"),
			 errhint("Use a URL such as \"http://proxy.example:3128\" or \"socks5h://127.0.0.1:1080\".")));
}

void
ab_s3_config(S3Config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->endpoint = ab_s3_endpoint ? ab_s3_endpoint : "";
	cfg->region = ab_s3_region && ab_s3_region[0] ? ab_s3_region : "us-east-1";
	cfg->bucket = ab_s3_bucket ? ab_s3_bucket : "";
	cfg->path_style = (ab_s3_uri_style == AB_URI_STYLE_PATH);
	cfg->access_key = ab_s3_access_key_id ? ab_s3_access_key_id : "";
	cfg->secret_key = ab_s3_secret_access_key ? ab_s3_secret_access_key : "";
	cfg->session_token = ab_s3_session_token ? ab_s3_session_token : "";
	cfg->cred_source = (S3CredSource) ab_s3_credential_source;
	cfg->imds_v1 = ab_s3_imds_v1;
	cfg->ca_file = ab_s3_ca_file ? ab_s3_ca_file : "";
	cfg->verify_tls = ab_s3_verify_tls;
	cfg->proxy = ab_s3_proxy ? ab_s3_proxy : "";
	cfg->sse = ab_s3_sse ? ab_s3_sse : "";
	cfg->sse_kms_key_id = ab_s3_sse_kms_key_id ? ab_s3_sse_kms_key_id : "";
	cfg->storage_class = ab_s3_storage_class ? ab_s3_storage_class : "";
	cfg->checksum = (S3Checksum) ab_s3_checksum;
	cfg->abort_cb = ab_s3_abort_requested;
	cfg->abort_arg = NULL;

	if (cfg->bucket[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("aibackup.s3_bucket is not set"),
				 errhint("Set aibackup.s3_bucket in postgresql.conf and reload.")));
	if (cfg->sse_kms_key_id[0] && strcmp(cfg->sse, "aws:kms") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("aibackup.s3_sse_kms_key_id is set but aibackup.s3_sse is not \"aws:kms\""),
				 errhint("Set aibackup.s3_sse = 'aws:kms', or empty aibackup.s3_sse_kms_key_id.")));
	check_proxy(cfg->proxy);
}

static void
ab_s3_client_free_cb(void *arg)
{
	s3_client_free((S3Client *) arg);
}

S3Client *
ab_s3_client(void)
{
	S3Config	cfg;
	S3Error		err;
	S3Client   *c;
	MemoryContextCallback *cb;

	ab_s3_config(&cfg);
	cb = MemoryContextAlloc(CurrentMemoryContext, sizeof(MemoryContextCallback));
	c = s3_client_new(&cfg, &err);
	if (c == NULL)
		ab_s3_report(&err);
	cb->func = ab_s3_client_free_cb;
	cb->arg = c;
	MemoryContextRegisterResetCallback(CurrentMemoryContext, cb);
	return c;
}

static int
ab_s3_errcode(const S3Error *err)
{
	switch (err->kind)
	{
		case S3ERR_CONFIG:
			return ERRCODE_INVALID_PARAMETER_VALUE;
		case S3ERR_NETWORK:
			return ERRCODE_CONNECTION_FAILURE;
		case S3ERR_NOT_FOUND:
			return ERRCODE_UNDEFINED_OBJECT;
		case S3ERR_INTERRUPTED:
			return ERRCODE_QUERY_CANCELED;
		case S3ERR_OOM:
			return ERRCODE_OUT_OF_MEMORY;
		case S3ERR_LIMIT:
			return ERRCODE_PROGRAM_LIMIT_EXCEEDED;
		case S3ERR_HTTP:
			if (err->http_status == 403)
				return ERRCODE_INSUFFICIENT_PRIVILEGE;
			return ERRCODE_EXTERNAL_ROUTINE_EXCEPTION;
		default:
			return ERRCODE_EXTERNAL_ROUTINE_EXCEPTION;
	}
}

static const char *
ab_s3_hint(const S3Error *err)
{
	if (strcmp(err->op, "credentials") == 0)
		return "Set aibackup.s3_access_key_id and aibackup.s3_secret_access_key, or give the server's environment what aibackup.s3_credential_source needs (README, \"Running on AWS\").";
	if (strcmp(err->code, "NotImplemented") == 0 && ab_s3_sse && ab_s3_sse[0])
		return "The S3 store may not support server-side encryption: check aibackup.s3_sse.";
	if (strcmp(err->code, "InvalidStorageClass") == 0)
		return "The S3 store does not offer this storage class: check aibackup.s3_storage_class.";
	if ((strcmp(err->code, "KMS.NotFoundException") == 0 ||
		 strcmp(err->code, "KMS.DisabledException") == 0) ||
		(strcmp(err->code, "InvalidArgument") == 0 && ab_s3_sse && ab_s3_sse[0]))
		return "Check aibackup.s3_sse and aibackup.s3_sse_kms_key_id.";
	if (strcmp(err->code, "ExpiredToken") == 0)
		return "The temporary credentials expired and new ones were refused or were stale too: check the credential source and the server's clock.";
	if (strcmp(err->code, "SignatureDoesNotMatch") == 0)
		return "Check aibackup.s3_secret_access_key (or AWS_SECRET_ACCESS_KEY) and aibackup.s3_region.";
	if (strcmp(err->code, "InvalidAccessKeyId") == 0)
		return "Check aibackup.s3_access_key_id (or AWS_ACCESS_KEY_ID).";
	if (strcmp(err->code, "NoSuchBucket") == 0)
		return "Check aibackup.s3_bucket, and aibackup.s3_uri_style for S3-compatible stores.";
	if (strcmp(err->code, "AccessDenied") == 0)
		return "The credentials lack permission for this bucket or prefix.";
	if (strcmp(err->code, "RequestTimeTooSkewed") == 0)
		return "The server's clock differs from S3's: check NTP.";
	if (strcmp(err->code, "KeyTooLongError") == 0)
		return "Shorten aibackup.s3_prefix.";
	if (strcmp(err->code, "InvalidArgument") == 0 &&
		strcmp(err->op, "UploadPart") == 0)
		return "The S3 store may allow fewer parts per upload than S3's 10000 (Swift's s3api: max_upload_part_num, 1000 by default).";
	if (err->kind == S3ERR_NETWORK && strstr(err->message, "TLS") != NULL)
		return "Set aibackup.s3_ca_file to the CA certificate that signed the S3 server's certificate.";
	if (err->kind == S3ERR_NETWORK && ab_s3_proxy && ab_s3_proxy[0])
		return "Check aibackup.s3_endpoint, aibackup.s3_proxy and that both are reachable.";
	if (err->kind == S3ERR_NETWORK)
		return "Check aibackup.s3_endpoint and that the S3 server is reachable.";
	return NULL;
}

void
ab_s3_report(const S3Error *err)
{
	const char *hint;

	/* a cancel or shutdown is reported as what it is */
	if (err->kind == S3ERR_INTERRUPTED)
		CHECK_FOR_INTERRUPTS();

	hint = ab_s3_hint(err);
	if (strcmp(err->op, "credentials") == 0)
		ereport(ERROR,
				(errcode(ab_s3_errcode(err)),
				 errmsg("could not get S3 credentials: %s", err->message),
				 hint ? errhint("%s", hint) : 0));
	ereport(ERROR,
			(errcode(ab_s3_errcode(err)),
			 err->key[0] ?
			 errmsg("S3 %s of \"%s\" failed: %s", err->op, err->key, err->message) :
			 errmsg("S3 %s failed: %s", err->op, err->message),
			 err->http_status > 0 ?
			 (err->code[0] ?
			  errdetail("HTTP status %ld, S3 error code %s, after %d attempt(s).",
						err->http_status, err->code, err->attempts) :
			  errdetail("HTTP status %ld, after %d attempt(s).",
						err->http_status, err->attempts)) :
			 (err->attempts > 0 ?
			  errdetail("No answer from the server after %d attempt(s).",
						err->attempts) : 0),
			 hint ? errhint("%s", hint) : 0));
	pg_unreachable();
}

char *
ab_s3_key(const char *first,...)
{
	StringInfoData buf;
	va_list		ap;
	const char *part;

	initStringInfo(&buf);
	va_start(ap, first);
	for (part = first; part != NULL; part = va_arg(ap, const char *))
	{
		const char *p = part;
		size_t		n;

		while (*p == '/')
			p++;
		n = strlen(p);
		while (n > 0 && p[n - 1] == '/')
			n--;
		if (n == 0)
			continue;
		if (buf.len > 0)
			appendStringInfoChar(&buf, '/');
		appendBinaryStringInfo(&buf, p, n);
	}
	va_end(ap);
	return buf.data;
}

/* S3 refuses X-Amz-Expires above 604800 seconds */
#define AB_PRESIGN_MAX_SECONDS	(7 * 24 * 3600)

long
ab_presign_seconds(const Interval *expires)
{
	double		seconds;

	seconds = (double) expires->time / USECS_PER_SEC +
		(double) expires->day * SECS_PER_DAY +
		(double) expires->month * DAYS_PER_MONTH * SECS_PER_DAY;
	if (seconds < 1 || seconds > AB_PRESIGN_MAX_SECONDS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("presigned URL expiry must be between 1 second and 7 days"),
				 seconds < 1 ? 0 :
				 errdetail("S3 refuses X-Amz-Expires above 604800 seconds.")));
	return (long) seconds;
}

char *
ab_presign_key(const char *key, long seconds, TimestampTz signed_at)
{
	static time_t warned_expire = 0;
	S3Config	cfg;
	S3Client   *client;
	S3Error		err;
	char	   *url;
	char	   *result;
	time_t		creds_expire = 0;

	if (TIMESTAMP_NOT_FINITE(signed_at))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("signing time must be finite")));
	/* a client of its own, freed at once: a table may have many objects */
	ab_s3_config(&cfg);
	client = s3_client_new(&cfg, &err);
	url = client ? s3_client_presign_get(client, key, seconds,
										 (time_t) timestamptz_to_time_t(signed_at),
										 &creds_expire, &err) : NULL;
	s3_client_free(client);
	if (url == NULL)
		ab_s3_report(&err);
	if (creds_expire != 0 &&
		creds_expire < (time_t) timestamptz_to_time_t(signed_at) + seconds &&
		creds_expire != warned_expire)
	{
		/* once per set of credentials, not for each of a table's objects */
		warned_expire = creds_expire;
		ereport(WARNING,
				(errmsg("presigned URLs stop working at %s, before they expire",
						timestamptz_to_str(time_t_to_timestamptz((pg_time_t) creds_expire))),
				 errdetail("They are signed with temporary credentials, which expire then."),
				 errhint("Sign with long-lived keys (aibackup.s3_access_key_id) for URLs that must live longer.")));
	}
	result = pstrdup(url);
	free(url);
	return result;
}
