/*
 * restore.c
 *		Restore one table from a backup, in the caller's transaction:
 *		S3 (ranged GETs) -> SHA-256 -> gunzip -> COPY FROM (callback).
 *
 * The flow, and why:
 *	- Everything that can be checked before touching the target is checked
 *	  first: the backup and table exist, the object exists with the size the
 *	  manifest recorded, the caller may read the source and write the target,
 *	  no foreign key points at the target, the columns match by name.
 *	- An existing target is emptied with TRUNCATE (ACCESS EXCLUSIVE until the
 *	  transaction ends) and loaded with COPY in the same transaction, so the
 *	  restore is all or nothing and ROLLBACK undoes it.  Its triggers fire as
 *	  for any COPY.  A missing target is created from the manifest's columns.
 *	- The object is verified while it streams: the SHA-256 of the compressed
 *	  bytes and gzip's own CRC are checked at the end of the data, before
 *	  COPY returns; a mismatch raises an ERROR, which rolls the load back.
 *	- It runs as the caller: a role can never use restore to read data it
 *	  could not read (SELECT on the source if it still exists) or to write
 *	  where it could not (INSERT and TRUNCATE, or CREATE through the normal
 *	  CREATE TABLE checks).  Row-level security on the target is refused
 *	  unless the caller bypasses it, since COPY FROM would skip the policies.
 *
 * Memory: one download chunk plus zlib's window and a bounded output buffer.
 */
#include "postgres.h"

#include "access/relation.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/catalog.h"
#include "catalog/namespace.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_constraint.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "parser/parse_relation.h"
#include "parser/parse_type.h"
#include "parser/scansup.h"
#include "storage/ipc.h"
#include "storage/lmgr.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/regproc.h"
#include "utils/rls.h"
#include "utils/syscache.h"
#include "utils/varlena.h"

#include "core/digest.h"
#include "core/gzstream.h"
#include "core/manifest.h"
#include "core/s3.h"
#include "jobs/recreate.h"
#include "jobs/restore.h"
#include "jobs/restore_int.h"
#include "pg/compat.h"
#include "pg/copy.h"
#include "pg/query.h"
#include "pg/repo.h"
#include "pg/repo_index.h"
#include "pg/s3_session.h"
#include "pg/state.h"

#define AB_DOWNLOAD_CHUNK	(8 * 1024 * 1024)
#define AB_INFLATE_SLICE	(16 * 1024) /* compressed bytes per inflate step */

/* the streaming state of one restore */
struct RestoreStream
{
	S3Reader   *reader;
	GzsInflate *gz;
	DigestSha256 *sha;
	const MfTable *table;
	const char *key;
	const char *encoding;		/* the object's, for COPY; NULL = ours */
	bool		ascii_only;		/* refuse a byte that is not ASCII */
	const char *source_encoding;	/* the backup's, for that refusal */

	const char *in;				/* compressed bytes not yet inflated */
	size_t		in_len;
	bool		in_eof;

	char	   *out;			/* inflated bytes not yet given to COPY */
	size_t		out_len;
	size_t		out_pos;
	size_t		out_cap;
	bool		out_oom;

	int64		compressed;
	bool		finished;
	bool		discard;		/* verifying after a failure: drop output */
	bool		reported;		/* stream_corrupt() already raised */
};

static int
inflate_sink(void *arg, const void *data, size_t len)
{
	RestoreStream *rs = arg;

	if (rs->discard)
		return 0;
	if (rs->out_len + len > rs->out_cap)
	{
		size_t		ncap = Max(rs->out_cap * 2, rs->out_len + len);
		char	   *n = realloc(rs->out, ncap);

		if (n == NULL)
		{
			rs->out_oom = true;
			return 1;
		}
		rs->out = n;
		rs->out_cap = ncap;
	}
	memcpy(rs->out + rs->out_len, data, len);
	rs->out_len += len;
	return 0;
}

static void
stream_corrupt(RestoreStream *rs, const char *what)
{
	rs->reported = true;
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("backup object \"%s\" is corrupt: %s", rs->key, what),
			 errhint("The object was changed or damaged after the backup; restore from another backup.")));
}

/* account for a piece just downloaded (len 0: the end of the object) */
static void
stream_took(RestoreStream *rs, const void *data, size_t len)
{
	if (len == 0)
	{
		rs->in_eof = true;
		return;
	}
	rs->in = data;
	rs->in_len = len;
	rs->compressed += len;
	digest_sha256_update(rs->sha, data, len);
}

/* refill rs->out with inflated bytes; false at the end of the data */
static bool
stream_fill(RestoreStream *rs)
{
	rs->out_len = 0;
	rs->out_pos = 0;
	while (rs->out_len == 0)
	{
		size_t		n;

		if (rs->in_len == 0 && !rs->in_eof)
		{
			const void *data;
			size_t		len;
			S3Error		err;

			if (!s3_reader_next(rs->reader, &data, &len, &err))
			{
				if (err.http_status == 412)
					stream_corrupt(rs, "it changed while it was being read");
				ab_s3_report(&err);
			}
			CHECK_FOR_INTERRUPTS();
			stream_took(rs, data, len);
			ab_progress_bytes((int64) gzs_inflate_bytes_out(rs->gz),
							  rs->compressed, rs->compressed);
		}
		if (rs->in_len == 0 && rs->in_eof)
		{
			char		sha[DIGEST_SHA256_HEX];

			if (rs->finished)
				return false;
			rs->finished = true;
			if (!gzs_inflate_finish(rs->gz))
				stream_corrupt(rs, gzs_inflate_error(rs->gz));
			digest_sha256_final(rs->sha, sha);
			if (rs->compressed != rs->table->compressed_bytes)
				stream_corrupt(rs, psprintf("it has %lld bytes, the manifest recorded %lld",
											(long long) rs->compressed,
											(long long) rs->table->compressed_bytes));
			if (rs->table->sha256 == NULL || strcmp(sha, rs->table->sha256) != 0)
				stream_corrupt(rs, psprintf("SHA-256 checksum mismatch (got %s, the manifest recorded %s)",
											sha, rs->table->sha256 ? rs->table->sha256 : "none"));
			return rs->out_len > 0;
		}
		/* inflate in small slices so the output stays bounded */
		n = Min(rs->in_len, AB_INFLATE_SLICE);
		if (!gzs_inflate_write(rs->gz, rs->in, n))
		{
			if (rs->out_oom)
				ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
			stream_corrupt(rs, gzs_inflate_error(rs->gz));
		}
		rs->in += n;
		rs->in_len -= n;
	}
	return true;
}

/*
 * After COPY failed mid-stream: read, hash and inflate the rest of the
 * object, so that a damaged object is reported as damaged rather than as
 * bad data in some row.  Returns why the object is corrupt, or NULL if it
 * is intact (or cannot be read to the end: then COPY's error stands).
 * Never raises an error.
 */
static const char *
stream_verify_rest(RestoreStream *rs)
{
	char		sha[DIGEST_SHA256_HEX];

	if (rs->finished || rs->gz == NULL || rs->sha == NULL)
		return NULL;
	rs->discard = true;
	for (;;)
	{
		const void *data;
		size_t		len;
		S3Error		err;

		if (rs->in_len > 0)
		{
			if (!gzs_inflate_write(rs->gz, rs->in, rs->in_len))
				return pstrdup(gzs_inflate_error(rs->gz));
			rs->in_len = 0;
		}
		if (rs->in_eof)
			break;
		if (!s3_reader_next(rs->reader, &data, &len, &err))
			return NULL;
		stream_took(rs, data, len);
	}
	rs->finished = true;
	if (!gzs_inflate_finish(rs->gz))
		return pstrdup(gzs_inflate_error(rs->gz));
	digest_sha256_final(rs->sha, sha);
	if (rs->table->sha256 == NULL || strcmp(sha, rs->table->sha256) != 0)
		return psprintf("SHA-256 checksum mismatch (got %s, the manifest recorded %s)",
						sha, rs->table->sha256 ? rs->table->sha256 : "none");
	return NULL;
}

static bool
all_ascii(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
	{
		if (IS_HIGHBIT_SET(p[i]))
			return false;
	}
	return true;
}

static size_t
copy_source(void *arg, char *buf, size_t maxlen)
{
	RestoreStream *rs = arg;
	size_t		n;

	if (rs->out_pos >= rs->out_len && !stream_fill(rs))
		return 0;
	n = Min(maxlen, rs->out_len - rs->out_pos);
	if (rs->ascii_only && !all_ascii(rs->out + rs->out_pos, n))
		ereport(ERROR,
				(errcode(ERRCODE_CHARACTER_NOT_IN_REPERTOIRE),
				 errmsg("cannot restore table \"%s.%s\" into a database with encoding SQL_ASCII: its backup holds text in encoding \"%s\" that is not ASCII",
						rs->table->schema, rs->table->name, rs->source_encoding),
				 errdetail("SQL_ASCII gives bytes no encoding; aibackup reads its names as UTF-8, but cannot know whether the applications of this database expect these characters in UTF-8 or in %s.",
						   rs->source_encoding),
				 errhint("Restore it into a database with encoding %s or UTF8.",
						 rs->source_encoding)));
	memcpy(buf, rs->out + rs->out_pos, n);
	rs->out_pos += n;
	return n;
}

static void
stream_free(RestoreStream *rs)
{
	s3_reader_free(rs->reader);
	gzs_inflate_free(rs->gz);
	digest_sha256_free(rs->sha);
	free(rs->out);
	rs->reader = NULL;
	rs->gz = NULL;
	rs->sha = NULL;
	rs->out = NULL;
}

/* split a possibly qualified, possibly quoted name; ERROR if it does not parse */
static List *
parse_table_name(const char *what, const char *name)
{
	char	   *raw = pstrdup(name);
	List	   *names;

	if (!SplitIdentifierString(raw, '.', &names) || names == NIL ||
		list_length(names) > 2)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_NAME),
				 errmsg("invalid %s name \"%s\"", what, name),
				 errhint("Write a table name as in SQL: table, schema.table, or \"Quoted Name\".")));
	return names;
}

/*
 * A name of the backup as this database stores it: truncated to
 * NAMEDATALEN - 1 bytes, at a character boundary, as the parser truncates
 * identifiers.  A name that fit in the source's encoding may not in ours.
 */
static char *
truncated(const char *s)
{
	char	   *r = pstrdup(s);

	truncate_identifier(r, strlen(r), false);
	return r;
}

/* entry i of the tables, then of the partitioned tables, of m */
static const MfTable *
entry(const Manifest *m, int i)
{
	if (i < m->ntables)
		return &m->tables[i];
	return &m->partitioned[i - m->ntables];
}

/*
 * The entry of table schema.name (as typed, so truncated), NULL if absent;
 * ERROR if two tables of the backup have that name once truncated.
 */
static const MfTable *
find_table(const Manifest *m, const char *schema, const char *name)
{
	const MfTable *found = NULL;

	for (int i = 0; i < m->ntables + m->npartitioned; i++)
	{
		const MfTable *t = entry(m, i);

		if (strcmp(truncated(t->name), name) != 0 ||
			strcmp(truncated(t->schema), schema) != 0)
			continue;
		if (found != NULL)
			ereport(ERROR,
					(errcode(ERRCODE_DUPLICATE_TABLE),
					 errmsg("backup \"%s\" holds two tables named \"%s.%s\" once their names are truncated to %d bytes",
							m->backup_id, schema, name, NAMEDATALEN - 1),
					 errdetail("Their names in full are \"%s.%s\" and \"%s.%s\".",
							   found->schema, found->name, t->schema, t->name),
					 errhint("Restore from a database whose encoding spells their names in fewer bytes.")));
		found = t;
	}
	return found;
}

/*
 * A copy of t with its names truncated as this database stores them: the
 * table a restore creates and the columns it loads are named so.  ERROR if
 * two of its columns become one.
 */
const MfTable *
ab_restore_truncated_entry(const Manifest *m, const MfTable *t)
{
	MfTable    *r = palloc(sizeof(MfTable));

	*r = *t;
	r->schema = truncated(t->schema);
	r->name = truncated(t->name);
	r->owner = t->owner ? truncated(t->owner) : NULL;
	r->columns = palloc(sizeof(MfColumn) * Max(t->ncolumns, 1));
	for (int i = 0; i < t->ncolumns; i++)
	{
		r->columns[i] = t->columns[i];
		r->columns[i].name = truncated(t->columns[i].name);
		for (int j = 0; j < i; j++)
			if (strcmp(r->columns[j].name, r->columns[i].name) == 0)
				ereport(ERROR,
						(errcode(ERRCODE_DUPLICATE_COLUMN),
						 errmsg("columns \"%s\" and \"%s\" of table \"%s.%s\" in backup \"%s\" have the same name once truncated to %d bytes",
								t->columns[j].name, t->columns[i].name,
								r->schema, r->name, m->backup_id, NAMEDATALEN - 1),
						 errhint("Restore from a database whose encoding spells their names in fewer bytes.")));
	}
	return r;
}

/* the manifest entry for the requested (schema, table), NULL if absent */
static const MfTable *
find_in_manifest(const Manifest *m, List *names)
{
	if (list_length(names) == 2)
		return find_table(m, linitial(names), lsecond(names));
	else
	{
		/*
		 * unqualified: the first schema of search_path that has it, else a
		 * unique match
		 */
		List	   *path = fetch_search_path(false);
		ListCell   *lc;
		const MfTable *found = NULL;
		int			matches = 0;

		foreach(lc, path)
		{
			char	   *nsp = get_namespace_name(lfirst_oid(lc));
			const MfTable *t;

			if (nsp && (t = find_table(m, nsp, linitial(names))) != NULL)
				return t;
		}
		for (int i = 0; i < m->ntables + m->npartitioned; i++)
		{
			const MfTable *t = entry(m, i);

			if (strcmp(truncated(t->name), linitial(names)) == 0)
			{
				found = t;
				matches++;
			}
		}
		if (matches > 1)
			ereport(ERROR,
					(errcode(ERRCODE_AMBIGUOUS_ALIAS),
					 errmsg("table name \"%s\" is ambiguous in backup \"%s\"",
							(char *) linitial(names), m->backup_id),
					 errhint("Qualify it with its schema.")));
		return found;
	}
}

/*
 * May the caller read the rows of the backed-up table?  SELECT on it (and
 * USAGE on its schema), if it is still the same table: the manifest records
 * its OID, and a name that now belongs to another table (renamed away, then
 * replaced) proves nothing; nor does an OID of another database (one
 * created from this one's copy, then renamed to its name) or cluster.
 */
void
ab_restore_check_read(const Manifest *m, const MfTable *t, const char *action)
{
	Oid			nsp = get_namespace_oid(t->schema, true);
	Oid			relid = OidIsValid(nsp) ? get_relname_relid(t->name, nsp) : InvalidOid;
	AclResult	acl;

	/* no recorded OID (a backup before 0.2): identity unknown, fail closed */
	if (OidIsValid(relid) && relid != (Oid) t->relid)
		relid = InvalidOid;
	if ((m->database_oid != 0 && m->database_oid != MyDatabaseId) ||
		(m->system_identifier != NULL &&
		 strcmp(m->system_identifier, ab_system_identifier()) != 0))
		relid = InvalidOid;
	if (!OidIsValid(relid))
	{
		/*
		 * Dropped, renamed or replaced: there is no table left whose
		 * privileges say who may read these rows, so only roles that may read
		 * everything restore it.
		 */
		if (!superuser() && !has_privs_of_role(GetUserId(), ROLE_PG_READ_ALL_DATA))
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("permission denied to %s table \"%s.%s\"", action, t->schema, t->name),
					 errdetail("The table no longer exists under that name, so its privileges cannot be checked."),
					 errhint("A superuser or a member of pg_read_all_data can read its backup.")));
		return;
	}
	acl = ab_namespace_aclcheck(nsp, GetUserId(), ACL_USAGE);
	if (acl == ACLCHECK_OK)
		acl = pg_class_aclcheck(relid, GetUserId(), ACL_SELECT);
	if (acl != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to %s table \"%s.%s\"", action, t->schema, t->name),
				 errdetail("Reading the backup of a table that still exists requires SELECT on the table and USAGE on its schema.")));
	if (check_enable_rls(relid, InvalidOid, true) == RLS_ENABLED)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to %s table \"%s.%s\"", action, t->schema, t->name),
				 errdetail("Row-level security limits what this role can read of it, and its backup holds every row.")));
}

void
ab_restore_check_not_referenced(List *relids, const char *qualname)
{
	Datum	   *oids = palloc(sizeof(Datum) * Max(list_length(relids), 1));
	Datum		arg;
	Oid			type = OIDARRAYOID;
	AbQuery		q;
	char	   *con = NULL;
	char	   *from = NULL;
	ListCell   *lc;

	foreach(lc, relids)
		oids[foreach_current_index(lc)] = ObjectIdGetDatum(lfirst_oid(lc));
	arg = PointerGetDatum(construct_array(oids, list_length(relids), OIDOID,
										  sizeof(Oid), true, TYPALIGN_INT));
	ab_query_begin(&q);
	ab_query_exec_args("SELECT c.conname, c.conrelid::pg_catalog.regclass::pg_catalog.text "
					   "FROM pg_catalog.pg_constraint c "
					   "WHERE c.contype = 'f' AND c.confrelid = ANY ($1) "
					   "  AND NOT c.conrelid = ANY ($1) "
					   "ORDER BY 1 LIMIT 1", 1, &type, &arg, true, 1);
	if (SPI_processed > 0)
	{
		con = ab_query_value(&q, 0, 1);
		from = ab_query_value(&q, 0, 2);
	}
	ab_query_end(&q);
	if (con != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
				 errmsg("cannot replace the rows of table %s: constraint \"%s\" of table %s references it",
						qualname, con, from),
				 errdetail("Emptying a referenced table would break or cascade into the referencing table."),
				 errhint("Restore into a new table and reconcile, or drop the constraint, restore, and add it back (which checks it again).")));
}

/* does the backup hold a column of that name? */
static bool
backup_has_column(const MfTable *t, const char *name)
{
	for (int i = 0; i < t->ncolumns; i++)
	{
		if (strcmp(t->columns[i].name, name) == 0)
			return true;
	}
	return false;
}

void
ab_restore_check_columns(Oid relid, const MfTable *t, const char *qualname)
{
	Relation	rel = table_open(relid, NoLock);	/* locked by the caller */
	TupleDesc	desc = RelationGetDescr(rel);
	int			matched = 0;

	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (att->attisdropped || att->attgenerated != '\0')
			continue;
		if (!backup_has_column(t, NameStr(att->attname)))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("column \"%s\" of table %s is not in the backup",
							NameStr(att->attname), qualname),
					 errhint("Restore into a new table (target_table) and reconcile.")));
		matched++;
	}
	if (matched < t->ncolumns)
	{
		for (int i = 0; i < t->ncolumns; i++)
		{
			int			attnum = attnameAttNum(rel, t->columns[i].name, false);

			if (attnum == InvalidAttrNumber ||
				TupleDescAttr(desc, attnum - 1)->attgenerated != '\0')
				ereport(ERROR,
						(errcode(ERRCODE_UNDEFINED_COLUMN),
						 errmsg("column \"%s\" of the backup does not exist in table %s",
								t->columns[i].name, qualname),
						 errhint("Restore into a new table (target_table) and reconcile.")));
		}
	}
	table_close(rel, NoLock);
}

static char *
create_table_sql(const char *schema, const char *name, const MfTable *t,
				 const Manifest *m)
{
	StringInfoData q;
	char	   *partkey = NULL;

	initStringInfo(&q);
	appendStringInfo(&q, "CREATE TABLE %s (",
					 quote_qualified_identifier(schema, name));
	for (int i = 0; i < t->ncolumns; i++)
	{
		Oid			typid;
		int32		typmod;

		/*
		 * The manifest is data from outside: a type is parsed and printed
		 * back by the server, never pasted into SQL.
		 */
		ab_parse_type_string(t->columns[i].type, &typid, &typmod);
		appendStringInfo(&q, "%s%s %s%s", i ? ", " : "",
						 quote_identifier(t->columns[i].name),
						 format_type_extended(typid, typmod,
											  FORMAT_TYPE_TYPEMOD_GIVEN |
											  FORMAT_TYPE_FORCE_QUALIFY),
						 t->columns[i].not_null ? " NOT NULL" : "");
	}
	appendStringInfoChar(&q, ')');

	/*
	 * A partitioned table without its whole definition: only a key that runs
	 * PostgreSQL's own comparisons, rebuilt from its column names.
	 */
	if (ab_recreate_partition_key(t, false) != NULL &&
		(partkey = ab_recreate_partition_key(t, true)) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("cannot recreate partitioned table \"%s.%s\" of backup \"%s\": its partition key \"%s\" is code, which may run only as the role that owned it",
						t->schema, t->name, m->backup_id,
						ab_recreate_partition_key(t, false)),
				 errdetail("The key uses expressions, operator classes, collations or types that are not PostgreSQL's own, and the table will not be owned by an ordinary role that owned it at the backup."),
				 errhint("Restore as a role that may act as the table's owner, or create the partitioned table by hand (aibackup_table_ddl()) and restore into it.")));
	if (partkey)
		appendStringInfo(&q, " PARTITION BY %s", partkey);
	return q.data;
}

/*
 * May code from a backup run as this role?  Not a superuser's, nor one
 * with powers beyond its own objects: CREATEROLE (in 15, the power to grant
 * itself the others), BYPASSRLS, REPLICATION, or membership of any kind in
 * the predefined roles that reach files, programs, other sessions, all data
 * or all tables.
 */
bool
ab_restore_ordinary_role(Oid role)
{
	static const Oid powerful[] = {
		ROLE_PG_READ_SERVER_FILES, ROLE_PG_WRITE_SERVER_FILES,
		ROLE_PG_EXECUTE_SERVER_PROGRAM, ROLE_PG_READ_ALL_DATA,
		ROLE_PG_WRITE_ALL_DATA, ROLE_PG_SIGNAL_BACKEND
	};
	static const char *const powerful_later[] = {
		"pg_create_subscription",	/* 16 */
		"pg_maintain",			/* 17: LOCK, REINDEX, CLUSTER any table */
		"pg_signal_autovacuum_worker"	/* 18 */
	};
	HeapTuple	tup = SearchSysCache1(AUTHOID, ObjectIdGetDatum(role));
	Form_pg_authid a;
	bool		ok;

	if (!HeapTupleIsValid(tup))
		return false;
	a = (Form_pg_authid) GETSTRUCT(tup);
	ok = !a->rolsuper && !a->rolcreaterole && !a->rolbypassrls &&
		!a->rolreplication;
	ReleaseSysCache(tup);

	/*
	 * Any membership, not only one whose privileges it has: since 16 a role
	 * granted another WITH ADMIN only can grant that role to itself.
	 */
	for (size_t i = 0; ok && i < lengthof(powerful); i++)
		ok = !is_member_of_role(role, powerful[i]);
	/* predefined roles of later versions, by name */
	for (size_t i = 0; ok && i < lengthof(powerful_later); i++)
	{
		Oid			r = get_role_oid(powerful_later[i], true);

		ok = !OidIsValid(r) || !is_member_of_role(role, r);
	}
	return ok;
}

/*
 * Where the table owner's code runs (triggers, defaults, expressions): a
 * search_path the caller cannot plant functions in, as PostgreSQL 17 pins
 * it for maintenance commands (RestrictSearchPath).  The caller opened a
 * GUC nesting level.
 */
static void
restrict_search_path(void)
{
	(void) set_config_option("search_path", "pg_catalog, pg_temp",
							 PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
}

void
ab_restore_as_owner(Oid role, void (*fn) (void *), void *arg)
{
	Oid			save_userid;
	int			save_sec_context;
	int			save_nestlevel;

	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(role, save_sec_context | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	save_nestlevel = NewGUCNestLevel();
	restrict_search_path();
	fn(arg);
	AtEOXact_GUC(false, save_nestlevel);
	SetUserIdAndSecContext(save_userid, save_sec_context);
}

/*
 * The object must be what this version reads: CSV with a header row, gzip.
 * Both fields are optional (absent in early manifests: that was the only
 * shape); anything else was written by a newer version.
 */
void
ab_restore_check_storage(const Manifest *m, const MfTable *t)
{
	if ((t->format == NULL || strcmp(t->format, "csv") == 0) &&
		(t->compression == NULL || strcmp(t->compression, "gzip") == 0))
		return;
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("table \"%s.%s\" of backup \"%s\" is stored as %s compressed with %s, which this version of aibackup cannot read",
					t->schema, t->name, m->backup_id,
					t->format ? t->format : "csv",
					t->compression ? t->compression : "gzip"),
			 errhint("Restore it with the version of aibackup that made the backup, or a newer one.")));
}

Manifest *
ab_restore_read_backup(S3Client *c, const char *dbname, const char *backup_id)
{
	Manifest   *m;
	AbManifestState state;

	ab_repo_check_backup_id(backup_id);
	m = ab_repo_read_manifest_state(c, dbname, backup_id, &state);
	if (state == AB_MANIFEST_UNREADABLE)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("backup \"%s\" of database \"%s\" cannot be read", backup_id, dbname),
				 errdetail("The warning above says why."),
				 errhint("Restore from another backup.")));
	if (m == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("backup \"%s\" of database \"%s\" does not exist", backup_id, dbname),
				 errhint("aibackup_list_backups() lists the backups.")));
	return m;
}

bool
ab_restore_entry_ok(const MfTable *t)
{
	return t->status == NULL || strcmp(t->status, "ok") == 0;
}

/* find the backup and its table entry */
static const MfTable *
locate(S3Client *c, const char *dbname, const char *backup_id, List *names,
	   const char *source, Manifest **mp)
{
	const MfTable *t;

	if (backup_id)
	{
		Manifest   *m = ab_restore_read_backup(c, dbname, backup_id);

		t = find_in_manifest(m, names);
		if (t == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_TABLE),
					 errmsg("backup \"%s\" has no table \"%s\"", backup_id, source),
					 errhint("aibackup_list_tables('%s') lists its tables.", backup_id)));
		if (!ab_restore_entry_ok(t))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_TABLE),
					 errmsg("table \"%s.%s\" failed in backup \"%s\"", t->schema, t->name, backup_id),
					 errdetail("%s", t->error ? t->error : "No reason was recorded."),
					 errhint("Restore it from another backup.")));
		*mp = m;
		return t;
	}
	else
	{
		AbBackupWalk *w = ab_walk_begin(c, dbname, AB_WALK_MANIFEST);
		AbBackup	b;

		while (ab_walk_next(w, &b))
		{
			t = find_in_manifest(b.manifest, names);
			if (t && ab_restore_entry_ok(t))
			{
				ab_walk_end(w);
				*mp = b.manifest;
				return t;
			}
		}
		ab_walk_end(w);
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("no backup of database \"%s\" holds table \"%s\"", dbname, source),
				 errhint("aibackup_list_tables() lists the tables of a backup.")));
	}
	return NULL;				/* keep compiler quiet */
}

/* COPY the stream into rel; a damaged object is reported as such */
static uint64
load_verified(Relation rel, List *attnames, RestoreStream *rs)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	uint64		rows = 0;
	bool		bulk = false;

	PG_TRY();
	{
		rows = ab_copy_in(rel, attnames, true, rs->encoding, copy_source, rs,
						  &bulk);
		ereport(DEBUG1,
				(errmsg_internal("aibackup: loaded table \"%s\" %s",
								 RelationGetRelationName(rel),
								 bulk ? "in bulk (rows frozen, indexes built after the load)" :
								 "through COPY FROM (row by row)")));
		/* COPY may stop before asking for the end: check all of it */
		while (!rs->finished)
		{
			char		probe[1];

			if (copy_source(rs, probe, 1) != 0)
				stream_corrupt(rs, "it has data after the last row");
		}
	}
	PG_CATCH();
	{
		ErrorData  *edata;
		const char *why = NULL;

		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();

		/*
		 * Only errors about the data itself (class 22: bad input syntax, bad
		 * COPY format, invalid encoding) may come from a damaged object; a
		 * unique violation or a trigger's error is the load's.
		 */
		if (rs->reported ||
			ERRCODE_TO_CATEGORY(edata->sqlerrcode) != ERRCODE_DATA_EXCEPTION ||
			(why = stream_verify_rest(rs)) == NULL)
			PG_RE_THROW();
		FlushErrorState();
		stream_corrupt(rs, why);
	}
	PG_END_TRY();
	return rows;
}

/*
 * RangeVarGetRelidExtended's callback for an existing target, called for
 * each OID the name resolves to, before that OID is locked (again after a
 * concurrent rename): nobody queues an ACCESS EXCLUSIVE lock on a table
 * they may not empty, and the checks always apply to the OID that is locked.
 * arg: the relkind the target must have (a table, or a partitioned table).
 */
static void
target_lock_check(const RangeVar *rv, Oid relid, Oid oldrelid, void *arg)
{
	char		want = *(const char *) arg;
	char		relkind;
	AclResult	acl;

	if (!OidIsValid(relid))
		return;
	relkind = get_rel_relkind(relid);
	if (relkind == '\0')
		return;					/* dropped meanwhile: the lookup retries */
	if (relkind != want && want == RELKIND_RELATION)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a table", rv->relname),
				 errhint("Restore into a plain table, or into a partition.")));
	if (relkind != want)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a partitioned table", rv->relname),
				 errdetail("The backup holds a partitioned table of that name; restoring it whole restores into a partitioned table, or recreates one."),
				 errhint("Drop or rename \"%s\" first, or restore the backup's partitions one at a time.",
						 rv->relname)));
	acl = pg_class_aclcheck(relid, GetUserId(), ACL_INSERT);
	if (acl != ACLCHECK_OK)
		aclcheck_error(acl, OBJECT_TABLE, rv->relname);
	acl = pg_class_aclcheck(relid, GetUserId(), ACL_TRUNCATE);
	if (acl != ACLCHECK_OK)
		aclcheck_error(acl, OBJECT_TABLE, rv->relname);
}

Oid
ab_restore_lock_target(RangeVar *rv, char relkind)
{
	return RangeVarGetRelidExtended(rv, AccessExclusiveLock, RVR_MISSING_OK,
									target_lock_check, &relkind);
}

/* the target's name: target_table as given, or the source's own */
static RangeVar *
target_rangevar(const MfTable *t, const char *target)
{
	List	   *names;

	if (target == NULL)
		return makeRangeVar(pstrdup(t->schema), pstrdup(t->name), -1);
	names = parse_table_name("target table", target);
	if (list_length(names) == 2)
		return makeRangeVar(linitial(names), lsecond(names), -1);
	return makeRangeVar(NULL, linitial(names), -1);
}

/* "schema"."name" of a relation we hold a lock on (so it cannot be renamed) */
static char *
locked_qualname(Oid relid)
{
	return quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
									  get_rel_name(relid));
}

/*
 * Lock and check an existing target, by OID from here on.  Returns
 * InvalidOid (and locks nothing) when no table has the target's name.
 */
static Oid
lock_existing_target(const MfTable *t, RangeVar *rv, char **qualname)
{
	Oid			relid;

	relid = ab_restore_lock_target(rv, RELKIND_RELATION);
	if (!OidIsValid(relid))
		return InvalidOid;
	*qualname = locked_qualname(relid);
	ab_restore_check_rls(relid, *qualname);
	ab_restore_check_not_referenced(list_make1_oid(relid), *qualname);
	ab_restore_check_columns(relid, t, *qualname);
	return relid;
}

void
ab_restore_check_rls(Oid relid, const char *qualname)
{
	if (check_enable_rls(relid, InvalidOid, false) == RLS_ENABLED)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("cannot restore into %s: row-level security is enabled for this role", qualname),
				 errhint("Restore as the table's owner or a role with BYPASSRLS, or into a new table.")));
}

/*
 * The role other than a superuser whose code a value of this type runs
 * (a domain's CHECK constraints), looking through arrays, composites and
 * ranges; InvalidOid if none.
 */
Oid
ab_restore_type_code_owner(Oid typid, int depth)
{
	HeapTuple	tup;
	Form_pg_type typ;
	Oid			found = InvalidOid;

	check_stack_depth();
	tup = SearchSysCache1(TYPEOID, ObjectIdGetDatum(typid));
	if (!HeapTupleIsValid(tup))
		return InvalidOid;
	typ = (Form_pg_type) GETSTRUCT(tup);
	if (typ->typtype == TYPTYPE_DOMAIN && !superuser_arg(typ->typowner))
		found = typ->typowner;
	else if (typ->typtype == TYPTYPE_DOMAIN)
		found = ab_restore_type_code_owner(typ->typbasetype, depth + 1);
	else if (OidIsValid(typ->typelem) && IsTrueArrayType(typ))
		found = ab_restore_type_code_owner(typ->typelem, depth + 1);
	else if (typ->typtype == TYPTYPE_RANGE)
		found = ab_restore_type_code_owner(get_range_subtype(typid), depth + 1);
	else if (typ->typtype == TYPTYPE_MULTIRANGE)
		found = ab_restore_type_code_owner(get_multirange_range(typid), depth + 1);
	else if (typ->typtype == TYPTYPE_COMPOSITE && OidIsValid(typ->typrelid))
	{
		Relation	rel = relation_open(typ->typrelid, AccessShareLock);
		TupleDesc	desc = RelationGetDescr(rel);

		for (int i = 0; i < desc->natts && !OidIsValid(found); i++)
			if (!TupleDescAttr(desc, i)->attisdropped)
				found = ab_restore_type_code_owner(TupleDescAttr(desc, i)->atttypid,
												   depth + 1);
		relation_close(rel, AccessShareLock);
	}
	ReleaseSysCache(tup);
	return found;
}

/*
 * A new table is loaded as its owner, like any other.  If that owner is a
 * superuser, no column may hold a type whose checks are another role's
 * code: it would run with superuser rights.
 */
static void
check_new_table_types(Oid relid, Oid owner, const char *qualname)
{
	Relation	rel;
	TupleDesc	desc;

	if (!superuser_arg(owner))
		return;
	rel = table_open(relid, NoLock);
	desc = RelationGetDescr(rel);
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		Oid			foreign;

		if (att->attisdropped)
			continue;
		foreign = ab_restore_type_code_owner(att->atttypid, 0);
		if (OidIsValid(foreign))
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("cannot restore into new table %s as a superuser: column \"%s\" has type %s, whose checks are code of role \"%s\"",
							qualname, NameStr(att->attname),
							format_type_be_qualified(att->atttypid),
							GetUserNameFromId(foreign, false)),
					 errdetail("Loading the rows would run that role's functions with superuser rights."),
					 errhint("Restore as role \"%s\", or create the table first with an owner who is not a superuser and restore into it.",
							 GetUserNameFromId(foreign, false))));
	}
	table_close(rel, NoLock);
}

static void
recreate_create(void *arg)
{
	ab_recreate_create((AbRecreate *) arg);
}

/*
 * Create the missing target from the manifest's columns, then give it to
 * the role that owned the table at backup time, when that role still exists
 * and the caller may act as it (as ALTER TABLE OWNER requires).
 */
Oid
ab_restore_create_table(const Manifest *m, const MfTable *t, RangeVar *rv,
						char **qualname, AbRecreate *r,
						const AbRestoreOptions *opts, const AbRecreate *parent)
{
	Oid			nsp;
	Oid			relid;
	Oid			owner = InvalidOid;
	Oid			recorded = InvalidOid;
	Oid			new_owner;
	AbQuery		q;

	if (rv->schemaname != NULL && strcmp(rv->schemaname, "pg_temp") != 0 &&
		!OidIsValid(get_namespace_oid(rv->schemaname, true)))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_SCHEMA),
				 errmsg("schema \"%s\" does not exist", rv->schemaname),
				 errhint("Create the schema first, or name another target_table.")));
	nsp = RangeVarGetCreationNamespace(rv);
	*qualname = quote_qualified_identifier(get_namespace_name(nsp), rv->relname);

	/* an extension's table is its script's to create, not a plain table */
	if (t->extension != NULL && strcmp(get_namespace_name(nsp), t->schema) == 0 &&
		strcmp(rv->relname, t->name) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot recreate table \"%s.%s\" of extension \"%s\"",
						t->schema, t->name, t->extension),
				 errdetail("It belongs to the extension, whose script creates it; a plain table of that name would stand in the extension's way."),
				 errhint("Create or update the extension first, then restore the table into it; or restore it under another name with target_table.")));
	if (t->owner != NULL)
		recorded = owner = get_role_oid(t->owner, true);
	if (!opts->owner)
		owner = InvalidOid;		/* the caller keeps it */
	if (OidIsValid(owner) &&
		(owner == GetUserId() || !ab_can_set_role(GetUserId(), owner)))
		owner = InvalidOid;
	new_owner = OidIsValid(owner) ? owner : GetUserId();

	if (ab_recreate_possible(t))
	{
		/* the whole definition: the table as it was, or under a new name */
		memset(r, 0, sizeof(*r));
		r->m = m;
		r->t = t;
		r->schema = get_namespace_name(nsp);
		r->name = rv->relname;
		r->nsp = nsp;
		r->renamed = strcmp(r->schema, t->schema) != 0 ||
			strcmp(r->name, t->name) != 0;
		r->with_fks = opts->foreign_keys;
		r->with_grants = opts->grants;
		r->as_partition = parent != NULL;
		if (parent != NULL)
		{
			/* what its recreated ancestors were, and are now */
			r->parent_seqs = list_concat_copy(parent->seqs, parent->parent_seqs);
			r->parent_names = list_concat_copy(parent->names, parent->parent_names);
			r->parent_tables = list_concat(list_make2(quote_qualified_identifier(parent->t->schema,
																				 parent->t->name),
													  parent->qualname),
										   list_copy(parent->parent_tables));
		}
		r->owner_kept = OidIsValid(recorded) && new_owner == recorded;

		/*
		 * A definition is code: a CHECK, a default, an index expression, even
		 * the parsing of a default (a domain's CHECK).  It is run whole, and
		 * as the role that owned the table, only when that role is an
		 * ordinary one and owns the new table; otherwise only what runs no
		 * code is recreated (ab_recreate_plan says so).
		 */
		r->full = OidIsValid(recorded) && new_owner == recorded &&
			ab_restore_ordinary_role(recorded);
		r->owner_note = !OidIsValid(recorded) ?
			psprintf("The role that owned it at the backup (\"%s\") does not exist",
					 t->owner ? t->owner : "unknown") :
			new_owner != recorded ?
			psprintf("The table will not be owned by the role that owned it at the backup (\"%s\")",
					 t->owner) :
			psprintf("The role that owns it (\"%s\") is a superuser or holds powers (CREATEROLE, BYPASSRLS, server files or programs, all data) that code from a backup must not run with",
					 t->owner);
		(void) ab_recreate_plan(r);
	}

	if (r->t != NULL && r->full)
	{
		/* what the caller could not create, the owner does not create for it */
		AclResult	acl = ab_namespace_aclcheck(nsp, GetUserId(), ACL_CREATE);

		if (acl != ACLCHECK_OK)
			aclcheck_error(acl, OBJECT_SCHEMA, get_namespace_name(nsp));
		ab_restore_as_owner(recorded, recreate_create, r);
		owner = InvalidOid;		/* it owns it already */
	}

	/*
	 * The manifest's types were written with search_path '' (qualified
	 * outside pg_catalog): parse them under the pinned path too, or a type or
	 * domain planted in public could stand in for a built-in one.
	 */
	ab_query_begin(&q);
	if (r->t == NULL || !r->full)
		ab_query_exec(create_table_sql(get_namespace_name(nsp), rv->relname, t,
									   m), false, 0);
	if (OidIsValid(owner))
		ab_query_exec(psprintf("ALTER TABLE %s OWNER TO %s", *qualname,
							   quote_identifier(t->owner)), false, 0);
	ab_query_end(&q);
	CommandCounterIncrement();
	relid = get_relname_relid(rv->relname, nsp);
	if (!OidIsValid(relid))
		elog(ERROR, "table %s vanished after it was created", *qualname);
	check_new_table_types(relid, new_owner, *qualname);
	return relid;
}

void
ab_restore_check_truncate(Relation rel)
{
	/* what TRUNCATE itself refuses */
	if (RELATION_IS_OTHER_TEMP(rel))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot restore into temporary tables of other sessions")));
	if (!allowSystemTableMods && IsSystemClass(RelationGetRelid(rel), rel->rd_rel))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied: \"%s\" is a system catalog",
						RelationGetRelationName(rel))));
	CheckTableNotInUse(rel, "TRUNCATE");
}

/*
 * Empty (unless just created) and load the locked target, as its owner in
 * a security-restricted operation, as VACUUM and REFRESH MATERIALIZED VIEW
 * run a table's functions: the table's triggers, defaults, constraints and
 * index expressions are its owner's code and must not run with the
 * caller's rights (a superuser's, say).  The caller's rights were checked
 * on the locked OID; the TRUNCATE is by that OID, with no second lookup.
 * Settings the owner's code changes are undone at the end.
 */
static uint64
load_as_owner(Oid relid, bool truncate, const MfTable *t, RestoreStream *rs,
			  AbRecreate *r)
{
	Oid			save_userid;
	int			save_sec_context;
	int			save_nestlevel;
	Relation	rel;
	List	   *attnames = NIL;
	uint64		rows;

	for (int i = 0; i < t->ncolumns; i++)
		attnames = lappend(attnames, makeString(pstrdup(t->columns[i].name)));

	rel = table_open(relid, NoLock);	/* ACCESS EXCLUSIVE since the lookup */
	if (truncate)
		ab_restore_check_truncate(rel);

	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(rel->rd_rel->relowner,
						   save_sec_context | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	save_nestlevel = NewGUCNestLevel();
	restrict_search_path();
	if (truncate)
	{
		ab_truncate_one(rel);
		CommandCounterIncrement();
	}
	ab_progress_phase("downloading");
	rows = load_verified(rel, attnames, rs);
	table_close(rel, NoLock);	/* ALTER TABLE wants it closed */
	CommandCounterIncrement();

	/* after the data, as the owner: their expressions are the owner's code */
	ab_progress_phase("building indexes");
	if (r->t != NULL)
		ab_recreate_finish(r);
	/* and whatever sequence feeds a column still lags the data */
	ab_sequences_catch_up(relid, save_userid);
	AtEOXact_GUC(false, save_nestlevel);
	SetUserIdAndSecContext(save_userid, save_sec_context);
	return rows;
}

static void open_stream(S3Client *client, const Manifest *m, const MfTable *t,
						RestoreStream *rs);

uint64
ab_restore_fill(S3Client *client, const Manifest *m, const MfTable *t,
				Oid relid, AbRecreate *r)
{
	RestoreStream rs;
	volatile uint64 rows = 0;

	ab_restore_check_storage(m, t);
	open_stream(client, m, t, &rs);
	PG_TRY();
	{
		rows = load_as_owner(relid, false, t, &rs, r);
	}
	PG_FINALLY();
	{
		stream_free(&rs);
	}
	PG_END_TRY();
	return rows;
}

/*
 * A FATAL exit (pg_terminate_backend) skips PG_FINALLY: the readers' threads
 * must not outlive the process's exit callbacks (OpenSSL's atexit cleanup).
 */
static bool exit_callback = false;

static void
stop_reader_threads(int code, Datum arg)
{
	s3_reader_stop_all();
}

/* open the object and check its size against the manifest */
static void
open_object(S3Client *client, const Manifest *m, const MfTable *t,
			RestoreStream *rs)
{
	bool		found;
	S3Error		err;

	ab_repo_check_table_object(m, t);
	memset(rs, 0, sizeof(*rs));
	rs->table = t;
	rs->key = t->object_key;
	if (!exit_callback)
	{
		on_proc_exit(stop_reader_threads, (Datum) 0);
		exit_callback = true;
	}
	rs->reader = s3_reader_open(client, t->object_key, AB_DOWNLOAD_CHUNK, &found, &err);
	if (rs->reader == NULL && !found && err.kind == S3ERR_NONE)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FILE),
				 errmsg("backup object \"%s\" is missing", t->object_key),
				 errdetail("Backup \"%s\" lists it, but it is not in the bucket.", m->backup_id),
				 errhint("Restore from another backup.")));
	if (rs->reader == NULL)
		ab_s3_report(&err);
	rs->gz = gzs_inflate_new(inflate_sink, rs);
	rs->sha = digest_sha256_new();
	if (rs->gz == NULL || rs->sha == NULL)
	{
		stream_free(rs);
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	}
	if (s3_reader_size(rs->reader) != t->compressed_bytes)
	{
		char	   *why = psprintf("it has %lld bytes, the manifest recorded %lld",
								   (long long) s3_reader_size(rs->reader),
								   (long long) t->compressed_bytes);

		stream_free(rs);
		stream_corrupt(rs, why);
	}
}

/*
 * Open t's object, checked to be there and whole, as a stream in the
 * encoding COPY must convert from.
 */
static void
open_stream(S3Client *client, const Manifest *m, const MfTable *t,
			RestoreStream *rs)
{
	/*
	 * The object is in the source database's encoding, which COPY converts
	 * from.  SQL_ASCII says nothing about the bytes: aibackup reads its names
	 * as UTF-8, and so its text, which COPY then checks as UTF-8 (a byte that
	 * is not fails the restore, rather than turning into other characters).
	 * An SQL_ASCII target cannot convert: UTF-8 and SQL_ASCII objects load as
	 * they are, an object in another encoding only if it is ASCII (its
	 * characters would have to be guessed into bytes).  A backup before 0.2,
	 * which does not say, loads as this database's encoding.
	 */
	if (m->server_encoding != NULL &&
		pg_valid_server_encoding(m->server_encoding) < 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("backup \"%s\" records an unknown encoding \"%s\"",
						m->backup_id, m->server_encoding)));

	open_object(client, m, t, rs);
	if (m->server_encoding != NULL)
	{
		int			src = pg_valid_server_encoding(m->server_encoding);

		if (src != PG_SQL_ASCII)
			rs->encoding = m->server_encoding;
		else if (GetDatabaseEncoding() != PG_SQL_ASCII)
			rs->encoding = "UTF8";
		rs->ascii_only = GetDatabaseEncoding() == PG_SQL_ASCII &&
			src != PG_SQL_ASCII && src != PG_UTF8;
		rs->source_encoding = m->server_encoding;
	}
}

/* check, lock or create, and load: everything after the object is open */
static uint64
restore_into(const Manifest *m, const MfTable *t, const char *target,
			 const AbRestoreOptions *opts, RestoreStream *rs, char **qualname)
{
	RangeVar   *rv = target_rangevar(t, target);
	Oid			relid;
	bool		created = false;
	AbRecreate	r;

	memset(&r, 0, sizeof(r));
	ab_restore_check_read(m, t, "restore");
	relid = lock_existing_target(t, rv, qualname);
	if (!OidIsValid(relid))
	{
		relid = ab_restore_create_table(m, t, rv, qualname, &r, opts, NULL);
		created = true;
	}
	ab_progress_table(relid, *qualname, 0, 1);
	return load_as_owner(relid, !created, t, rs, &r);
}

int64
ab_restore_table(const char *source, const char *backup_id, const char *target,
				 const AbRestoreOptions *opts)
{
	char	   *dbname = get_database_name(MyDatabaseId);
	List	   *src_names = parse_table_name("table", source);
	S3Client   *client;
	Manifest   *m = NULL;
	const MfTable *volatile t;
	RestoreStream rs;
	char	   *volatile qualname = NULL;
	volatile uint64 rows = 0;

	PreventCommandIfReadOnly("aibackup_restore_table()");
	if (target != NULL)
		(void) parse_table_name("target table", target);	/* bad input first */

	ab_repo_check_backup_id(backup_id);
	ab_repo_check_folder_unique();
	client = ab_s3_client();
	t = locate(client, dbname, backup_id, src_names, source, &m);
	if (ab_repo_is_partitioned(m, t))
		return ab_restore_partitioned(client, m, t, target, opts);
	t = ab_restore_truncated_entry(m, t);
	ab_restore_check_storage(m, t);
	if (mf_system_schema(t->schema))
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s.%s\" of backup \"%s\" is a system catalog, not a table to restore",
						t->schema, t->name, m->backup_id),
				 strncmp(t->name, "pg_largeobject", 14) == 0 ?
				 errhint("Restore the large objects with aibackup_restore_large_objects().") : 0));

	/* the object is there and whole, before anything changes */
	open_stream(client, m, t, &rs);

	ab_progress_begin("restore", m->backup_id);
	ab_progress_phase("checking");
	PG_TRY();
	{
		char	   *name = NULL;

		rows = restore_into(m, t, target, opts, &rs, &name);
		qualname = name;
	}
	PG_FINALLY();
	{
		stream_free(&rs);
		ab_progress_end();
	}
	PG_END_TRY();

	ereport(NOTICE,
			(errmsg("restored " UINT64_FORMAT " rows into %s from backup \"%s\"",
					rows, qualname, m->backup_id)));
	return (int64) rows;
}

const MfTable *
ab_restore_find_table(const char *source, const char *backup_id, Manifest **m)
{
	List	   *src_names = parse_table_name("table", source);

	ab_repo_check_backup_id(backup_id);
	ab_repo_check_folder_unique();
	return locate(ab_s3_client(), get_database_name(MyDatabaseId), backup_id,
				  src_names, source, m);
}

char *
ab_restore_table_ddl(const char *source, const char *backup_id)
{
	Manifest   *m = NULL;
	const MfTable *t;

	t = ab_restore_find_table(source, backup_id, &m);
	ab_restore_check_read(m, t, "read the definition of");
	if (t->ddl == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("backup \"%s\" holds no definition of table \"%s.%s\"",
						m->backup_id, t->schema, t->name),
				 errdetail("Backups made before definitions were recorded hold column names and types only.")));
	return pstrdup(t->ddl);
}

uint64
ab_restore_load_object(S3Client *client, const Manifest *m, const MfTable *t,
					   Relation rel)
{
	RestoreStream rs;
	List	   *attnames = NIL;
	volatile uint64 rows = 0;

	ab_restore_check_storage(m, t);
	open_stream(client, m, t, &rs);
	for (int i = 0; i < t->ncolumns; i++)
		attnames = lappend(attnames, makeString(pstrdup(t->columns[i].name)));
	PG_TRY();
	{
		rows = load_verified(rel, attnames, &rs);
	}
	PG_FINALLY();
	{
		stream_free(&rs);
	}
	PG_END_TRY();
	return rows;
}

RestoreStream *
ab_restore_stream_open(S3Client *client, const Manifest *m, const MfTable *t)
{
	RestoreStream *rs = palloc(sizeof(RestoreStream));

	ab_restore_check_storage(m, t);
	open_stream(client, m, t, rs);
	return rs;
}

size_t
ab_restore_stream_read(RestoreStream *rs, char *buf, size_t maxlen)
{
	return copy_source(rs, buf, maxlen);
}

int
ab_restore_stream_encoding(const RestoreStream *rs)
{
	return rs->encoding ? pg_char_to_encoding(rs->encoding) : GetDatabaseEncoding();
}

void
ab_restore_stream_close(RestoreStream *rs)
{
	stream_free(rs);
}

const char *
ab_restore_stream_verify_rest(RestoreStream *rs)
{
	return rs->reported ? NULL : stream_verify_rest(rs);
}

void
ab_restore_stream_corrupt(RestoreStream *rs, const char *why)
{
	stream_corrupt(rs, why);
	pg_unreachable();
}
