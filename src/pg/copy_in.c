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
 * - FREEZE: CopyFrom refuses it unless rel was created or truncated in the
 *	 current subtransaction, on partitioned tables, and when other snapshots
 *	 are registered ("prior transaction activity"), which is the case in a
 *	 REPEATABLE READ transaction called from a query (the transaction
 *	 snapshot plus the query's).
 * - After an ERROR the caller must abort the (sub)transaction.
 *
 * IDENTIFICATION
 *	  src/pg/copy_in.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "commands/copy.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/value.h"
#include "parser/parse_node.h"
#include "parser/parse_relation.h"
#include "parser/scansup.h"
#include "storage/lmgr.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "pg/copy.h"
#include "pg/repo.h"

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
 * ab_copy_in
 *		COPY rel FROM src, CSV with a header row; returns the rows loaded.
 *
 * See copy.h for the contract.
 */
uint64
ab_copy_in(Relation rel, List *attnames, bool freeze, const char *encoding,
		   AbCopyInSource src, void *arg)
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
	if (freeze)
		options = lappend(options,
						  makeDefElem("freeze",
									  (Node *) makeString("true"), -1));

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
		processed = CopyFrom(cstate);
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
