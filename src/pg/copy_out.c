/*-------------------------------------------------------------------------
 *
 * copy_out.c
 *		COPY one table TO a C callback, as CSV with a header row.
 *
 * Owns ab_copy_out() and, on PostgreSQL 15, the temporary redirection of
 * the backend's protocol output that makes core's COPY TO deliver rows to a
 * C function instead of a client.
 *
 * How the rows reach the sink
 * ---------------------------
 * PostgreSQL 16 and later: BeginCopyTo takes a data_dest_cb.  It gets each
 * row without the trailing newline and without a user-data argument, so the
 * sink and a row buffer live in file-static state; we add the newline and
 * hand the sink one whole row per call.
 *
 * PostgreSQL 15: BeginCopyTo has no callback.  COPY TO "STDOUT" sends its
 * rows as protocol messages when whereToSendOutput is DestRemote (otherwise
 * it writes them to the process's stdout, i.e. the server log).  So, around
 * DoCopyTo only, we point PqCommMethods at our own method table and set
 * whereToSendOutput = DestRemote, as core does for parallel workers
 * (pq_redirect_to_shm_mq).  Our putmessage then sees:
 *
 *	'H' CopyOutResponse, 'c' CopyDone: dropped.
 *	'd' CopyData: one whole row, newline included (the first is the header
 *		row): passed to the sink.
 *	anything else: in practice 'N' (NOTICE/WARNING raised meanwhile, e.g. by
 *		the sink) and 'E' (a FATAL is reported before proc_exit, while we are
 *		still installed).  These are forwarded to the saved methods if the
 *		saved whereToSendOutput was DestRemote, which is exactly where they
 *		would have gone without us; otherwise (a background worker, where it
 *		is DestNone) they are dropped, having already gone to the server log
 *		as log_min_messages says.  Nothing here ereports while handling them,
 *		and the saved methods (socket or shm_mq) never throw ERROR: the
 *		socket code reports send failures as COMMERROR and returns EOF.
 *		After a FATAL our table stays installed while the process exits and
 *		keeps forwarding, which is harmless.
 *
 * In a background worker whereToSendOutput is DestNone (inherited from the
 * postmaster) and client_encoding is SQL_ASCII; both were checked with a
 * test worker, which produced the same bytes as a client backend.
 *
 * Errors raised by the sink (PostgreSQL 15)
 * -----------------------------------------
 * The sink may ereport(ERROR) (it compresses and uploads, and both can
 * fail).  That is safe because of where the 'd' message is sent from:
 * CopySendEndOfRow, on DoCopyTo's ordinary path, where an output function
 * could just as well throw.  No error is being reported at that moment, we
 * are not in a critical section, no LWLock is held (the heap scan runs in
 * page-at-a-time mode and holds only a buffer pin) and interrupts are not
 * held off.  errfinish() runs the error context callbacks and longjmps to
 * the innermost PG_TRY, which is ours (copyto.c has none); our PG_FINALLY
 * puts PqCommMethods and whereToSendOutput back and re-throws.  An ERROR is
 * only sent (EmitErrorReport) by whoever finally handles it, the main loop
 * or a caller's PG_CATCH, and by then the real methods are back: the client
 * (or a worker's log) gets the error, and later NOTICEs reach the client.
 *
 * Hazards
 * -------
 * - No permission or RLS checks: see copy.h.
 * - Rows come from the active snapshot (DoCopyTo scans with
 *	 GetActiveSnapshot()): a worker must push one, and to share a backup
 *	 snapshot it must import it before.
 * - Output is pinned so that a restore reads back the same values: the CSV
 *	 is in the database encoding (ENCODING option; COPY would otherwise use
 *	 client_encoding, which in a worker is SQL_ASCII), and, as pg_dump does,
 *	 DateStyle = ISO, IntervalStyle = postgres, extra_float_digits = 3,
 *	 bytea_output = hex and search_path = '' (reg* values come out
 *	 schema-qualified) are set for the duration of the copy only.  These are
 *	 undone on success here, on error by the (sub)transaction abort.
 * - The sink runs while the scan holds a pin on the current heap page; a
 *	 sink that blocks for long (an upload) holds it that long, like a slow
 *	 COPY client.  Sinks should buffer and upload in parts.
 * - One row is built in memory whole (StringInfo), so a row is limited to
 *	 1 GB of CSV text, as for any COPY.
 * - Not reentrant: the redirection and the 16+ callback state are
 *	 file-static; nesting is refused.
 * - After an ERROR the caller must abort the (sub)transaction: that ends the
 *	 table scan, the progress report and the GUC nesting level left open.
 *
 * IDENTIFICATION
 *	  src/pg/copy_out.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "commands/copy.h"
#include "libpq/libpq.h"
#include "mb/pg_wchar.h"
#include "nodes/makefuncs.h"
#include "nodes/value.h"
#include "parser/parse_node.h"
#include "storage/lmgr.h"
#include "tcop/dest.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "pg/copy.h"

/* State of the one COPY TO in progress, if any. */
typedef struct AbCopyOutState
{
	AbCopyOutSink sink;
	void	   *arg;
#if PG_VERSION_NUM >= 160000
	StringInfo	row;			/* the row plus its newline */
#else
	const PQcommMethods *saved_methods; /* to put back, and to forward to */
	CommandDest saved_dest;		/* whereToSendOutput to put back */
	bool		forward;		/* forward non-COPY messages? */
#endif
} AbCopyOutState;

static AbCopyOutState *copy_out_active = NULL;

static void copy_out_pin_settings(void);

#if PG_VERSION_NUM >= 160000

/*
 * copy_data_dest_cb: one row without its newline.
 */
static void
copy_out_dest(void *data, int len)
{
	AbCopyOutState *st = copy_out_active;

	Assert(st != NULL);
	resetStringInfo(st->row);
	appendBinaryStringInfo(st->row, data, len);
	appendStringInfoChar(st->row, '\n');
	st->sink(st->arg, st->row->data, st->row->len);
}

#else							/* PG_VERSION_NUM < 160000 */

static void copy_out_comm_reset(void);
static int	copy_out_flush(void);
static int	copy_out_flush_if_writable(void);
static bool copy_out_is_send_pending(void);
static int	copy_out_putmessage(char msgtype, const char *s, size_t len);
static void copy_out_putmessage_noblock(char msgtype, const char *s,
										size_t len);

/* Installed as PqCommMethods during DoCopyTo only. */
static const PQcommMethods copy_out_comm_methods = {
	.comm_reset = copy_out_comm_reset,
	.flush = copy_out_flush,
	.flush_if_writable = copy_out_flush_if_writable,
	.is_send_pending = copy_out_is_send_pending,
	.putmessage = copy_out_putmessage,
	.putmessage_noblock = copy_out_putmessage_noblock
};

/*
 * Methods other than putmessage only matter for forwarded messages (the
 * error reporting code flushes after an 'N' or 'E'); pass them on when we
 * forward, and otherwise there is nothing to do.
 */
static void
copy_out_comm_reset(void)
{
	AbCopyOutState *st = copy_out_active;

	if (st != NULL && st->forward)
		st->saved_methods->comm_reset();
}

static int
copy_out_flush(void)
{
	AbCopyOutState *st = copy_out_active;

	if (st != NULL && st->forward)
		return st->saved_methods->flush();
	return 0;
}

static int
copy_out_flush_if_writable(void)
{
	AbCopyOutState *st = copy_out_active;

	if (st != NULL && st->forward)
		return st->saved_methods->flush_if_writable();
	return 0;
}

static bool
copy_out_is_send_pending(void)
{
	AbCopyOutState *st = copy_out_active;

	if (st != NULL && st->forward)
		return st->saved_methods->is_send_pending();
	return false;
}

/*
 * The heart of the redirection: see the file header.  Only the 'd' branch
 * may throw (from the sink); the others are also reached from error
 * reporting and must not.
 */
static int
copy_out_putmessage(char msgtype, const char *s, size_t len)
{
	AbCopyOutState *st = copy_out_active;

	if (st == NULL)
		return 0;				/* cannot happen: installed only while set */

	switch (msgtype)
	{
		case 'd':				/* CopyData: one row */
			st->sink(st->arg, s, len);
			return 0;
		case 'H':				/* CopyOutResponse */
		case 'c':				/* CopyDone */
			return 0;
		default:				/* NoticeResponse, ErrorResponse, ... */
			if (st->forward)
				return st->saved_methods->putmessage(msgtype, s, len);
			return 0;
	}
}

static void
copy_out_putmessage_noblock(char msgtype, const char *s, size_t len)
{
	(void) copy_out_putmessage(msgtype, s, len);
}

#endif							/* PG_VERSION_NUM < 160000 */

/*
 * Output settings that make the CSV read back to the same values wherever
 * and by whomever it is loaded (the same ones pg_dump sets).  The caller
 * opened a GUC nesting level.
 */
static void
copy_out_pin_settings(void)
{
	(void) set_config_option("datestyle", "ISO",
							 PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, ERROR, false);
	(void) set_config_option("intervalstyle", "postgres",
							 PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, ERROR, false);
	(void) set_config_option("extra_float_digits", "3",
							 PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, ERROR, false);
	(void) set_config_option("bytea_output", "hex",
							 PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, ERROR, false);
	(void) set_config_option("search_path", "",
							 PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, ERROR, false);
}

/*
 * ab_copy_out
 *		COPY rel TO sink as CSV with a header row; returns the row count.
 *
 * See copy.h for the contract.
 */
uint64
ab_copy_out(Relation rel, AbCopyOutSink sink, void *arg)
{
	ParseState *pstate;
	List	   *options;
	CopyToState cstate;
	AbCopyOutState state;
	int			save_nestlevel;
	uint64		processed = 0;

	Assert(sink != NULL);

	if (copy_out_active != NULL)
		elog(ERROR, "aibackup COPY TO cannot be nested");
	if (!CheckRelationLockedByMe(rel, AccessShareLock, true))
		elog(ERROR, "relation \"%s\" must be locked before COPY TO",
			 RelationGetRelationName(rel));
	if (!ActiveSnapshotSet())
		elog(ERROR, "COPY TO of relation \"%s\" needs an active snapshot",
			 RelationGetRelationName(rel));

	pstate = make_parsestate(NULL);
	options = list_make3(makeDefElem("format",
									 (Node *) makeString("csv"), -1),
						 makeDefElem("header",
									 (Node *) makeString("true"), -1),
						 makeDefElem("encoding",
									 (Node *) makeString(pstrdup(GetDatabaseEncodingName())),
									 -1));

	save_nestlevel = NewGUCNestLevel();
	copy_out_pin_settings();

	memset(&state, 0, sizeof(state));
	state.sink = sink;
	state.arg = arg;

#if PG_VERSION_NUM >= 160000
	state.row = makeStringInfo();
	copy_out_active = &state;
	PG_TRY();
	{
		cstate = BeginCopyTo(pstate, rel, NULL, InvalidOid, NULL, false,
							 copy_out_dest, NIL, options);
		processed = DoCopyTo(cstate);
		EndCopyTo(cstate);
	}
	PG_FINALLY();
	{
		copy_out_active = NULL;
	}
	PG_END_TRY();
	pfree(state.row->data);
	pfree(state.row);
#else

	/*
	 * BeginCopyTo runs with the real output so that its errors (wrong
	 * relkind, bad options) are ordinary; only DoCopyTo sends protocol
	 * messages.
	 */
	cstate = BeginCopyTo(pstate, rel, NULL, InvalidOid, NULL, false,
						 NIL, options);

	state.saved_methods = PqCommMethods;
	state.saved_dest = whereToSendOutput;
	state.forward = (whereToSendOutput == DestRemote);
	copy_out_active = &state;
	PG_TRY();
	{
		PqCommMethods = &copy_out_comm_methods;
		whereToSendOutput = DestRemote;
		processed = DoCopyTo(cstate);
	}
	PG_FINALLY();
	{
		/* state is not modified inside PG_TRY, so it is safe to read */
		PqCommMethods = state.saved_methods;
		whereToSendOutput = state.saved_dest;
		copy_out_active = NULL;
	}
	PG_END_TRY();
	EndCopyTo(cstate);
#endif

	AtEOXact_GUC(false, save_nestlevel);
	free_parsestate(pstate);

	return processed;
}
