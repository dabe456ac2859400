/*
 * settings.c
 *		Defines the aibackup.* settings, with check hooks that refuse bad
 *		values up front, and keeps secrets out of sight.
 *
 * Secrets (access key id, secret key, session token) are superuser-only,
 * hidden from SHOW ALL, and shown as "********" to everyone through a show
 * hook.  They have no check hook on purpose: PostgreSQL's "invalid value
 * for parameter" message quotes the value.  The postmaster's own log line
 * on reload ("parameter ... changed to ...") quotes it too, and so does a
 * logged ALTER SYSTEM statement: ab_emit_log_hook redacts those lines.
 */
#include "postgres.h"

#include <ctype.h>
#include <limits.h>

#include "miscadmin.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/elog.h"
#include "utils/varlena.h"
#include "utils/guc.h"

#include "core/s3.h"
#include "pg/settings.h"

char	   *ab_s3_endpoint = NULL;
char	   *ab_s3_region = NULL;
char	   *ab_s3_bucket = NULL;
char	   *ab_s3_prefix = NULL;
int			ab_s3_uri_style = AB_URI_STYLE_VIRTUAL;
char	   *ab_s3_access_key_id = NULL;
char	   *ab_s3_secret_access_key = NULL;
char	   *ab_s3_session_token = NULL;
char	   *ab_s3_ca_file = NULL;
int			ab_s3_credential_source = S3CRED_AUTO;
bool		ab_s3_imds_v1 = false;
char	   *ab_s3_proxy = NULL;
char	   *ab_s3_sse = NULL;
char	   *ab_s3_sse_kms_key_id = NULL;
char	   *ab_s3_storage_class = NULL;
int			ab_s3_checksum = S3CHECKSUM_AUTO;
bool		ab_s3_verify_tls = true;
int			ab_compression_level = 6;
char	   *ab_exclude = NULL;
int			ab_lock_timeout_ms = 60000;
bool		ab_incremental = true;
int			ab_full_every_s = 7 * 24 * 3600;
int			ab_max_rate_mb = 0;
int			ab_max_parallel_tables = 2;
bool		ab_enabled = true;
bool		ab_backup_from_standby = false;
int			ab_interval_s = 4 * 3600;
char	   *ab_databases = NULL;
int			ab_max_workers = 1;
int			ab_max_databases = 1024;
int			ab_retention_days = 0;

static const struct config_enum_entry uri_style_options[] = {
	{"virtual", AB_URI_STYLE_VIRTUAL, false},
	{"path", AB_URI_STYLE_PATH, false},
	{NULL, 0, false}
};

static const struct config_enum_entry credential_source_options[] = {
	{"auto", S3CRED_AUTO, false},
	{"settings", S3CRED_STATIC, false},
	{"environment", S3CRED_ENV, false},
	{"web_identity", S3CRED_WEB_IDENTITY, false},
	{"profile", S3CRED_PROFILE, false},
	{"container", S3CRED_CONTAINER, false},
	{"imds", S3CRED_IMDS, false},
	{NULL, 0, false}
};

static const struct config_enum_entry checksum_options[] = {
	{"auto", S3CHECKSUM_AUTO, false},
	{"md5", S3CHECKSUM_MD5, false},
	{"sha256", S3CHECKSUM_SHA256, false},
	{NULL, 0, false}
};

/*
 * The secret settings, whose values must never be shown or logged (a
 * proxy URL may hold a user name and password).
 */
static const char *const secret_settings[] = {
	"aibackup.s3_access_key_id",
	"aibackup.s3_secret_access_key",
	"aibackup.s3_session_token",
	"aibackup.s3_proxy",
};

static emit_log_hook_type prev_emit_log_hook = NULL;

static bool
check_endpoint(char **newval, void **extra, GucSource source)
{
	char		msg[256];

	if (*newval == NULL || (*newval)[0] == '\0')
		return true;
	if (!s3_endpoint_valid(*newval, msg, sizeof(msg)))
	{
		/* the core's messages start in lower case; a DETAIL is a sentence */
		msg[0] = pg_toupper((unsigned char) msg[0]);
		GUC_check_errdetail("%s.", msg);
		GUC_check_errhint("Use a URL such as \"https://s3.eu-west-1.amazonaws.com\" or \"http://127.0.0.1:9000\", or leave it empty for AWS.");
		return false;
	}
	return true;
}

static bool
check_region(char **newval, void **extra, GucSource source)
{
	const char *s = *newval;

	if (s == NULL || s[0] == '\0')
	{
		GUC_check_errdetail("The region must not be empty.");
		return false;
	}
	for (; *s; s++)
	{
		if (!isalnum((unsigned char) *s) && *s != '-' && *s != '_')
		{
			GUC_check_errdetail("A region consists of letters, digits, hyphens and underscores, such as \"eu-west-1\".");
			return false;
		}
	}
	return true;
}

static bool
check_bucket(char **newval, void **extra, GucSource source)
{
	const char *s = *newval;

	if (s == NULL || s[0] == '\0')
		return true;
	if (strlen(s) < 3 || strlen(s) > 255)
	{
		GUC_check_errdetail("A bucket name is 3 to 255 characters long.");
		return false;
	}
	for (; *s; s++)
	{
		if (!isalnum((unsigned char) *s) && *s != '-' && *s != '.' && *s != '_')
		{
			GUC_check_errdetail("A bucket name consists of letters, digits, hyphens, dots and underscores.");
			return false;
		}
	}
	return true;
}

static bool
check_prefix(char **newval, void **extra, GucSource source)
{
	const char *s = *newval;

	if (s == NULL)
		return true;
	for (; *s; s++)
	{
		if ((unsigned char) *s < 0x20 || *s == 0x7f || *s == '\\')
		{
			GUC_check_errdetail("The prefix must not contain control characters or backslashes.");
			return false;
		}

		/*
		 * Its bytes go into keys as they are, while names are converted to
		 * UTF-8: a non-ASCII prefix would mean different things to databases
		 * of different encodings.
		 */
		if ((unsigned char) *s >= 0x80)
		{
			GUC_check_errdetail("The prefix must be ASCII.");
			return false;
		}
	}
	if (strstr(*newval, "//") != NULL)
	{
		GUC_check_errdetail("The prefix must not contain empty path segments (\"//\").");
		return false;
	}
	return true;
}

static bool
check_ca_file(char **newval, void **extra, GucSource source)
{
	if (*newval && (*newval)[0] != '\0' && (*newval)[0] != '/')
	{
		GUC_check_errdetail("The CA file must be given as an absolute path.");
		return false;
	}
	return true;
}

/*
 * Parse an aibackup.exclude value into a list of two-element lists
 * (schema, table), identifiers folded as SQL does; table may be "*".
 * False (with *bad set to the offending item) when it does not parse.
 */
bool
ab_exclude_parse(const char *value, List **patterns, char **bad)
{
	const char *p = value;

	*patterns = NIL;
	*bad = NULL;
	while (p && *p)
	{
		const char *start;
		bool		quoted = false;
		char	   *item;
		List	   *names;

		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (*p == '\0')
			break;
		start = p;
		for (; *p; p++)
		{
			if (*p == '"')
				quoted = !quoted;
			else if (*p == ',' && !quoted)
				break;
		}
		item = pnstrdup(start, p - start);
		*bad = pstrdup(item);
		if (quoted || !SplitIdentifierString(item, '.', &names) ||
			list_length(names) != 2)
			return false;
		*patterns = lappend(*patterns, names);
	}
	*bad = NULL;
	return true;
}

static bool
check_exclude(char **newval, void **extra, GucSource source)
{
	List	   *patterns;
	char	   *bad;

	if (*newval == NULL)
		return true;
	if (!ab_exclude_parse(*newval, &patterns, &bad))
	{
		GUC_check_errdetail("\"%s\" is not of the form schema.table or schema.*.", bad);
		return false;
	}
	return true;
}

static bool
check_databases(char **newval, void **extra, GucSource source)
{
	char	   *raw;
	List	   *names;

	if (*newval == NULL || strcmp(*newval, "*") == 0)
		return true;
	raw = pstrdup(*newval);
	if (!SplitIdentifierString(raw, ',', &names))
	{
		GUC_check_errdetail("Give * or a comma-separated list of database names.");
		return false;
	}
	return true;
}

static bool
check_sse(char **newval, void **extra, GucSource source)
{
	const char *s = *newval;

	if (s == NULL || s[0] == '\0' || strcmp(s, "AES256") == 0 ||
		strcmp(s, "aws:kms") == 0)
		return true;
	GUC_check_errdetail("Server-side encryption is \"\" (the bucket's default), \"AES256\" or \"aws:kms\".");
	return false;
}

/* a header value S3 takes: printable ASCII without spaces */
static bool
check_header_token(char **newval, void **extra, GucSource source)
{
	for (const char *s = *newval ? *newval : ""; *s; s++)
	{
		if (*s <= ' ' || *s > '~')
		{
			GUC_check_errdetail("The value must be printable ASCII without spaces.");
			return false;
		}
	}
	return true;
}

static bool
check_storage_class(char **newval, void **extra, GucSource source)
{
	const char *s = *newval ? *newval : "";

	if (strcmp(s, "GLACIER") == 0 || strcmp(s, "DEEP_ARCHIVE") == 0)
	{
		GUC_check_errdetail("Objects of storage class %s cannot be read until they are restored from the archive, so aibackup could not restore from them.", s);
		GUC_check_errhint("Use a lifecycle rule on the bucket to move old backups to an archive class.");
		return false;
	}
	for (; *s; s++)
	{
		if (!(*s >= 'A' && *s <= 'Z') && *s != '_')
		{
			GUC_check_errdetail("A storage class is written in capital letters and underscores, such as \"STANDARD_IA\".");
			return false;
		}
	}
	return true;
}

static const char *
show_secret(const char *value)
{
	return (value && value[0]) ? "********" : "";
}

static const char *
show_access_key_id(void)
{
	return show_secret(ab_s3_access_key_id);
}

static const char *
show_secret_access_key(void)
{
	return show_secret(ab_s3_secret_access_key);
}

static const char *
show_session_token(void)
{
	return show_secret(ab_s3_session_token);
}

/* a proxy URL with its user name and password masked */
static const char *
show_proxy(void)
{
	static char buf[1024];
	const char *v = ab_s3_proxy ? ab_s3_proxy : "";
	const char *at = strrchr(v, '@');
	const char *start = strstr(v, "://");

	if (at == NULL)
		return v;
	start = start ? start + 3 : v;
	snprintf(buf, sizeof(buf), "%.*s********%s", (int) (start - v), v, at);
	return buf;
}

/*
 * The secret setting that s mentions, or NULL.  Only the part after
 * "aibackup." is matched, in any case, so every spelling SQL accepts
 * ("aibackup"."s3_secret_access_key", U&"...", comments between) counts.
 */
static const char *
secret_mentioned(const char *s)
{
	for (const char *p = s; *p; p++)
	{
		for (int i = 0; i < (int) lengthof(secret_settings); i++)
		{
			const char *tail = secret_settings[i] + strlen("aibackup.");

			if (pg_strncasecmp(p, tail, strlen(tail)) == 0)
				return secret_settings[i];
		}
	}
	return NULL;
}

/*
 * Keep secrets out of the server log.  Rewritten, not suppressed, so the
 * event stays visible:
 *	- the postmaster's "parameter ... changed to ..." line on reload,
 *	  recognized by its untranslated format (message_id), so this holds
 *	  whatever lc_messages says;
 *	- while a statement that mentions a secret setting runs (ALTER SYSTEM
 *	  SET ...): any message quoting the statement (log_statement, duration
 *	  and parse/bind/execute lines of the extended protocol) and the
 *	  "STATEMENT:" line of any other message.
 * The statement stays visible in pg_stat_activity to those who may see it.
 */
static void
ab_emit_log_hook(ErrorData *edata)
{
	const char *name;

	if (edata->message_id != NULL && edata->message != NULL &&
		strcmp(edata->message_id, "parameter \"%s\" changed to \"%s\"") == 0 &&
		(name = secret_mentioned(edata->message)) != NULL)
		edata->message = psprintf("parameter \"%s\" changed", name);
	else if (debug_query_string != NULL &&
			 (name = secret_mentioned(debug_query_string)) != NULL)
	{
		edata->hide_stmt = true;
		if (edata->message != NULL && debug_query_string[0] != '\0' &&
			strstr(edata->message, debug_query_string) != NULL)
			edata->message = psprintf("statement not shown: it names %s", name);
		if (edata->detail != NULL && secret_mentioned(edata->detail))
			edata->detail = NULL;
	}
	if (prev_emit_log_hook)
		prev_emit_log_hook(edata);
}

void
ab_define_settings(void)
{
	DefineCustomStringVariable("aibackup.s3_endpoint",
							   "S3 endpoint URL; empty means AWS (https://s3.<region>.amazonaws.com).",
							   NULL, &ab_s3_endpoint, "",
							   PGC_SIGHUP, 0, check_endpoint, NULL, NULL);
	DefineCustomStringVariable("aibackup.s3_region",
							   "S3 region used for signing.",
							   NULL, &ab_s3_region, "us-east-1",
							   PGC_SIGHUP, 0, check_region, NULL, NULL);
	DefineCustomStringVariable("aibackup.s3_bucket",
							   "S3 bucket that holds the backups.",
							   NULL, &ab_s3_bucket, "",
							   PGC_SIGHUP, 0, check_bucket, NULL, NULL);
	DefineCustomStringVariable("aibackup.s3_prefix",
							   "Key prefix inside the bucket (e.g. \"prod/cluster1\").",
							   NULL, &ab_s3_prefix, "",
							   PGC_SIGHUP, 0, check_prefix, NULL, NULL);
	DefineCustomEnumVariable("aibackup.s3_uri_style",
							 "S3 addressing: \"virtual\" (bucket.host/key) or \"path\" (host/bucket/key).",
							 NULL, &ab_s3_uri_style, AB_URI_STYLE_VIRTUAL,
							 uri_style_options, PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomStringVariable("aibackup.s3_access_key_id",
							   "S3 access key id; empty means aibackup.s3_credential_source finds credentials.",
							   NULL, &ab_s3_access_key_id, "",
							   PGC_SIGHUP,
							   GUC_SUPERUSER_ONLY | GUC_NO_SHOW_ALL | GUC_NOT_IN_SAMPLE,
							   NULL, NULL, show_access_key_id);
	DefineCustomStringVariable("aibackup.s3_secret_access_key",
							   "S3 secret access key, with aibackup.s3_access_key_id.",
							   NULL, &ab_s3_secret_access_key, "",
							   PGC_SIGHUP,
							   GUC_SUPERUSER_ONLY | GUC_NO_SHOW_ALL | GUC_NOT_IN_SAMPLE,
							   NULL, NULL, show_secret_access_key);
	DefineCustomStringVariable("aibackup.s3_session_token",
							   "S3 session token, with aibackup.s3_access_key_id, for temporary keys.",
							   NULL, &ab_s3_session_token, "",
							   PGC_SIGHUP,
							   GUC_SUPERUSER_ONLY | GUC_NO_SHOW_ALL | GUC_NOT_IN_SAMPLE,
							   NULL, NULL, show_session_token);
	DefineCustomEnumVariable("aibackup.s3_credential_source",
							 "Where credentials come from: auto (settings, environment, web_identity, profile, container, imds, the first configured) or one of them.",
							 NULL, &ab_s3_credential_source, S3CRED_AUTO,
							 credential_source_options, PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomBoolVariable("aibackup.s3_imds_v1",
							 "Fall back to IMDSv1 (no session token) when the instance metadata service offers no IMDSv2.",
							 NULL, &ab_s3_imds_v1, false,
							 PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomStringVariable("aibackup.s3_proxy",
							   "Proxy for S3 requests (http://, https:// or socks5h:// URL); empty means the server's https_proxy/no_proxy environment.",
							   NULL, &ab_s3_proxy, "",
							   PGC_SIGHUP,
							   GUC_SUPERUSER_ONLY | GUC_NO_SHOW_ALL | GUC_NOT_IN_SAMPLE,
							   NULL, NULL, show_proxy);
	DefineCustomStringVariable("aibackup.s3_sse",
							   "Server-side encryption of new objects: \"\" (the bucket's default), \"AES256\" or \"aws:kms\".",
							   NULL, &ab_s3_sse, "",
							   PGC_SIGHUP, 0, check_sse, NULL, NULL);
	DefineCustomStringVariable("aibackup.s3_sse_kms_key_id",
							   "KMS key (id, ARN or alias) for aibackup.s3_sse = 'aws:kms'; empty means the account's default key.",
							   NULL, &ab_s3_sse_kms_key_id, "",
							   PGC_SIGHUP, 0, check_header_token, NULL, NULL);
	DefineCustomStringVariable("aibackup.s3_storage_class",
							   "Storage class of new objects, such as STANDARD_IA; empty means the bucket's default.",
							   NULL, &ab_s3_storage_class, "",
							   PGC_SIGHUP, 0, check_storage_class, NULL, NULL);
	DefineCustomEnumVariable("aibackup.s3_checksum",
							 "Integrity check sent with request bodies: auto (Content-MD5, or SHA-256 where MD5 is unavailable), md5 or sha256.",
							 NULL, &ab_s3_checksum, S3CHECKSUM_AUTO,
							 checksum_options, PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomStringVariable("aibackup.s3_ca_file",
							   "File of CA certificates to verify the S3 server; empty means the system's.",
							   NULL, &ab_s3_ca_file, "",
							   PGC_SIGHUP, 0, check_ca_file, NULL, NULL);
	DefineCustomBoolVariable("aibackup.s3_verify_tls",
							 "Verify the S3 server's TLS certificate and host name.",
							 NULL, &ab_s3_verify_tls, true,
							 PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("aibackup.compression_level",
							"gzip compression level of backup objects (0 = none, 9 = best).",
							NULL, &ab_compression_level, 6, 0, 9,
							PGC_SIGHUP, 0, NULL, NULL, NULL);

	DefineCustomStringVariable("aibackup.exclude",
							   "Tables left out of backups: comma-separated schema.table or schema.* patterns, in UTF-8.",
							   NULL, &ab_exclude, "",
							   PGC_SIGHUP, 0, check_exclude, NULL, NULL);
	DefineCustomIntVariable("aibackup.lock_timeout",
							"How long a backup waits for each table's ACCESS SHARE lock.",
							NULL, &ab_lock_timeout_ms, 60000, 1, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);

	DefineCustomBoolVariable("aibackup.incremental",
							 "Copy the previous backup's object of a table proven unchanged since, inside S3, instead of reading the table again.",
							 NULL, &ab_incremental, true,
							 PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("aibackup.full_every",
							"Read a table again when its data was last read longer ago than this, even if unchanged (0 = every backup reads every table).",
							NULL, &ab_full_every_s, 7 * 24 * 3600, 0, INT_MAX,
							PGC_SUSET, GUC_UNIT_S, NULL, NULL, NULL);

	DefineCustomIntVariable("aibackup.max_rate",
							"Most table data a backup reads a second, in megabytes (10^6 bytes) of CSV before compression (0 = no limit).",
							"A reload reaches a running scheduled backup at once; aibackup_backup_now() uses its session's value.",
							&ab_max_rate_mb, 0, 0, 1000000,
							PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("aibackup.max_parallel_tables",
							"Tables a backup copies at once, each in a table worker of its own (1 = one after the other in the backup's process).",
							"The workers count against max_worker_processes; a backup that gets fewer goes on with those it got, or alone.",
							&ab_max_parallel_tables, 2, 1, AB_MAX_PARALLEL_TABLES,
							PGC_SUSET, 0, NULL, NULL, NULL);

	DefineCustomBoolVariable("aibackup.enabled",
							 "Run scheduled backups.",
							 NULL, &ab_enabled, true,
							 PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomBoolVariable("aibackup.backup_from_standby",
							 "Take scheduled backups on a hot standby instead of the primary.",
							 "Set it on both: a standby's scheduler runs only with it on, and a primary's then backs up a database only when no backup of it from a standby has come for 1.25 intervals.",
							 &ab_backup_from_standby, false,
							 PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("aibackup.interval",
							"Time between scheduled backups; runs are aligned to the clock in UTC.",
							NULL, &ab_interval_s, 4 * 3600, 10, 7 * 24 * 3600,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomStringVariable("aibackup.databases",
							   "Databases the scheduler backs up: * for every database that allows connections, or a comma-separated list.",
							   NULL, &ab_databases, "*",
							   PGC_SIGHUP, GUC_LIST_INPUT, check_databases, NULL, NULL);
	DefineCustomIntVariable("aibackup.max_workers",
							"How many databases the scheduler backs up at the same time.",
							NULL, &ab_max_workers, 1, 1, 64,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	/* a server-start setting exists only where shared memory is sized */
	if (process_shared_preload_libraries_in_progress)
		DefineCustomIntVariable("aibackup.max_databases",
								"How many databases the statistics views keep (shared memory, set at server start).",
								"A database beyond it is still backed up, with a WARNING, but has no row in pg_stat_aibackup.",
								&ab_max_databases, 1024, 16, 100000,
								PGC_POSTMASTER, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("aibackup.retention_days",
							"Delete backups older than this many days after each scheduled run (0 keeps all), except the newest complete one and the last good copy of each table.",
							NULL, &ab_retention_days, 0, 0, 36500,
							PGC_SIGHUP, 0, NULL, NULL, NULL);

	MarkGUCPrefixReserved("aibackup");

	prev_emit_log_hook = emit_log_hook;
	emit_log_hook = ab_emit_log_hook;
}
