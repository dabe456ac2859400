/*
 * retention.c
 *		After a successful scheduled run: delete backups of the database
 *		older than aibackup.retention_days.
 *
 * Rules: the newest successful backup (status ok or partial) is never
 * deleted, whatever its age, so a database whose backups started failing
 * keeps its last good one.  A backup is deleted manifest first, so it stops
 * being listed before any of its objects go; a folder without a manifest
 * (a run that failed or was killed) is debris and goes once it is old.
 */
#include "postgres.h"

#include "utils/timestamp.h"

#include "core/manifest.h"
#include "jobs/retention.h"
#include "pg/repo.h"
#include "pg/s3_session.h"
#include "pg/settings.h"
#include "pg/state.h"
#include "pg/subxact.h"

static void
retention_run(const char *dbname)
{
	S3Client   *client = ab_s3_client();
	List	   *ids = ab_repo_backup_ids(client, dbname);	/* newest first */
	TimestampTz cutoff = GetCurrentTimestamp() -
		(TimestampTz) ab_retention_days * USECS_PER_DAY;
	bool		kept_newest = false;
	int			deleted = 0;
	ListCell   *lc;

	ab_progress_begin("backup", NULL);
	ab_progress_phase("pruning");

	foreach(lc, ids)
	{
		const char *id = lfirst(lc);
		Manifest   *m = ab_repo_read_manifest(client, dbname, id);
		bool		good = m && strcmp(m->status, "failed") != 0;

		if (good && !kept_newest)
		{
			kept_newest = true;	/* the newest successful backup stays */
			continue;
		}
		if (ab_repo_backup_time(id) >= cutoff)
			continue;
		ab_repo_delete_backup(client, dbname, id);
		deleted++;
	}
	ab_progress_end();
	if (deleted > 0)
		ereport(LOG,
				(errmsg("aibackup: retention deleted %d backups of database \"%s\" older than %d days",
						deleted, dbname, ab_retention_days)));
}

static void
retention_call(void *arg)
{
	retention_run((const char *) arg);
}

void
ab_retention_apply(const char *dbname)
{
	ErrorData  *edata;

	if (ab_retention_days <= 0)
		return;
	edata = ab_subxact_run(retention_call, (void *) dbname);
	if (edata == NULL)
		return;
	ab_progress_end();
	if (edata->sqlerrcode == ERRCODE_QUERY_CANCELED)
		ReThrowError(edata);
	ereport(WARNING,
			(errmsg("aibackup: retention for database \"%s\" failed: %s",
					dbname, edata->message)));
	FreeErrorData(edata);
}
