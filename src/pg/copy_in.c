/*-------------------------------------------------------------------------
 *
 * copy_in.c
 *		COPY FROM a C callback INTO one table, CSV with a header row.
 *
 * Owns ab_copy_in(): BeginCopyFrom with a data_source_cb, CopyFrom,
 * EndCopyFrom, the way logical replication's initial table sync
 * (tablesync.c, copy_table) does it.
 *
 * The data source callback of core COPY has no user-data argument
 * (int (*) (void *outbuf, int minread, int maxread)), so the current source
 * is kept in file-static state, set just before BeginCopyFrom and cleared
 * in PG_FINALLY; nesting is refused.  Core treats a callback result smaller
 * than minread as end of data, so we call the source until we have minread
 * bytes or it reports end of data, and never call it again after that.
 *
 * The ParseState carries exactly one range-table entry, for rel: CopyFrom
 * builds its executor state from it (the result relation is RT index 1).
 * As in tablesync.c the entry asks for AccessShareLock, the weakest mode,
 * because the executor asserts that the lock named there is held and the
 * caller may hold a stronger one (AccessExclusiveLock after TRUNCATE).  On
 * 16+ addRangeTableEntryForRelation also fills pstate->p_rteperminfos,
 * which BeginCopyFrom picks up; 15 has no such list.
 *
 * Errors: the source may ereport(ERROR).  It is called from inside
 * CopyFrom's row loop, where any input function may throw too, and the
 * only state of ours to undo is the static pointer, which PG_FINALLY
 * clears.  CopyFrom's own error context ("COPY t, line N, column c:
 * "...value..."") is attached to errors raised meanwhile, including the
 * source's: a bad row shows up to 100 characters of its data in the error
 * message and the server log, as with any COPY.
 *
 * Hazards
 * -------
 * - No permission or RLS checks: see copy.h.  (A read-only transaction is
 *	 refused, as DoCopy does; that is not a permission check.)
 * - The CSV is in the encoding the caller names (the source database's,
 *	 which ab_copy_out wrote it in; NULL = this database's): COPY's
 *	 ENCODING option converts it to the database encoding, and a character
 *	 with no equivalent there fails the load with COPY's own error.
 * - The header row is checked here, not by COPY's HEADER MATCH: each of its
 *	 names is converted to the database encoding and truncated as an
 *	 identifier, then compared with attnames (given truncated the same
 *	 way).  A name that fits in NAMEDATALEN in the source's encoding may not
 *	 in ours (62 LATIN1 letters with accents are 100 bytes of UTF-8), and
 *	 MATCH compares the whole field with the truncated attribute name.
 * - xmloption is set to content for the load (as pg_dump does), so xml
 *	 values that are fragments load whatever the session's setting.  Date,
 *	 interval and float input need no pinning: ab_copy_out writes ISO dates
 *	 and postgres-style intervals, which read back under any setting.
 * - Defaults, generated columns, CHECK and NOT NULL constraints, triggers
 *	 and foreign keys are applied as for any COPY FROM; columns not in
 *	 attnames get their defaults.
 * - The bulk load (bulk_load(), when the caller allows it and rel qualifies,
 *	 bulk_possible()): rows are parsed by COPY's own NextCopyFrom, checked by
 *	 ExecConstraints, written by table_multi_insert frozen and without index
 *	 entries, and the indexes are then built once from the heap by
 *	 reindex_relation, which checks unique and exclusion constraints as the
 *	 row-by-row inserts would have.  Frozen rows are safe because rel was
 *	 created or truncated in this subtransaction: if it aborts, the new
 *	 relfilenode and its rows go with it.  As with COPY FREEZE, they are
 *	 visible to every snapshot once committed (TRUNCATE is not MVCC-safe
 *	 either).  We do not ask COPY for FREEZE: CopyFrom refuses it whenever
 *	 other snapshots are registered ("prior transaction activity"), which
 *	 is the case in a REPEATABLE READ transaction called from a query.
 * - After an ERROR the caller must abort the (sub)transaction.
 *
 * IDENTIFICATION
 *	  src/pg/copy_in.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/index.h"
#include "commands/copy.h"
#include "executor/executor.h"
#include "executor/tuptable.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/value.h"
#include "parser/parse_node.h"
#include "parser/parse_relation.h"
#include "parser/scansup.h"
#include "storage/bufmgr.h"
#include "storage/lmgr.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "pg/copy.h"
#include "pg/repo.h"

/* rows per table_multi_insert(), and bytes: as CopyFrom's buffers */
#define AB_BULK_TUPLES	1000
#define AB_BULK_BYTES	65535
#define AB_BULK_OPTIONS (TABLE_INSERT_SKIP_FSM | TABLE_INSERT_FROZEN)

/* State of the one COPY FROM in progress, if any. */
typedef struct AbCopyInState
{
	AbCopyInSource src;
	void	   *arg;
	bool		eof;			/* src has returned 0 */

	/* the header row, read from the source's bytes until it is checked */
	List	   *attnames;		/* what it must name; NIL: not checked */
	int			file_encoding;
	bool		header_done;
	bool		quoted;			/* inside a quoted field */
	bool		after_quote;	/* the last byte closed a quoted part */
	StringInfoData field;
	List	   *fields;
	MemoryContext cxt;			/* for the above: COPY resets its own */
} AbCopyInState;

static AbCopyInState *copy_in_active = NULL;

static int	copy_in_data_source(void *outbuf, int minread, int maxread);

/* the header row is complete: its names must be attnames */
static void
check_header(AbCopyInState *st)
{
	ListCell   *lf;
	ListCell   *la;
	int			n = 0;

	if (list_length(st->fields) != list_length(st->attnames))
		ereport(ERROR,
				(errcode(ERRCODE_BAD_COPY_FILE_FORMAT),
				 errmsg("wrong number of fields in header line: got %d, expected %d",
						list_length(st->fields), list_length(st->attnames))));
	forboth(lf, st->fields, la, st->attnames)
	{
		char	   *got = ab_repo_to_server(lfirst(lf), st->file_encoding);
		const char *want = strVal(lfirst(la));

		n++;
		if (got != NULL)
			truncate_identifier(got, strlen(got), false);
		if (got == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_BAD_COPY_FILE_FORMAT),
					 errmsg("column name mismatch in header line field %d: got a name with no equivalent in encoding \"%s\", expected \"%s\"",
							n, GetDatabaseEncodingName(), want)));
		if (strcmp(got, want) != 0)
			ereport(ERROR,
					(errcode(ERRCODE_BAD_COPY_FILE_FORMAT),
					 errmsg("column name mismatch in header line field %d: got \"%s\", expected \"%s\"",
							n, ab_repo_quotable(got), want)));
	}
}

/*
 * Read the header row (CSV: fields separated by commas, quoted with '"',
 * a quote doubled inside quotes) out of bytes on their way to COPY, and
 * check it once it ends.  Every server encoding is a superset of ASCII, so
 * the bytes can be scanned before they are converted.
 */
static void
header_scan(AbCopyInState *st, const char *data, int len)
{
	MemoryContext old = MemoryContextSwitchTo(st->cxt);

	for (int i = 0; i < len && !st->header_done; i++)
	{
		char		c = data[i];
		bool		closed = st->after_quote;

		st->after_quote = false;
		if (st->quoted)
		{
			if (c == '"')
			{
				st->quoted = false;
				st->after_quote = true;
			}
			else
				appendStringInfoChar(&st->field, c);
		}
		else if (c == '"')
		{
			if (closed)
				appendStringInfoChar(&st->field, '"');
			st->quoted = true;
		}
		else if (c == ',' || c == '\n' || c == '\r')
		{
			st->fields = lappend(st->fields, pstrdup(st->field.data));
			resetStringInfo(&st->field);
			if (c != ',')
				st->header_done = true;
		}
		else
			appendStringInfoChar(&st->field, c);
	}
	MemoryContextSwitchTo(old);
	if (st->header_done)
		check_header(st);
}

/*
 * copy_data_source_cb: fill outbuf with at least minread (unless at end of
 * data) and at most maxread bytes.
 */
static int
copy_in_data_source(void *outbuf, int minread, int maxread)
{
	AbCopyInState *st = copy_in_active;
	int			got = 0;

	Assert(st != NULL);

	/* returning 0 means end of data, so ask for at least one byte */
	while (!st->eof && got < Max(minread, 1) && got < maxread)
	{
		size_t		room = (size_t) (maxread - got);
		size_t		n;

		n = st->src(st->arg, (char *) outbuf + got, room);
		if (n == 0)
			st->eof = true;
		else if (n > room)
			elog(ERROR, "COPY FROM source returned %zu bytes, more than the %zu asked for",
				 n, room);
		else
		{
			if (st->attnames != NIL && !st->header_done)
				header_scan(st, (char *) outbuf + got, (int) n);
			got += (int) n;
		}
	}
	if (st->eof && st->attnames != NIL && !st->header_done)
		header_scan(st, "\n", 1);	/* a header row without a newline */

	return got;
}

/*
 * Whether rel can be bulk loaded: a plain heap table, empty, created or
 * truncated in this subtransaction (so its rows may be frozen), with
 * nothing that must see the rows one by one or that COPY would add: no
 * INSERT triggers (foreign keys are triggers too), no generated columns,
 * not a partition (COPY checks the partition constraint), and every column
 * in the file (no defaults to evaluate, which may be volatile).
 */
static bool
bulk_possible(Relation rel, List *attnames)
{
	SubTransactionId sub = GetCurrentSubTransactionId();
	TriggerDesc *trig = rel->trigdesc;
	TupleDesc	desc = RelationGetDescr(rel);
	int			live = 0;

	if (rel->rd_rel->relkind != RELKIND_RELATION ||
		rel->rd_rel->relispartition ||
		rel->rd_tableam != GetHeapamTableAmRoutine())
		return false;
#if PG_VERSION_NUM >= 160000
	if (rel->rd_createSubid != sub && rel->rd_newRelfilelocatorSubid != sub)
		return false;
#else
	if (rel->rd_createSubid != sub && rel->rd_newRelfilenodeSubid != sub)
		return false;
#endif
	if (trig != NULL &&
		(trig->trig_insert_before_row || trig->trig_insert_after_row ||
		 trig->trig_insert_instead_row || trig->trig_insert_before_statement ||
		 trig->trig_insert_after_statement || trig->trig_insert_new_table))
		return false;
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (att->attisdropped)
			continue;
		if (att->attgenerated != '\0')
			return false;
		live++;
	}
	return list_length(attnames) == live &&
		RelationGetNumberOfBlocks(rel) == 0;
}

/* write the buffered rows, frozen, without index entries */
static void
bulk_flush(Relation rel, EState *estate, TupleTableSlot **slots, int *nused,
		   BulkInsertState bistate, uint64 *processed)
{
	MemoryContext old;

	if (*nused == 0)
		return;

	/* what it allocates (the TOASTed copies) goes with the next row */
	old = MemoryContextSwitchTo(GetPerTupleMemoryContext(estate));
	table_multi_insert(rel, slots, *nused, GetCurrentCommandId(true),
					   AB_BULK_OPTIONS, bistate);
	MemoryContextSwitchTo(old);
	*processed += *nused;
	*nused = 0;
}

/*
 * Load cstate's rows into rel as CopyFrom would for a table without
 * triggers, but frozen and without index entries; then build the indexes
 * from the heap, checking their constraints.
 */
static uint64
bulk_load(Relation rel, ParseState *pstate, CopyFromState cstate)
{
	EState	   *estate = CreateExecutorState();
	ResultRelInfo *rri = makeNode(ResultRelInfo);
	ExprContext *econtext = GetPerTupleExprContext(estate);
	MemoryContext querycxt = CurrentMemoryContext;
	BulkInsertState bistate = GetBulkInsertState();
	TupleTableSlot *slots[AB_BULK_TUPLES] = {0};
	int			nused = 0;
	Size		bytes = 0;
	uint64		processed = 0;
	bool		constrained = RelationGetDescr(rel)->constr != NULL;
	ErrorContextCallback errcallback;
	ReindexParams params = {0};

#if PG_VERSION_NUM >= 180000
	ExecInitRangeTable(estate, pstate->p_rtable, pstate->p_rteperminfos,
					   bms_make_singleton(1));
#elif PG_VERSION_NUM >= 160000
	ExecInitRangeTable(estate, pstate->p_rtable, pstate->p_rteperminfos);
#else
	ExecInitRangeTable(estate, pstate->p_rtable);
#endif
	ExecInitResultRelation(estate, rri, 1);

	/* errors name the line, as COPY's do */
	errcallback.callback = CopyFromErrorCallback;
	errcallback.arg = (void *) cstate;
	errcallback.previous = error_context_stack;
	error_context_stack = &errcallback;

	for (;;)
	{
		TupleTableSlot *slot;
		bool		more;

		CHECK_FOR_INTERRUPTS();
		if (slots[nused] == NULL)
			slots[nused] = table_slot_create(rel, &estate->es_tupleTable);
		slot = slots[nused];

		/* parse into the per-row context, which the next row resets */
		ResetPerTupleExprContext(estate);
		MemoryContextSwitchTo(GetPerTupleMemoryContext(estate));
		ExecClearTuple(slot);
		more = NextCopyFrom(cstate, econtext, slot->tts_values, slot->tts_isnull);
		MemoryContextSwitchTo(querycxt);
		if (!more)
			break;
		ExecStoreVirtualTuple(slot);
		slot->tts_tableOid = RelationGetRelid(rel);
		if (constrained)
			ExecConstraints(rri, slot, estate);

		/* into the slot's own memory, to outlive the row's context */
		ExecMaterializeSlot(slot);
		bytes += ((HeapTupleTableSlot *) slot)->tuple->t_len;
		if (++nused == AB_BULK_TUPLES || bytes >= AB_BULK_BYTES)
		{
			bulk_flush(rel, estate, slots, &nused, bistate, &processed);
			bytes = 0;
		}
	}
	bulk_flush(rel, estate, slots, &nused, bistate, &processed);
	error_context_stack = errcallback.previous;

	FreeBulkInsertState(bistate);
	table_finish_bulk_insert(rel, AB_BULK_OPTIONS);
	ExecResetTupleTable(estate->es_tupleTable, false);
	ExecCloseResultRelations(estate);
	ExecCloseRangeTableRelations(estate);
	FreeExecutorState(estate);

	/* every index at once, from the rows now in the heap */
	CommandCounterIncrement();
#if PG_VERSION_NUM >= 170000
	(void) reindex_relation(NULL, RelationGetRelid(rel),
							REINDEX_REL_CHECK_CONSTRAINTS, &params);
#else
	(void) reindex_relation(RelationGetRelid(rel),
							REINDEX_REL_CHECK_CONSTRAINTS, &params);
#endif
	return processed;
}

/*
 * ab_copy_in
 *		COPY rel FROM src, CSV with a header row; returns the rows loaded.
 *
 * See copy.h for the contract.
 */
uint64
ab_copy_in(Relation rel, List *attnames, bool bulk, const char *encoding,
		   AbCopyInSource src, void *arg, bool *bulk_used)
{
	ParseState *pstate;
	List	   *options;
	CopyFromState cstate;
	AbCopyInState state;
	int			save_nestlevel;
	uint64		processed = 0;

	Assert(src != NULL);

	if (copy_in_active != NULL)
		elog(ERROR, "aibackup COPY FROM cannot be nested");
	if (!CheckRelationLockedByMe(rel, RowExclusiveLock, true))
		elog(ERROR, "relation \"%s\" must be locked before COPY FROM",
			 RelationGetRelationName(rel));
	if (!ActiveSnapshotSet())
		elog(ERROR, "COPY FROM into relation \"%s\" needs an active snapshot",
			 RelationGetRelationName(rel));

	/* as DoCopy does */
	if (XactReadOnly && !rel->rd_islocaltemp)
		PreventCommandIfReadOnly("COPY FROM");

	pstate = make_parsestate(NULL);
	(void) addRangeTableEntryForRelation(pstate, rel, AccessShareLock,
										 NULL, false, false);

	if (encoding == NULL)
		encoding = GetDatabaseEncodingName();
	options = list_make3(makeDefElem("format",
									 (Node *) makeString("csv"), -1),
						 makeDefElem("header",
									 (Node *) makeString("true"), -1),
						 makeDefElem("encoding",
									 (Node *) makeString(pstrdup(encoding)),
									 -1));
	bulk = bulk && bulk_possible(rel, attnames);
	if (bulk_used)
		*bulk_used = bulk;

	save_nestlevel = NewGUCNestLevel();
	(void) set_config_option("xmloption", "content",
							 PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, ERROR, false);

	memset(&state, 0, sizeof(state));
	state.src = src;
	state.arg = arg;
	state.eof = false;
	state.attnames = attnames;
	state.file_encoding = pg_char_to_encoding(encoding);
	state.cxt = AllocSetContextCreate(CurrentMemoryContext, "aibackup COPY header",
									  ALLOCSET_SMALL_SIZES);
	{
		MemoryContext old = MemoryContextSwitchTo(state.cxt);

		initStringInfo(&state.field);
		MemoryContextSwitchTo(old);
	}
	copy_in_active = &state;
	PG_TRY();
	{
		cstate = BeginCopyFrom(pstate, rel, NULL, NULL, false,
							   copy_in_data_source, attnames, options);
		processed = bulk ? bulk_load(rel, pstate, cstate) : CopyFrom(cstate);
		EndCopyFrom(cstate);
	}
	PG_FINALLY();
	{
		copy_in_active = NULL;
	}
	PG_END_TRY();
	MemoryContextDelete(state.cxt);

	AtEOXact_GUC(false, save_nestlevel);
	free_parsestate(pstate);

	return processed;
}
