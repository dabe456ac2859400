/*
 * stat_functions.c
 *		SQL-callable functions behind the monitoring views:
 *		pg_stat_aibackup, pg_stat_progress_aibackup, pg_stat_aibackup_tables,
 *		and aibackup_stat_reset().
 *
 * The first two read shared memory (pg/state.c) and return nothing when the
 * library is not preloaded.  Their text is UTF-8, written by any database:
 * it is converted to this database's encoding, with '?' for what has no
 * equivalent here.  The tables view reads the history the backups of this
 * database keep on disk (pg/table_stats.c).  None of them makes an S3
 * request: scraping them is free.
 */
#include "postgres.h"

#include "commands/dbcommands.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "pg/repo.h"
#include "pg/state.h"
#include "pg/table_stats.h"


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

/* from the history the backups keep (table_stats.c): no S3 request */
Datum
aibackup_stat_tables(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	AbTableStat *stats;
	int			n;

	InitMaterializedSRF(fcinfo, 0);
	stats = ab_table_stats_read(&n);
	for (int i = 0; i < n; i++)
	{
		AbTableStat *h = &stats[i];
		Datum		v[10];
		bool		nulls[10] = {0};

		v[0] = CStringGetTextDatum(h->schema);
		v[1] = CStringGetTextDatum(h->name);
		v[2] = CStringGetTextDatum(h->last_id);
		v[3] = CStringGetTextDatum(h->last_status);
		v[4] = text_or_null(h->last_error[0] ? h->last_error : NULL, &nulls[4]);
		v[5] = text_or_null(h->ok_id[0] ? h->ok_id : NULL, &nulls[5]);
		v[6] = Int64GetDatum(h->rows);
		v[7] = Int64GetDatum(h->raw_bytes);
		v[8] = Int64GetDatum(h->compressed_bytes);
		v[9] = Int32GetDatum(h->failures);
		nulls[6] = nulls[7] = nulls[8] = (h->ok_id[0] == '\0');
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
