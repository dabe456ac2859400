/*
 * incremental.c
 *		Which tables of a backup are copied from the previous backup, and the
 *		copy.  The proof that a table did not change is pg/unchanged.c's;
 *		this file checks everything around it: the same cluster, database,
 *		timeline, relation file and definition, and a source object that is
 *		still the one the previous manifest describes.  When in doubt the
 *		table is read: every "no" below only costs time.
 */
#include "postgres.h"

#include "access/xlog.h"
#include "miscadmin.h"
#include "utils/rel.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "jobs/incremental.h"
#include "pg/repo.h"
#include "pg/repo_index.h"
#include "pg/s3_session.h"
#include "pg/settings.h"
#include "pg/unchanged.h"

const Manifest *
ab_incremental_base(S3Client *c, const char *dbname)
{
	AbBackupWalk *w;
	AbBackup	b;
	const Manifest *base = NULL;
	const char *why = NULL;

	if (!ab_incremental || RecoveryInProgress())
		return NULL;
	w = ab_walk_begin(c, dbname, AB_WALK_MANIFEST);
	while (ab_walk_next(w, &b))
	{
		if (b.manifest != NULL && strcmp(b.manifest->status, "failed") != 0)
		{
			base = b.manifest;
			break;
		}
	}
	ab_walk_end(w);
	if (base == NULL)
		return NULL;
	if (base->reuse_lsn == NULL || base->snapshot_xmin == 0)
		why = "it was made by a version that does not record what the proof needs";
	else if (base->system_identifier == NULL ||
			 strcmp(base->system_identifier, ab_system_identifier()) != 0)
		why = "it was made by another cluster";
	else if (base->database_oid != MyDatabaseId)
		why = "it was made of another database of this name";
	else if (base->timeline != GetWALInsertionTimeLine())
		why = "it was made on another WAL timeline";
	else if (!ab_history_matches(base->backup_id))
		why = "this data directory does not record it as the database's last backup (restored from a copy, the database created again, or its pg_database row changed: ALTER DATABASE, GRANT)";
	if (why == NULL)
		return base;
	ereport(DEBUG1,
			(errmsg_internal("aibackup: every table is read in full: the previous backup \"%s\": %s",
							 base->backup_id, why)));
	return NULL;
}

static uint32
toast_relfilenode(Relation rel)
{
	HeapTuple	tup;
	uint32		result;

	if (!OidIsValid(rel->rd_rel->reltoastrelid))
		return 0;
	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(rel->rd_rel->reltoastrelid));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for relation %u",
			 rel->rd_rel->reltoastrelid);
	result = ((Form_pg_class) GETSTRUCT(tup))->relfilenode;
	ReleaseSysCache(tup);
	return result;
}

void
ab_incremental_record(Relation rel, MfTable *mt)
{
	mt->relfilenode = rel->rd_rel->relfilenode;
	mt->toast_relfilenode = toast_relfilenode(rel);
	mt->definition_hash = ab_repo_mstrdup(ab_definition_hash(rel));
}

/*
 * An enum label can be renamed, or a type's output function replaced,
 * while the table is read (no lock on the table stops it): then the object
 * may hold both spellings, and no later backup may take it as the table's.
 */
void
ab_incremental_recheck(Relation rel, MfTable *mt)
{
	char	   *now;

	if (mt->definition_hash == NULL)
		return;
	now = ab_definition_hash(rel);
	if (now == NULL || strcmp(mt->definition_hash, now) != 0)
	{
		free(mt->definition_hash);
		mt->definition_hash = NULL;
	}
}

static const MfTable *
find_by_relid(const Manifest *m, uint32 relid)
{
	for (int i = 0; i < m->ntables; i++)
		if (m->tables[i].relid == relid)
			return &m->tables[i];
	return NULL;
}

/* why old cannot stand for rel without looking at rel's pages, or NULL */
static const char *
entry_refused(const Manifest *base, const MfTable *old, const MfTable *mt)
{
	const char *read_in;

	if (mt->definition_hash == NULL)
		return "the type of a column names other objects (reg*, aclitem), or its types nest too deep";
	if (old == NULL)
		return "it is not in the previous backup";
	if (old->status == NULL || strcmp(old->status, "ok") != 0)
		return "it failed in the previous backup";
	if (old->etag == NULL || old->etag[0] == '\0' ||
		old->definition_hash == NULL || old->sha256 == NULL)
		return "the previous backup did not record what the proof needs";
	if (mt->relfilenode == 0)
		return "it is a mapped catalog";
	if (old->relfilenode != mt->relfilenode ||
		old->toast_relfilenode != mt->toast_relfilenode)
		return "it was rewritten or truncated";
	if (strcmp(old->definition_hash, mt->definition_hash) != 0)
		return "its definition, or a type it uses, changed";
	if (old->compressed_bytes > S3_MAX_COPY_SIZE)
		return "its object is larger than one CopyObject copies";
	read_in = old->read_in ? old->read_in : base->backup_id;
	if (ab_full_every_s == 0 ||
		GetCurrentTimestamp() - ab_repo_backup_time(read_in) >=
		(int64) ab_full_every_s * USECS_PER_SEC)
		return "its data was last read longer ago than aibackup.full_every";
	return NULL;
}

static void
read_in_full(const MfTable *mt, const char *why)
{
	ereport(DEBUG1,
			(errmsg_internal("aibackup: table \"%s.%s\" is read in full: %s",
							 ab_repo_quotable(mt->schema),
							 ab_repo_quotable(mt->name), why)));
}

bool
ab_incremental_copy(S3Client *c, const Manifest *base, Relation rel,
					MfTable *mt, Snapshot snap, bool *s3_failed)
{
	const MfTable *old = find_by_relid(base, mt->relid);
	const char *why = entry_refused(base, old, mt);
	AbReuseBase rb;
	uint32		hi = 0,
				lo = 0;
	char		etag[80];
	S3Error		err;

	if (why == NULL)
	{
		if (sscanf(base->reuse_lsn, "%X/%X", &hi, &lo) != 2)
			why = "the previous backup's reuse_lsn is not an LSN";
		rb.lsn = ((uint64) hi << 32) | lo;
		rb.xmin = FullTransactionIdFromU64((uint64) base->snapshot_xmin);
	}

	/*
	 * An object key from a manifest edited in the bucket could name another
	 * database's data: copy only from where that backup keeps this table
	 * (checked before the pages are read, which costs a scan of the table).
	 */
	if (why == NULL &&
		strcmp(old->object_key,
			   ab_repo_table_key(base->database, base->backup_id,
								 old->schema, old->name)) != 0)
	{
		ereport(WARNING,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("aibackup: table \"%s.%s\" is read again: backup \"%s\" names an object for it outside its place in that backup",
						ab_repo_quotable(mt->schema), ab_repo_quotable(mt->name),
						base->backup_id)));
		return false;
	}
	if (why == NULL)
		(void) ab_heap_unchanged(rel, &rb, old->rows, snap, &why);
	if (why != NULL)
	{
		read_in_full(mt, why);
		return false;
	}

	if (!s3_copy_object(c, old->object_key, old->etag, mt->object_key,
						etag, sizeof(etag), &err))
	{
		/* S3's refusal of this one copy (gone, changed, too large): read */
		if (err.kind == S3ERR_NOT_FOUND || err.http_status == 412 ||
			err.http_status == 400 || s3_error_is_per_object(&err))
		{
			char		msg[512];

			s3_error_format(&err, msg, sizeof(msg));
			ereport(WARNING,
					(errmsg("aibackup: table \"%s.%s\" is read again: its object in backup \"%s\" could not be copied",
							ab_repo_quotable(mt->schema),
							ab_repo_quotable(mt->name), base->backup_id),
					 errdetail("%s", msg)));
			return false;
		}
		*s3_failed = true;
		ab_s3_report(&err);
	}

	mt->status = ab_repo_mstrdup("ok");
	mt->rows = old->rows;
	mt->raw_bytes = old->raw_bytes;
	mt->compressed_bytes = old->compressed_bytes;
	mt->sha256 = ab_repo_mstrdup(old->sha256);
	if (old->format)
	{
		free(mt->format);
		mt->format = ab_repo_mstrdup(old->format);
	}
	if (old->compression)
	{
		free(mt->compression);
		mt->compression = ab_repo_mstrdup(old->compression);
	}
	mt->etag = ab_repo_mstrdup(etag);
	mt->copied_from = ab_repo_mstrdup(base->backup_id);
	mt->read_in = ab_repo_mstrdup(old->read_in ? old->read_in : base->backup_id);
	return true;
}
