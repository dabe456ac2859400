/*
 * table_stats.c
 *		The per-table history behind pg_stat_aibackup_tables, one file per
 *		database: pg_stat/aibackup_tables.<database oid>.
 *
 * Written by each backup after its manifest (one backup of a database runs
 * at a time, so there is one writer), as a new file renamed over the old
 * one, so readers never see half a file.  A file that is missing or not
 * valid reads as an empty history, which the next backup starts again.  The
 * file is in the database's encoding, and only that database reads it.
 */
#include "postgres.h"

#include <unistd.h>

#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "utils/hsearch.h"

#include "pg/table_stats.h"

#define AB_TSTAT_MAGIC		0x61627474	/* "abtt" */
#define AB_TSTAT_FORMAT		1
#define AB_TSTAT_MAX		(1024 * 1024)	/* entries; a sanity bound */

typedef struct AbTStatHeader
{
	uint32		magic;
	int32		format;
	int32		record_size;
	Oid			dboid;
	int32		nrecords;
} AbTStatHeader;

static char *
stats_path_of(Oid dboid)
{
	return psprintf("pg_stat/aibackup_tables.%u", dboid);
}

static char *
stats_path(void)
{
	return stats_path_of(MyDatabaseId);
}

void
ab_table_stats_forget(Oid dboid)
{
	char	   *path = stats_path_of(dboid);

	if (unlink(path) != 0 && errno != ENOENT)
		ereport(LOG,
				(errcode_for_file_access(),
				 errmsg("could not remove file \"%s\": %m", path)));
}

AbTableStat *
ab_table_stats_read(int *n)
{
	char	   *path = stats_path();
	FILE	   *f = AllocateFile(path, PG_BINARY_R);
	AbTStatHeader h;
	AbTableStat *stats;

	*n = 0;
	if (f == NULL)
		return NULL;
	if (fread(&h, sizeof(h), 1, f) != 1 || h.magic != AB_TSTAT_MAGIC ||
		h.format != AB_TSTAT_FORMAT || h.record_size != sizeof(AbTableStat) ||
		h.dboid != MyDatabaseId || h.nrecords < 0 || h.nrecords > AB_TSTAT_MAX)
	{
		FreeFile(f);
		return NULL;
	}
	stats = palloc(sizeof(AbTableStat) * Max(h.nrecords, 1));
	if (h.nrecords > 0 &&
		fread(stats, sizeof(AbTableStat), h.nrecords, f) != (size_t) h.nrecords)
	{
		FreeFile(f);
		pfree(stats);
		return NULL;
	}
	FreeFile(f);
	for (int i = 0; i < h.nrecords; i++)
	{
		/* never trust a file for terminators */
		stats[i].schema[NAMEDATALEN - 1] = '\0';
		stats[i].name[NAMEDATALEN - 1] = '\0';
		stats[i].last_id[AB_ID_LEN - 1] = '\0';
		stats[i].last_status[sizeof(stats[i].last_status) - 1] = '\0';
		stats[i].last_error[AB_ERROR_LEN - 1] = '\0';
		stats[i].ok_id[AB_ID_LEN - 1] = '\0';
	}
	*n = h.nrecords;
	return stats;
}

/* the key of a table in the hash: schema and name, NUL-separated */
typedef struct TStatEntry
{
	char		key[2 * NAMEDATALEN];
	AbTableStat stat;
} TStatEntry;

static void
stat_key(char *key, const char *schema, const char *name)
{
	memset(key, 0, 2 * NAMEDATALEN);
	strlcpy(key, schema, NAMEDATALEN);
	strlcpy(key + NAMEDATALEN, name, NAMEDATALEN);
}

/* m's table t folded into s */
static void
fold_table(AbTableStat *s, const Manifest *m, const MfTable *t)
{
	bool		ok = strcmp(t->status, "ok") == 0;

	strlcpy(s->schema, t->schema, sizeof(s->schema));
	strlcpy(s->name, t->name, sizeof(s->name));
	strlcpy(s->last_id, m->backup_id, sizeof(s->last_id));
	strlcpy(s->last_status, ok ? "ok" : "failed", sizeof(s->last_status));
	s->absent = 0;
	if (ok)
	{
		s->last_error[0] = '\0';
		strlcpy(s->ok_id, m->backup_id, sizeof(s->ok_id));
		s->rows = t->rows;
		s->raw_bytes = t->raw_bytes;
		s->compressed_bytes = t->compressed_bytes;
		s->failures = 0;
	}
	else
	{
		/* cut at a character boundary of the database's encoding */
		const char *e = t->error ? t->error : "";
		int			len = pg_mbcliplen(e, strlen(e), AB_ERROR_LEN - 1);

		memcpy(s->last_error, e, len);
		s->last_error[len] = '\0';
		s->failures++;
	}
}

static bool
write_stats(HTAB *h, int count)
{
	char	   *path = stats_path();
	char	   *tmp = psprintf("%s.tmp", path);
	FILE	   *f = AllocateFile(tmp, PG_BINARY_W);
	AbTStatHeader hdr;
	HASH_SEQ_STATUS seq;
	TStatEntry *e;
	bool		ok;

	if (f == NULL)
		return false;
	memset(&hdr, 0, sizeof(hdr));
	hdr.magic = AB_TSTAT_MAGIC;
	hdr.format = AB_TSTAT_FORMAT;
	hdr.record_size = sizeof(AbTableStat);
	hdr.dboid = MyDatabaseId;
	hdr.nrecords = count;
	ok = fwrite(&hdr, sizeof(hdr), 1, f) == 1;
	hash_seq_init(&seq, h);
	while ((e = hash_seq_search(&seq)) != NULL)
		if (ok && fwrite(&e->stat, sizeof(AbTableStat), 1, f) != 1)
			ok = false;
	if (FreeFile(f) != 0)
		ok = false;
	if (!ok)
	{
		unlink(tmp);
		return false;
	}
	return durable_rename(tmp, path, WARNING) == 0;
}

void
ab_table_stats_record(const Manifest *m)
{
	HASHCTL		ctl;
	HTAB	   *h;
	AbTableStat *old;
	int			nold;
	int			count = 0;
	char		key[2 * NAMEDATALEN];
	HASH_SEQ_STATUS seq;
	TStatEntry *e;
	bool		found;

	ctl.keysize = 2 * NAMEDATALEN;
	ctl.entrysize = sizeof(TStatEntry);
	ctl.hcxt = CurrentMemoryContext;
	h = hash_create("aibackup table stats", 1024, &ctl,
					HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);

	/* what earlier backups left, one backup further away */
	old = ab_table_stats_read(&nold);
	for (int i = 0; i < nold; i++)
	{
		stat_key(key, old[i].schema, old[i].name);
		e = hash_search(h, key, HASH_ENTER, &found);
		e->stat = old[i];
		e->stat.absent++;
	}
	for (int i = 0; i < m->ntables; i++)
	{
		const MfTable *t = &m->tables[i];

		stat_key(key, t->schema, t->name);
		e = hash_search(h, key, HASH_ENTER, &found);
		if (!found)
			memset(&e->stat, 0, sizeof(e->stat));
		fold_table(&e->stat, m, t);
	}

	/* tables gone from the last AB_TABLE_HISTORY backups drop out */
	hash_seq_init(&seq, h);
	while ((e = hash_seq_search(&seq)) != NULL)
	{
		if (e->stat.absent >= AB_TABLE_HISTORY)
			(void) hash_search(h, e->key, HASH_REMOVE, NULL);
		else
			count++;
	}
	if (!write_stats(h, count))
		ereport(WARNING,
				(errcode_for_file_access(),
				 errmsg("aibackup: could not save the table history of database %u: %m",
						MyDatabaseId),
				 errdetail("pg_stat_aibackup_tables shows the history as of the backup before.")));
	hash_destroy(h);
}
