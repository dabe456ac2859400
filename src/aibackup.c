/*
 * aibackup.c
 *		Entry points: module load (_PG_init) and the SQL-callable functions
 *		that are not jobs of their own.
 *
 * The library works when merely loaded (CREATE EXTENSION in a session):
 * everything that only needs S3 is available then.  The scheduler's
 * background worker needs shared_preload_libraries.
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "core/s3.h"
#include "jobs/launcher.h"
#include "commands/dbcommands.h"
#include "pg/repo.h"
#include "pg/s3_session.h"
#include "pg/settings.h"
#include "pg/state.h"
#include "storage/ipc.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

PG_FUNCTION_INFO_V1(aibackup_presign_url);

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static void
ab_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	ab_state_request();
}

static void
ab_shmem_startup(void)
{
	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	ab_state_startup();
}

void
_PG_init(void)
{
	ab_define_settings();

	/* shared memory and the scheduler need shared_preload_libraries */
	if (!process_shared_preload_libraries_in_progress)
		return;

	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = ab_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = ab_shmem_startup;

	ab_launcher_register();
}

/*
 * aibackup_presign_url(object_key text, expires interval, signed_at
 * timestamptz) returns text
 *
 * A SigV4 query-signed GET URL for exactly that key in the configured
 * bucket: what a customer downloads with curl or a browser, no keys needed.
 */
Datum
aibackup_presign_url(PG_FUNCTION_ARGS)
{
	text	   *key_t;
	Interval   *expires;
	TimestampTz signed_at;
	char	   *key;
	char	   *url;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		PG_RETURN_NULL();
	key_t = PG_GETARG_TEXT_PP(0);

	expires = PG_GETARG_INTERVAL_P(1);
	signed_at = PG_GETARG_TIMESTAMPTZ(2);
	key = text_to_cstring(key_t);

	if (key[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("object key must not be empty")));
	if (!superuser())
		ab_repo_check_folder_unique();

	/*
	 * Only a superuser signs any key in the bucket; a role granted this
	 * function signs keys of the current database's backups, so granting it
	 * gives no more than that database's data.
	 */
	if (!superuser() &&
		!ab_repo_key_in_database(key, get_database_name(MyDatabaseId)))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to sign object key \"%s\"", key),
				 errdetail("Roles other than superusers may sign only keys under \"%s\".",
						   ab_repo_db_prefix(get_database_name(MyDatabaseId))),
				 errhint("Use a key that aibackup_list_tables() shows for this database.")));
	url = ab_presign_key(key, ab_presign_seconds(expires), signed_at);
	PG_RETURN_TEXT_P(cstring_to_text(url));
}
