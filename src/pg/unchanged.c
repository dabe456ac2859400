/*
 * unchanged.c
 *		Whether a table's rows under this backup's snapshot are exactly the
 *		rows an earlier backup's snapshot saw, proven from the heap's pages
 *		alone: no value is detoasted or put through an output function.
 *
 * The proof (the README's design section says it in prose).  Let L be the
 * WAL insert position the earlier backup read just before it took its
 * snapshot S, and X the xmin of S.  The caller has checked that the
 * relation is the same relfilenode on the same timeline, so its pages only
 * ever changed through WAL records of this timeline.
 *	1. A page whose LSN is at most L has not changed since before S was
 *	   taken, but for hint bits: every change of a heap page's tuples (insert,
 *	   update, delete, lock, prune, freeze) is WAL-logged and sets the page's
 *	   LSN to its record's, which is after L if it was made after L was read.
 *	   (A hint-bit write that is WAL-logged, with checksums, also raises the
 *	   LSN: that only costs a full read.)
 *	2. On such pages, a tuple whose xmin and xmax (unless lock-only) are
 *	   frozen, invalid, or precede X was written by transactions that had
 *	   all ended before S was taken: S and the new snapshot see their
 *	   commit or abort alike, so the tuple is visible to both or to neither.
 *	   A multixact xmax is not examined: such a page proves nothing.
 *	3. So if every page passes 1 and every tuple 2, the new snapshot sees a
 *	   subset of what S saw: the rows on pages since removed from the end of
 *	   the relation (VACUUM truncation, which sets no LSN) may be missing.
 *	   Counting the visible tuples and finding S's count closes that gap.
 * Transaction ids compare modulo 2^32, so X must be within 2^31 of the
 * next transaction id, and not older than the relation's relfrozenxid, for
 * "precedes" to mean what it says; otherwise there is no proof.
 */
#include "postgres.h"

#include <unistd.h>

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/transam.h"
#include "catalog/pg_database.h"
#include "catalog/pg_am.h"
#include "catalog/pg_enum.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_range.h"
#include "catalog/pg_type.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "storage/bufpage.h"
#include "storage/fd.h"
#include "utils/catcache.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/syscache.h"
#include "utils/typcache.h"

#include "core/digest.h"
#include "pg/unchanged.h"

/* composite types within composite types: deeper than this is refused */
#define AB_TYPE_DEPTH	32

FullTransactionId
ab_snapshot_xmin_full(Snapshot snap)
{
	FullTransactionId next = ReadNextFullTransactionId();
	uint32		epoch = EpochFromFullTransactionId(next);

	/* xmin is never after the next id: a larger value is of the last epoch */
	if (snap->xmin > XidFromFullTransactionId(next) && epoch > 0)
		epoch--;
	return FullTransactionIdFromEpochAndXid(epoch, snap->xmin);
}

/* the raw xmin of a catalog row: it changes with every update of the row */
static void
append_row_version(StringInfo buf, HeapTuple tup)
{
	appendStringInfo(buf, " v%u", HeapTupleHeaderGetRawXmin(tup->t_data));
}

/* the text hashed, and whether it is whole */
typedef struct DefText
{
	StringInfoData buf;
	bool		unhashable;
} DefText;

static void append_type(DefText *d, Oid typid, int depth);

/*
 * Types whose output names other objects by their current names (reg*,
 * and aclitem's roles): a rename changes the CSV without touching the
 * table or its types, so no hash can stand for them.
 */
static bool
names_objects(Oid typid)
{
	switch (typid)
	{
		case ACLITEMOID:
		case REGCLASSOID:
		case REGCOLLATIONOID:
		case REGCONFIGOID:
		case REGDICTIONARYOID:
		case REGNAMESPACEOID:
		case REGOPERATOROID:
		case REGOPEROID:
		case REGPROCEDUREOID:
		case REGPROCOID:
		case REGROLEOID:
		case REGTYPEOID:
			return true;
		default:
			return false;
	}
}

/* a composite type's or relation's columns, dropped ones included */
static void
append_columns(DefText *d, TupleDesc desc, int depth)
{
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		appendStringInfo(&d->buf, "\n col %d %s %u %d %d %c %d (",
						 att->attnum, NameStr(att->attname), att->atttypid,
						 att->atttypmod, att->attisdropped,
						 att->attgenerated ? att->attgenerated : '-',
						 att->atthasmissing);
		if (!att->attisdropped)
			append_type(d, att->atttypid, depth + 1);
		appendStringInfoChar(&d->buf, ')');
	}
}

static void
append_enum_labels(StringInfo buf, Oid typid)
{
	CatCList   *labels = SearchSysCacheList1(ENUMTYPOIDNAME,
											 ObjectIdGetDatum(typid));

	for (int i = 0; i < labels->n_members; i++)
	{
		HeapTuple	tup = &labels->members[i]->tuple;
		Form_pg_enum e = (Form_pg_enum) GETSTRUCT(tup);

		appendStringInfo(buf, " [%u %s]", e->oid, NameStr(e->enumlabel));
	}
	ReleaseSysCacheList(labels);
}

/*
 * What a value of typid looks like in CSV depends on: the type's row, its
 * output function (a user-defined one by its row's version), and the types
 * below it.
 */
static void
append_type(DefText *d, Oid typid, int depth)
{
	StringInfo	buf = &d->buf;
	HeapTuple	tup;
	Form_pg_type typ;

	if (depth > AB_TYPE_DEPTH || names_objects(typid))
	{
		d->unhashable = true;	/* no hash: the table is always read */
		return;
	}
	check_stack_depth();
	tup = SearchSysCache1(TYPEOID, ObjectIdGetDatum(typid));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for type %u", typid);
	typ = (Form_pg_type) GETSTRUCT(tup);
	appendStringInfo(buf, " type %u %c %u", typid, typ->typtype,
					 typ->typoutput);
	if (typid >= FirstNormalObjectId)
		append_row_version(buf, tup);
	if (typ->typoutput >= FirstNormalObjectId)
	{
		HeapTuple	proc = SearchSysCache1(PROCOID,
										   ObjectIdGetDatum(typ->typoutput));

		if (!HeapTupleIsValid(proc))
			elog(ERROR, "cache lookup failed for function %u", typ->typoutput);
		append_row_version(buf, proc);
		ReleaseSysCache(proc);
	}

	switch (typ->typtype)
	{
		case TYPTYPE_DOMAIN:
			append_type(d, typ->typbasetype, depth + 1);
			break;
		case TYPTYPE_ENUM:
			append_enum_labels(buf, typid);
			break;
		case TYPTYPE_COMPOSITE:
			{
				TupleDesc	desc = lookup_rowtype_tupdesc(typid, -1);

				append_columns(d, desc, depth);
				ReleaseTupleDesc(desc);
				break;
			}
		case TYPTYPE_RANGE:
			{
				HeapTuple	rng = SearchSysCache1(RANGETYPE,
												  ObjectIdGetDatum(typid));

				if (!HeapTupleIsValid(rng))
					elog(ERROR, "cache lookup failed for range %u", typid);
				append_type(d, ((Form_pg_range) GETSTRUCT(rng))->rngsubtype,
							depth + 1);
				ReleaseSysCache(rng);
				break;
			}
		case TYPTYPE_MULTIRANGE:
			append_type(d, get_multirange_range(typid), depth + 1);
			break;
		default:
			break;
	}
	if (OidIsValid(typ->typelem) && typ->typtype != TYPTYPE_DOMAIN)
		append_type(d, typ->typelem, depth + 1);
	ReleaseSysCache(tup);
}

char *
ab_definition_hash(Relation rel)
{
	DefText		d;
	StringInfo	buf = &d.buf;
	HeapTuple	tup;
	char		hex[DIGEST_SHA256_HEX];
	const char *settings[] = {"TimeZone", "lc_monetary", "xmloption"};

	initStringInfo(buf);
	d.unhashable = false;
	appendStringInfo(buf, "aibackup definition 1 server %d relid %u",
					 PG_VERSION_NUM / 100, RelationGetRelid(rel));
	for (int i = 0; i < (int) lengthof(settings); i++)
		appendStringInfo(buf, " %s=%s", settings[i],
						 GetConfigOption(settings[i], false, false));
	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(RelationGetRelid(rel)));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for relation %u", RelationGetRelid(rel));
	append_row_version(buf, tup);
	ReleaseSysCache(tup);
	append_columns(&d, RelationGetDescr(rel), 0);
	if (!digest_sha256_hex(buf->data, buf->len, hex))
		ereport(ERROR, (errcode(ERRCODE_INTERNAL_ERROR),
						errmsg("could not compute SHA-256")));
	pfree(buf->data);
	if (d.unhashable)
		return NULL;
	return pstrdup(hex);
}

/* ended before a snapshot of xmin horizon was taken (see the header) */
static bool
xid_settled(TransactionId xid, TransactionId horizon)
{
	return !TransactionIdIsNormal(xid) || TransactionIdPrecedes(xid, horizon);
}

static bool
tuple_settled(HeapTupleHeader t, TransactionId horizon)
{
	uint16		mask = t->t_infomask;

	if (mask & HEAP_MOVED)
		return false;			/* VACUUM FULL of before 9.0 */
	if (!HeapTupleHeaderXminFrozen(t) &&
		!xid_settled(HeapTupleHeaderGetRawXmin(t), horizon))
		return false;
	if ((mask & HEAP_XMAX_INVALID) || HEAP_XMAX_IS_LOCKED_ONLY(mask))
		return true;
	if (mask & HEAP_XMAX_IS_MULTI)
		return false;
	return xid_settled(HeapTupleHeaderGetRawXmax(t), horizon);
}

/* step 1 and 2 for one page, and the count of step 3; false: no proof */
static bool
page_unchanged(Relation rel, Buffer buf, BlockNumber blkno,
			   const AbReuseBase *base, Snapshot snap, int64 *visible,
			   const char **why)
{
	Page		page = BufferGetPage(buf);
	TransactionId horizon = XidFromFullTransactionId(base->xmin);
	OffsetNumber maxoff;

	if (PageIsNew(page))
		return true;			/* extended, never written: no tuples */
	if (BufferGetLSNAtomic(buf) > base->lsn)
	{
		*why = "a page was written since the previous backup";
		return false;
	}
	maxoff = PageGetMaxOffsetNumber(page);
	for (OffsetNumber off = FirstOffsetNumber; off <= maxoff; off++)
	{
		ItemId		id = PageGetItemId(page, off);
		HeapTupleData tup;

		if (!ItemIdIsNormal(id))
			continue;
		tup.t_data = (HeapTupleHeader) PageGetItem(page, id);
		tup.t_len = ItemIdGetLength(id);
		tup.t_tableOid = RelationGetRelid(rel);
		ItemPointerSet(&tup.t_self, blkno, off);
		if (!tuple_settled(tup.t_data, horizon))
		{
			*why = "a row was written by a transaction that had not ended before the previous backup's snapshot";
			return false;
		}
		if (HeapTupleSatisfiesVisibility(&tup, snap, buf))
			(*visible)++;
	}
	return true;
}

bool
ab_heap_unchanged(Relation rel, const AbReuseBase *base, int64 rows,
				  Snapshot snap, const char **why)
{
	FullTransactionId next = ReadNextFullTransactionId();
	TransactionId horizon = XidFromFullTransactionId(base->xmin);
	BlockNumber nblocks;
	BufferAccessStrategy bas;
	int64		visible = 0;
	bool		ok = true;

	if (rel->rd_rel->relam != HEAP_TABLE_AM_OID ||
		rel->rd_rel->relpersistence != RELPERSISTENCE_PERMANENT)
	{
		*why = "only permanent heap tables are proven unchanged";
		return false;
	}
	if (FullTransactionIdFollows(base->xmin, next) ||
		U64FromFullTransactionId(next) - U64FromFullTransactionId(base->xmin) >=
		((uint64) 1 << 31) ||
		TransactionIdPrecedes(horizon, rel->rd_rel->relfrozenxid))
	{
		*why = "the previous backup's snapshot is too old to compare transaction ids with";
		return false;
	}

	nblocks = RelationGetNumberOfBlocks(rel);
	bas = GetAccessStrategy(BAS_BULKREAD);
	for (BlockNumber blkno = 0; ok && blkno < nblocks; blkno++)
	{
		Buffer		buf;

		CHECK_FOR_INTERRUPTS();
		buf = ReadBufferExtended(rel, MAIN_FORKNUM, blkno, RBM_NORMAL, bas);
		LockBuffer(buf, BUFFER_LOCK_SHARE);
		ok = page_unchanged(rel, buf, blkno, base, snap, &visible, why);
		UnlockReleaseBuffer(buf);
	}
	FreeAccessStrategy(bas);
	if (ok && visible != rows)
	{
		*why = "it holds a different number of rows";
		ok = false;
	}
	return ok;
}

/*
 * The history guard.  Everything above trusts that this cluster's WAL and
 * transaction ids since the earlier backup continue the history that
 * backup saw.  A data directory restored from a volume snapshot, or a
 * database dropped and created again under the same OID from a copy, goes
 * back in time on the same timeline: LSNs and xids are handed out again.
 * So each backup, once its manifest is written, records its id and the
 * version of the database's catalog row in a file of the data directory
 * (pg_aibackup/db_<oid>, written durably); a base is taken only if that
 * file names it.  A copy of the directory from before the base, or a
 * re-created database, names something else: then every table is read.
 */
#define AB_MARKER_DIR	"pg_aibackup"

static char *
marker_text(const char *backup_id)
{
	HeapTuple	tup = SearchSysCache1(DATABASEOID, ObjectIdGetDatum(MyDatabaseId));
	char	   *text;

	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for database %u", MyDatabaseId);
	text = psprintf("%s %u\n", backup_id, HeapTupleHeaderGetRawXmin(tup->t_data));

	ReleaseSysCache(tup);
	return text;
}

bool
ab_history_matches(const char *backup_id)
{
	char	   *path = psprintf(AB_MARKER_DIR "/db_%u", MyDatabaseId);
	char	   *want = marker_text(backup_id);
	char		got[128] = "";
	FILE	   *f = AllocateFile(path, "r");

	if (f == NULL)
		return false;
	if (fgets(got, sizeof(got), f) == NULL)
		got[0] = '\0';
	FreeFile(f);
	return strcmp(got, want) == 0;
}

void
ab_history_mark(const char *backup_id)
{
	char	   *path = psprintf(AB_MARKER_DIR "/db_%u", MyDatabaseId);
	char	   *tmp = psprintf("%s.tmp", path);
	char	   *text = marker_text(backup_id);
	FILE	   *f;
	bool		ok;

	if (MakePGDirectory(AB_MARKER_DIR) < 0 && errno != EEXIST)
		ok = false;
	else if ((f = AllocateFile(tmp, PG_BINARY_W)) == NULL)
		ok = false;
	else
	{
		ok = fputs(text, f) >= 0 && fflush(f) == 0 && pg_fsync(fileno(f)) == 0;
		if (FreeFile(f) != 0)
			ok = false;
		ok = ok && durable_rename(tmp, path, WARNING) == 0;
	}
	if (!ok)
		ereport(WARNING,
				(errcode_for_file_access(),
				 errmsg("aibackup: could not record backup \"%s\" in \"%s\": %m",
						backup_id, path),
				 errdetail("The next backup of this database reads every table.")));
}
