/*
 * repo_index.c
 *		Walking a database's backups newest first, over index.json.
 *
 * The index (<prefix>/<database>/index.json) holds a summary of each
 * backup and the system identifier of the cluster that owns the folder.
 * It is written after each backup's manifest, by retention before it
 * deletes anything, and by aibackup_take_over_folder().  It is a cache: an
 * entry counts only for a folder the LIST shows, a folder it lacks is read
 * from its manifest, and an index that cannot be read is ignored (with a
 * WARNING) and rewritten by the next backup.  So a lost or stale index costs
 * requests, never a wrong answer.
 */
#include "postgres.h"

#include <limits.h>

#include "access/xlog.h"
#include "mb/pg_wchar.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "core/bindex.h"
#include "pg/repo_index.h"
#include "pg/s3_session.h"

struct AbBackupWalk
{
	S3Client   *c;
	const char *dbname;
	int			flags;
	List	   *ids;			/* backup folders, newest first */
	int			pos;			/* next one in ids */
	bool		have_index;		/* a valid index was read */
	int64		newer_format;	/* or one of a newer format than ours, 0 */
	char	   *owner;			/* its owner, or NULL */
	List	   *indexed;		/* its summaries, newest first */
	int			ipos;			/* next candidate in indexed */
	MemoryContext scratch;		/* manifests read only to summarize */
};

char *
ab_system_identifier(void)
{
	return psprintf(UINT64_FORMAT, GetSystemIdentifier());
}

static char *
index_key(const char *dbname)
{
	return psprintf("%sindex.json", ab_repo_db_prefix(dbname));
}

static char *
pstrdup_or_null(const char *s)
{
	return s ? pstrdup(s) : NULL;
}

AbBackupSummary *
ab_backup_summary(const Manifest *m)
{
	AbBackupSummary *s = palloc0(sizeof(AbBackupSummary));

	s->backup_id = pstrdup(m->backup_id);
	s->status = pstrdup(m->status);
	s->started_at = pstrdup_or_null(m->started_at);
	s->finished_at = pstrdup_or_null(m->finished_at);
	s->system_identifier = pstrdup_or_null(m->system_identifier);
	s->from_standby = m->from_standby;
	for (int i = 0; i < m->ntables; i++)
	{
		const MfTable *t = &m->tables[i];

		if (strcmp(t->status, "ok") != 0)
		{
			s->tables_failed++;
			continue;
		}
		s->tables_ok++;
		s->rows += t->rows;
		s->raw_bytes += t->raw_bytes;
		s->compressed_bytes += t->compressed_bytes;
	}
	return s;
}

static bool
valid_status(const char *s)
{
	return strcmp(s, "ok") == 0 || strcmp(s, "partial") == 0 ||
		strcmp(s, "failed") == 0;
}

/* an index entry as a summary; NULL when it is not a sane one */
static AbBackupSummary *
entry_summary(const BiEntry *e)
{
	AbBackupSummary *s;

	if (!ab_repo_valid_backup_id(e->backup_id) || !valid_status(e->status) ||
		e->tables_ok > INT_MAX || e->tables_failed > INT_MAX)
		return NULL;
	s = palloc0(sizeof(AbBackupSummary));
	s->backup_id = pstrdup(e->backup_id);
	s->status = pstrdup(e->status);
	/* the rest is ASCII when we wrote it; anything else is refused */
	s->started_at = pstrdup_or_null(e->started_at);
	s->finished_at = pstrdup_or_null(e->finished_at);
	s->system_identifier = pstrdup_or_null(e->system_identifier);
	s->tables_ok = (int) e->tables_ok;
	s->tables_failed = (int) e->tables_failed;
	s->rows = e->rows;
	s->raw_bytes = e->raw_bytes;
	s->compressed_bytes = e->compressed_bytes;
	s->from_standby = e->from_standby;
	return s;
}

static bool
is_ascii(const char *s)
{
	for (; s && *s; s++)
	{
		if ((unsigned char) *s >= 0x80)
			return false;
	}
	return true;
}

static int
cmp_summary_desc(const ListCell *a, const ListCell *b)
{
	return -strcmp(((AbBackupSummary *) lfirst(a))->backup_id,
				   ((AbBackupSummary *) lfirst(b))->backup_id);
}

/*
 * Read dbname's index into w: its owner and its summaries, newest first.
 * Absent: have_index stays false.  Unreadable or not this database's: a
 * WARNING, and the walk does without it.
 */
static void
read_index(AbBackupWalk *w)
{
	char	   *key = index_key(w->dbname);
	size_t		len;
	char	   *text = ab_repo_get_small(w->c, key, &len);
	char		errbuf[256];
	BackupIndex *ix;
	const char *why = NULL;
	List	   *entries = NIL;

	if (text == NULL)
		return;
	ix = bi_parse(text, len, errbuf, sizeof(errbuf));
	if (ix == NULL && (w->newer_format = bi_peek_format(text, len)) <= BINDEX_FORMAT)
		w->newer_format = 0;
	if (w->newer_format != 0)
		return;					/* a newer version's: listed from manifests,
								 * never overwritten */
	if (ix == NULL)
		why = errbuf;
	else if (strcmp(ix->database,
					ab_repo_to_utf8(w->dbname, GetDatabaseEncoding(), false)) != 0)
		why = "it describes another database";
	else if (!is_ascii(ix->system_identifier))
		why = "its system identifier is not valid";
	for (int i = 0; why == NULL && i < ix->nentries; i++)
	{
		const BiEntry *e = &ix->entries[i];
		AbBackupSummary *s;

		if (!is_ascii(e->started_at) || !is_ascii(e->finished_at) ||
			!is_ascii(e->system_identifier) ||
			(s = entry_summary(e)) == NULL)
			why = "one of its entries is not valid";
		else
			entries = lappend(entries, s);
	}
	if (why == NULL)
	{
		w->have_index = true;
		w->owner = pstrdup_or_null(ix->system_identifier);
		list_sort(entries, cmp_summary_desc);
		w->indexed = entries;
	}
	bi_free(ix);
	if (why != NULL)
		ereport(WARNING,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("ignoring backup index \"%s\": %s", key, why),
				 errdetail("Backups are listed from their manifests instead; the next backup rewrites the index.")));
}

AbBackupWalk *
ab_walk_begin(S3Client *c, const char *dbname, int flags)
{
	AbBackupWalk *w = palloc0(sizeof(AbBackupWalk));

	w->c = c;
	w->dbname = pstrdup(dbname);
	w->flags = flags;
	w->ids = ab_repo_backup_ids(c, dbname);
	read_index(w);
	w->scratch = AllocSetContextCreate(CurrentMemoryContext,
									   "aibackup walk scratch",
									   ALLOCSET_SMALL_SIZES);
	return w;
}

/* the index's summary of id, if it has one (ids come newest first) */
static AbBackupSummary *
indexed_summary(AbBackupWalk *w, const char *id)
{
	while (w->ipos < list_length(w->indexed))
	{
		AbBackupSummary *s = list_nth(w->indexed, w->ipos);
		int			cmp = strcmp(s->backup_id, id);

		if (cmp < 0)
			return NULL;		/* older than id: id is not indexed */
		w->ipos++;
		if (cmp == 0)
			return s;
	}
	return NULL;
}

bool
ab_walk_next(AbBackupWalk *w, AbBackup *b)
{
	while (w->pos < list_length(w->ids))
	{
		const char *id = list_nth(w->ids, w->pos++);
		AbBackupSummary *s = indexed_summary(w, id);

		memset(b, 0, sizeof(*b));
		b->backup_id = id;
		if (s != NULL && !(w->flags & AB_WALK_MANIFEST))
		{
			b->state = AB_MANIFEST_OK;
			b->summary = s;
			b->from_index = true;
			return true;
		}
		if (w->flags & AB_WALK_MANIFEST)
		{
			b->manifest = ab_repo_read_manifest_state(w->c, w->dbname, id,
													  &b->state);
			if (b->manifest)
				b->summary = ab_backup_summary(b->manifest);
		}
		else
		{
			MemoryContext oldcxt = MemoryContextSwitchTo(w->scratch);
			Manifest   *m = ab_repo_read_manifest_state(w->c, w->dbname, id,
														&b->state);

			MemoryContextSwitchTo(oldcxt);
			if (m)
				b->summary = ab_backup_summary(m);
			MemoryContextReset(w->scratch);
		}
		if (b->state == AB_MANIFEST_OK || (w->flags & AB_WALK_ALL))
			return true;
	}
	return false;
}

void
ab_walk_end(AbBackupWalk *w)
{
	MemoryContextDelete(w->scratch);
}

/* frees a BackupIndex when the context it was built in goes */
static void
free_index_cb(void *arg)
{
	bi_free((BackupIndex *) arg);
}

static void
add_entry(BackupIndex *ix, const AbBackupSummary *s)
{
	BiEntry    *e = bi_add(ix);

	if (e == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	e->backup_id = ab_repo_mstrdup(s->backup_id);
	e->status = ab_repo_mstrdup(s->status);
	e->started_at = ab_repo_mstrdup(s->started_at);
	e->finished_at = ab_repo_mstrdup(s->finished_at);
	e->system_identifier = ab_repo_mstrdup(s->system_identifier);
	e->tables_ok = s->tables_ok;
	e->tables_failed = s->tables_failed;
	e->rows = s->rows;
	e->raw_bytes = s->raw_bytes;
	e->compressed_bytes = s->compressed_bytes;
	e->from_standby = s->from_standby;
}

static bool
id_in(List *ids, const char *id)
{
	ListCell   *lc;

	foreach(lc, ids)
	{
		if (strcmp(lfirst(lc), id) == 0)
			return true;
	}
	return false;
}

static bool
manifest_exists(S3Client *c, const char *dbname, const char *backup_id)
{
	bool		found;
	S3ObjectInfo info;
	S3Error		err;

	if (!s3_head_object(c, ab_repo_manifest_key(dbname, backup_id), &found,
						&info, &err))
		ab_s3_report(&err);
	return found;
}

/*
 * ERROR if the folder's index was written by a newer aibackup: this version
 * cannot read it, so it must not replace it, nor decide who owns the folder.
 */
static void
refuse_newer_index(AbBackupWalk *w)
{
	if (w->newer_format == 0)
		return;
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("the backup index of database \"%s\" was written by a newer version of aibackup",
					w->dbname),
			 errdetail("Index \"%s\" has format " INT64_FORMAT "; this version reads format %d and does not overwrite what it cannot read.",
					   index_key(w->dbname), w->newer_format, BINDEX_FORMAT),
			 errhint("Upgrade aibackup on this cluster, or give it its own aibackup.s3_prefix.")));
}

void
ab_index_update(S3Client *c, const char *dbname, const Manifest *added,
				List *removed, bool take_over)
{
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext,
											  "aibackup index",
											  ALLOCSET_DEFAULT_SIZES);
	MemoryContext oldcxt = MemoryContextSwitchTo(cxt);
	MemoryContextCallback *cb = palloc(sizeof(MemoryContextCallback));
	BackupIndex *ix = bi_new();
	AbBackupWalk *w;
	AbBackup	b;
	char	   *json;
	S3Error		err;
	bool		ok;

	if (ix == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	cb->func = free_index_cb;
	cb->arg = ix;
	MemoryContextRegisterResetCallback(cxt, cb);

	ix->format = BINDEX_FORMAT;
	ix->database = ab_repo_mstrdup(ab_repo_to_utf8(dbname, GetDatabaseEncoding(), false));
	ix->system_identifier = ab_repo_mstrdup(ab_system_identifier());
	ix->updated_at = ab_repo_mstrdup(ab_repo_iso_utc(GetCurrentTimestamp()));

	w = ab_walk_begin(c, dbname, 0);
	refuse_newer_index(w);

	/* taken over since this backup began: the folder is no longer ours */
	if (!take_over && w->owner != NULL &&
		strcmp(w->owner, ix->system_identifier) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the backups of database \"%s\" now belong to another cluster (system identifier %s)",
						dbname, w->owner),
				 errdetail("Its index was not rewritten.")));
	if (added != NULL)
	{
		/* known already: no need to read it back */
		w->indexed = lappend(w->indexed, ab_backup_summary(added));
		list_sort(w->indexed, cmp_summary_desc);
	}
	while (ab_walk_next(w, &b))
	{
		if (id_in(removed, b.backup_id))
			continue;
		if (b.from_index &&
			(added == NULL || strcmp(added->backup_id, b.backup_id) != 0) &&
			!manifest_exists(c, dbname, b.backup_id))
			continue;			/* read from its manifest next time, if any */
		add_entry(ix, b.summary);
	}
	ab_walk_end(w);

	json = bi_to_json(ix);
	if (json == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	ok = s3_put_object(c, index_key(dbname), json, strlen(json),
					   "application/json", &err);
	free(json);
	if (!ok)
		ab_s3_report(&err);
	MemoryContextSwitchTo(oldcxt);
	MemoryContextDelete(cxt);
}

/* the owner the walk's index names or, without one, the newest backup's */
static char *
walk_owner(AbBackupWalk *w, char **source)
{
	char	   *owner = w->owner;
	AbBackup	b;

	*source = "index.json";
	if (!w->have_index)
	{
		*source = NULL;
		if (ab_walk_next(w, &b))
		{
			owner = b.summary->system_identifier;
			*source = psprintf("backup %s", b.backup_id);
		}
	}
	return owner;
}

char *
ab_folder_owner(S3Client *c, const char *dbname, char **source)
{
	AbBackupWalk *w = ab_walk_begin(c, dbname, 0);
	char	   *owner;

	if (w->newer_format != 0)
	{
		/* not ours to decide: a newer version's folder */
		*source = "index.json";
		owner = "a newer version of aibackup";
	}
	else
		owner = walk_owner(w, source);
	ab_walk_end(w);
	return owner;
}

void
ab_folder_check_owner(S3Client *c, const char *dbname)
{
	AbBackupWalk *w = ab_walk_begin(c, dbname, 0);
	char	   *source;
	char	   *owner;
	char	   *ours = ab_system_identifier();

	refuse_newer_index(w);
	owner = walk_owner(w, &source);
	ab_walk_end(w);
	if (owner == NULL || strcmp(owner, ours) == 0)
		return;
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("the backups of database \"%s\" in folder \"%s\" belong to another cluster",
					dbname, ab_repo_db_prefix(dbname)),
			 errdetail("Its %s names system identifier %s; this cluster's is %s.",
					   source, owner, ours),
			 errhint("If this cluster replaces the other one (a restored copy, a promoted standby), run SELECT aibackup_take_over_folder() in this database; otherwise give this cluster its own aibackup.s3_prefix.")));
}
