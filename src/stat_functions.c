/*
 * stat_functions.c
 *		SQL-callable functions behind the monitoring views:
 *		pg_stat_aibackup, pg_stat_progress_aibackup, pg_stat_aibackup_tables,
 *		and aibackup_stat_reset().
 *
 * The first two read shared memory (pg/state.c) and return nothing when the
 * library is not preloaded.  Its text is UTF-8, written by any database:
 * it is converted to this database's encoding, with '?' for what has no
 * equivalent here.  The tables view reads the newest manifests in
 * S3, since per-table history (consecutive failures) must survive crashes
 * and be the same from any cluster pointed at the bucket.
 */
#include "postgres.h"

#include "commands/dbcommands.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "core/manifest.h"
#include "pg/repo.h"
#include "pg/repo_index.h"
#include "pg/s3_session.h"
#include "pg/state.h"

#define AB_TABLE_HISTORY	20	/* manifests read for pg_stat_aibackup_tables */

PG_FUNCTION_INFO_V1(aibackup_stat_databases);
PG_FUNCTION_INFO_V1(aibackup_stat_progress);
PG_FUNCTION_INFO_V1(aibackup_stat_tables);
PG_FUNCTION_INFO_V1(aibackup_stat_reset);

static Datum
ts_or_null(TimestampTz ts, bool *isnull)
{
	*isnull = (ts == 0);
	return TimestampTzGetDatum(ts);
}

static Datum
text_or_null(const char *s, bool *isnull)
{
	*isnull = (s == NULL || s[0] == '\0');
	return *isnull ? (Datum) 0 : CStringGetTextDatum(s);
}

Datum
aibackup_stat_databases(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	AbDbState  *states = palloc(sizeof(AbDbState) * Max(ab_state_capacity(), 1));
	int			n;

	InitMaterializedSRF(fcinfo, 0);
	n = ab_state_snapshot(states, ab_state_capacity());
	for (int i = 0; i < n; i++)
	{
		AbDbState  *s = &states[i];
		Datum		v[16];
		bool		nulls[16] = {0};
		NameData	dn;

		/* a database dropped since: its row is history, not state */
		if (OidIsValid(s->dboid) &&
			!SearchSysCacheExists1(DATABASEOID, ObjectIdGetDatum(s->dboid)))
			continue;

		namestrcpy(&dn, s->datname);
		v[0] = NameGetDatum(&dn);
		v[1] = text_or_null(s->last_id, &nulls[1]);
		v[2] = text_or_null(s->last_status, &nulls[2]);
		v[3] = ts_or_null(s->last_started_at, &nulls[3]);
		v[4] = ts_or_null(s->last_finished_at, &nulls[4]);
		v[5] = ts_or_null(s->last_success_at, &nulls[5]);
		v[6] = text_or_null(s->last_error[0] ? ab_repo_text_from_utf8(s->last_error) : NULL,
							&nulls[6]);
		v[7] = ts_or_null(s->next_run_at, &nulls[7]);
		v[8] = Int64GetDatum(s->backups_succeeded);
		v[9] = Int64GetDatum(s->backups_failed);
		v[10] = Int64GetDatum(s->tables_backed_up);
		v[11] = Int64GetDatum(s->tables_failed);
		v[12] = Int64GetDatum(s->rows_backed_up);
		v[13] = Int64GetDatum(s->raw_bytes);
		v[14] = Int64GetDatum(s->compressed_bytes);
		v[15] = ts_or_null(s->stats_reset, &nulls[15]);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, v, nulls);
	}
	return (Datum) 0;
}

Datum
aibackup_stat_progress(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	AbProgress *ps = palloc(sizeof(AbProgress) * AB_MAX_PROGRESS);
	int			n;

	InitMaterializedSRF(fcinfo, 0);
	n = ab_progress_snapshot(ps, AB_MAX_PROGRESS);
	for (int i = 0; i < n; i++)
	{
		AbProgress *p = &ps[i];
		Datum		v[13];
		bool		nulls[13] = {0};
		NameData	dn;
		char	   *db = OidIsValid(p->dboid) ? get_database_name(p->dboid) : NULL;

		namestrcpy(&dn, db ? db : "");
		v[0] = Int32GetDatum(p->pid);
		v[1] = NameGetDatum(&dn);
		nulls[1] = (db == NULL);
		v[2] = CStringGetTextDatum(p->command);
		v[3] = text_or_null(p->backup_id, &nulls[3]);
		v[4] = CStringGetTextDatum(p->phase);
		v[5] = ObjectIdGetDatum(p->relid);
		nulls[5] = !OidIsValid(p->relid);
		v[6] = text_or_null(p->table_name[0] ? ab_repo_text_from_utf8(p->table_name) : NULL,
							&nulls[6]);
		v[7] = Int32GetDatum(p->tables_total);
		v[8] = Int32GetDatum(p->tables_done);
		v[9] = Int64GetDatum(p->bytes_raw);
		v[10] = Int64GetDatum(p->bytes_compressed);
		v[11] = Int64GetDatum(p->bytes_transferred);
		v[12] = ts_or_null(p->started_at, &nulls[12]);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, v, nulls);
	}
	return (Datum) 0;
}

/* one table's history across the newest manifests */
typedef struct TableHist
{
	char	   *schema;
	char	   *name;
	char	   *last_id;		/* newest backup that mentions it */
	char	   *last_status;
	char	   *last_error;
	char	   *ok_id;			/* newest backup where it is ok */
	int64		rows;
	int64		raw;
	int64		compressed;
	int			failures;		/* consecutive, newest first */
	bool		streak_over;
} TableHist;

Datum
aibackup_stat_tables(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *dbname = get_database_name(MyDatabaseId);
	S3Client   *client;
	List	   *hist = NIL;
	ListCell   *lc;
	int			read = 0;
	AbBackupWalk *w;
	AbBackup	b;

	InitMaterializedSRF(fcinfo, 0);
	ab_repo_check_folder_unique();
	client = ab_s3_client();
	w = ab_walk_begin(client, dbname, AB_WALK_MANIFEST);
	while (ab_walk_next(w, &b))
	{
		Manifest   *m = b.manifest;

		for (int i = 0; i < m->ntables; i++)
		{
			MfTable    *t = &m->tables[i];
			TableHist  *h = NULL;
			ListCell   *lc2;
			bool		ok = strcmp(t->status, "ok") == 0;

			foreach(lc2, hist)
			{
				TableHist  *x = lfirst(lc2);

				if (strcmp(x->schema, t->schema) == 0 && strcmp(x->name, t->name) == 0)
					h = x;
			}
			if (h == NULL)
			{
				h = palloc0(sizeof(TableHist));
				h->schema = pstrdup(t->schema);
				h->name = pstrdup(t->name);
				h->last_id = pstrdup(m->backup_id);
				h->last_status = pstrdup(t->status);
				h->last_error = t->error ? pstrdup(t->error) : NULL;
				hist = lappend(hist, h);
			}
			if (ok && h->ok_id == NULL)
			{
				h->ok_id = pstrdup(m->backup_id);
				h->rows = t->rows;
				h->raw = t->raw_bytes;
				h->compressed = t->compressed_bytes;
			}
			if (!h->streak_over)
			{
				if (ok)
					h->streak_over = true;
				else
					h->failures++;
			}
		}
		if (++read >= AB_TABLE_HISTORY)
			break;
	}
	ab_walk_end(w);
	foreach(lc, hist)
	{
		TableHist  *h = lfirst(lc);
		Datum		v[10];
		bool		nulls[10] = {0};

		v[0] = CStringGetTextDatum(h->schema);
		v[1] = CStringGetTextDatum(h->name);
		v[2] = CStringGetTextDatum(h->last_id);
		v[3] = CStringGetTextDatum(h->last_status);
		v[4] = text_or_null(h->last_error, &nulls[4]);
		v[5] = text_or_null(h->ok_id, &nulls[5]);
		v[6] = Int64GetDatum(h->rows);
		v[7] = Int64GetDatum(h->raw);
		v[8] = Int64GetDatum(h->compressed);
		v[9] = Int32GetDatum(h->failures);
		nulls[6] = nulls[7] = nulls[8] = (h->ok_id == NULL);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, v, nulls);
	}
	return (Datum) 0;
}

Datum
aibackup_stat_reset(PG_FUNCTION_ARGS)
{
	ab_state_reset();
	PG_RETURN_VOID();
}
