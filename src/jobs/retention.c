/*
 * retention.c
 *		After a scheduled run: delete backups of the database older than
 *		aibackup.retention_days, except those that still matter.
 *
 * Rules, each because losing the last good copy is the one thing a backup
 * tool must never do:
 *	- Backups inside the retention window are never deleted.
 *	- An older backup is kept when it is the newest one that holds some
 *	  table with status ok, for a table that exists now or appears in a
 *	  backup inside the window: a table that fails in every run (damaged
 *	  storage, a type whose output fails) keeps its last good copy.
 *	- The newest backup with a status other than failed is kept, whatever
 *	  its age, and so is the newest ok one (the last complete restore point).
 *	- A backup whose manifest is there but cannot be read (damaged, or
 *	  written by a newer version) is never deleted; retention stops for the
 *	  database at it, with a WARNING, since what lies beyond may be the only
 *	  copies that backup would have covered.
 *	- A folder without a manifest (a run that failed or was killed) is
 *	  debris and goes once it is old.
 * A backup is deleted manifest first, so it stops being listed before any
 * of its objects go.
 */
#include "postgres.h"

#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "core/manifest.h"
#include "jobs/retention.h"
#include "pg/catalog.h"
#include "pg/repo.h"
#include "pg/repo_index.h"
#include "pg/s3_session.h"
#include "pg/settings.h"
#include "pg/state.h"
#include "pg/subxact.h"

/*
 * A set of tables, by schema and name, each cut to an identifier's length
 * as PostgreSQL cuts it: a manifest written in another encoding may spell a
 * name in more than 63 bytes, and a restore would create it cut.
 */
typedef struct TableKey
{
	char		schema[NAMEDATALEN];
	char		name[NAMEDATALEN];
} TableKey;

static HTAB *
table_set(const char *name)
{
	HASHCTL		ctl;

	ctl.keysize = sizeof(TableKey);
	ctl.entrysize = sizeof(TableKey);
	ctl.hcxt = CurrentMemoryContext;
	return hash_create(name, 1024, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
}

static void
cut_name(char *dst, const char *src)
{
	int			len = pg_mbcliplen(src, strlen(src), NAMEDATALEN - 1);

	memcpy(dst, src, len);
	dst[len] = '\0';
}

static void
table_key(TableKey *k, const char *schema, const char *name)
{
	memset(k, 0, sizeof(*k));
	cut_name(k->schema, schema);
	cut_name(k->name, name);
}

static bool
table_set_add(HTAB *set, const char *schema, const char *name)
{
	TableKey	k;
	bool		found;

	table_key(&k, schema, name);
	(void) hash_search(set, &k, HASH_ENTER, &found);
	return !found;
}

static bool
table_set_has(HTAB *set, const char *schema, const char *name)
{
	TableKey	k;

	table_key(&k, schema, name);
	return hash_search(set, &k, HASH_FIND, NULL) != NULL;
}

/* does m hold the newest ok copy of a table that still matters? */
static bool
holds_last_good_copy(const Manifest *m, HTAB *live, HTAB *covered)
{
	bool		unique = false;

	for (int i = 0; i < m->ntables; i++)
	{
		const MfTable *t = &m->tables[i];

		if (strcmp(t->status, "ok") != 0 ||
			!table_set_has(live, t->schema, t->name))
			continue;
		if (table_set_add(covered, t->schema, t->name))
			unique = true;
	}
	return unique;
}

static void
retention_run(const char *dbname)
{
	S3Client   *client = ab_s3_client();
	TimestampTz cutoff = GetCurrentTimestamp() -
	(TimestampTz) ab_retention_days * USECS_PER_DAY;
	HTAB	   *live = table_set("aibackup live tables");
	HTAB	   *covered = table_set("aibackup covered tables");
	bool		kept_newest = false;
	bool		kept_newest_ok = false;
	List	   *doomed = NIL;
	ListCell   *lc;
	AbBackupWalk *w;
	AbBackup	b;
	MemoryContext outer = CurrentMemoryContext;
	MemoryContext itemcxt = AllocSetContextCreate(CurrentMemoryContext,
												  "aibackup retention item",
												  ALLOCSET_DEFAULT_SIZES);

	ab_progress_begin("backup", NULL);
	ab_progress_phase("pruning");

	/* a folder another cluster has taken over is its to prune */
	ab_folder_check_owner(client, dbname);

	/* every table that exists, excluded ones too: their old copies matter */
	foreach(lc, ab_catalog_tables(NIL, false))
	{
		AbTable    *t = lfirst(lc);

		table_set_add(live, t->schema, t->name);
	}

	w = ab_walk_begin(client, dbname, AB_WALK_MANIFEST | AB_WALK_ALL);
	for (;;)
	{
		Manifest   *m;
		bool		old;
		bool		keep;

		/* one manifest at a time in memory, whatever the number of backups */
		MemoryContextReset(itemcxt);
		MemoryContextSwitchTo(itemcxt);
		if (!ab_walk_next(w, &b))
			break;
		m = b.manifest;
		old = ab_repo_backup_time(b.backup_id) < cutoff;

		if (b.state == AB_MANIFEST_UNREADABLE)
		{
			ab_state_note_error(MyDatabaseId, dbname,
								psprintf("retention stopped at backup %s: its manifest cannot be read", b.backup_id));
			ereport(WARNING,
					(errmsg("aibackup: retention for database \"%s\" stopped at backup \"%s\": its manifest cannot be read",
							dbname, b.backup_id),
					 errdetail("A backup whose manifest cannot be read is never deleted, nor anything older than it."),
					 errhint("Inspect the manifest; delete the backup by hand if it is not needed.")));
			break;
		}
		if (m != NULL && !old)
		{
			/* inside the window: its tables matter, and it stays */
			for (int i = 0; i < m->ntables; i++)
				table_set_add(live, m->tables[i].schema, m->tables[i].name);
		}
		keep = !old;
		if (m != NULL && strcmp(m->status, "failed") != 0 && !kept_newest)
		{
			kept_newest = true; /* the newest non-failed backup stays */
			keep = true;
		}
		if (m != NULL && strcmp(m->status, "ok") == 0 && !kept_newest_ok)
		{
			kept_newest_ok = true;	/* and the newest complete one */
			keep = true;
		}
		if (m != NULL && holds_last_good_copy(m, live, covered))
			keep = true;
		if (!keep)
		{
			/* the list outlives the item's context */
			MemoryContextSwitchTo(outer);
			doomed = lappend(doomed, pstrdup(b.backup_id));
		}
	}
	MemoryContextSwitchTo(outer);
	MemoryContextDelete(itemcxt);
	ab_walk_end(w);

	/* out of the index first: a deletion cut short is only debris */
	if (doomed != NIL)
		ab_index_update(client, dbname, NULL, doomed, false);
	foreach(lc, doomed)
		ab_repo_delete_backup(client, dbname, lfirst(lc));
	ab_progress_end();
	if (doomed != NIL)
		ereport(LOG,
				(errmsg("aibackup: retention deleted %d backups of database \"%s\" older than %d days",
						list_length(doomed), dbname, ab_retention_days)));
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
