/*
 * repo.c
 *		Knows where things are in the bucket and reads/writes manifests.
 *
 * A backup exists only once its manifest.json does: every reader goes
 * through ab_repo_read_manifest_state() and treats a folder without one as
 * debris (a run that failed or is still going).  Names in keys are
 * percent-encoded (every byte outside [A-Za-z0-9_-]) so that any table name
 * makes one flat, unambiguous key and '.' separates schema from table.
 *
 * Encodings, one rule: everything in S3 is UTF-8 (the manifest's text and
 * the names in keys), everything this layer hands to or takes from the rest
 * of aibackup is in the server encoding (the Manifest a reader gets, the
 * names the key builders are given).  The conversion happens here and
 * nowhere else: ab_repo_to_utf8() on the way out, ab_repo_from_utf8() on
 * the way in.  So a LATIN1 database's backups have the same keys and the
 * same manifest text as a UTF-8 database's with the same names.  An
 * SQL_ASCII database gives its bytes no encoding: its names are taken as
 * UTF-8, and one that is not valid UTF-8 cannot be backed up.
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xlog.h"
#include "catalog/namespace.h"
#include "catalog/pg_database.h"
#include "commands/dbcommands.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "common/string.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/timestamp.h"
#include "utils/memutils.h"
#include "utils/varlena.h"

#include "core/buf.h"
#include "pg/repo.h"
#include "pg/s3_session.h"
#include "pg/settings.h"

#define MANIFEST_MAX_BYTES	(256 * 1024 * 1024)

/* ----------------------------------------------------------------
 * Encodings
 * ----------------------------------------------------------------
 */

static char *convert_or_null(const char *s, int from, int to);

/*
 * s, text in the given encoding, for a message whatever the encoding of
 * the message: printable ASCII as it is, a character of that encoding as
 * the Unicode code point it stands for (\uXXXX), any other byte as \xNN.
 * SQL_ASCII bytes are read as UTF-8, as names are.  A character of a real
 * conversion is looked up one at a time: a transaction is needed then.
 */
static char *
printable(const char *s, int encoding)
{
	StringInfoData buf;
	const char *p = s;
	const char *end = s + strlen(s);

	if (encoding == PG_SQL_ASCII || !PG_VALID_BE_ENCODING(encoding))
		encoding = PG_UTF8;
	initStringInfo(&buf);
	while (p < end)
	{
		unsigned char c = (unsigned char) *p;
		int			len = -1;
		char	   *u = NULL;

		if (c >= 0x20 && c < 0x7f)
		{
			appendStringInfoChar(&buf, (char) c);
			p++;
			continue;
		}
		if (IS_HIGHBIT_SET(c))
			len = pg_encoding_verifymbchar(encoding, p, end - p);
		if (len > 0 && len <= MAX_MULTIBYTE_CHAR_LEN)
		{
			char		one[MAX_MULTIBYTE_CHAR_LEN + 1];

			memcpy(one, p, len);
			one[len] = '\0';
			u = encoding == PG_UTF8 ? pstrdup(one) :
				convert_or_null(one, encoding, PG_UTF8);
		}
		if (u == NULL || u[0] == '\0')
		{
			appendStringInfo(&buf, "\\x%02X", c);
			p++;
			continue;
		}
		/* one character may stand for more than one code point */
		for (const unsigned char *q = (const unsigned char *) u; *q; q += pg_utf_mblen(q))
		{
			pg_wchar	cp = utf8_to_unicode(q);

			appendStringInfo(&buf, cp > 0xFFFF ? "\\U%08X" : "\\u%04X", cp);
		}
		p += len;
	}
	return buf.data;
}

/*
 * s (a C string in encoding "from") in encoding "to", palloc'd; NULL when a
 * character is not valid in "from" or has no equivalent in "to".  SQL_ASCII
 * on either side converts nothing: the bytes must be valid in the other.
 * A real conversion looks up the conversion function, so needs a
 * transaction; ASCII, UTF-8 to UTF-8 and anything with SQL_ASCII do not.
 */
static char *
convert_or_null(const char *s, int from, int to)
{
	int			len = strlen(s);
	Oid			proc;
	char	   *dest;
	int			destlen;
	int			converted;

	/* every server encoding is a superset of ASCII: names mostly are */
	if (PG_VALID_BE_ENCODING(from) && PG_VALID_BE_ENCODING(to) &&
		pg_is_ascii(s))
		return pstrdup(s);
	if (from == PG_SQL_ASCII)
		from = to;
	else if (to == PG_SQL_ASCII)
		to = from;
	if (from == to)
		return pg_verify_mbstr(from, s, len, true) ? pstrdup(s) : NULL;
	if (len == 0)
		return pstrdup("");
	if ((Size) len >= (MaxAllocSize - 1) / MAX_CONVERSION_GROWTH)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("string of %d bytes is too long for encoding conversion", len)));
	proc = FindDefaultConversionProc(from, to);
	if (!OidIsValid(proc))
		return NULL;			/* MULE_INTERNAL has none to UTF-8 */
	destlen = len * MAX_CONVERSION_GROWTH + 1;
	dest = palloc(destlen);
	converted = pg_do_encoding_conversion_buf(proc, from, to,
											  (unsigned char *) s, len,
											  (unsigned char *) dest, destlen,
											  true);
	if (converted != len)
	{
		pfree(dest);
		return NULL;
	}
	return dest;
}

/*
 * The same, never failing: a character that does not convert becomes '?'.
 * For text that is only read by people (error messages, the entries of
 * tables that failed).
 */
static char *
convert_lenient(const char *s, int from, int to)
{
	char	   *r = convert_or_null(s, from, to);
	int			src = from == PG_SQL_ASCII ? to : from;
	StringInfoData buf;
	const char *p = s;
	const char *end = s + strlen(s);

	if (r != NULL)
		return r;
	initStringInfo(&buf);
	while (p < end)
	{
		int			len = pg_encoding_verifymbchar(src, p, end - p);
		char		one[MAX_MULTIBYTE_CHAR_LEN + 1];
		char	   *c = NULL;

		if (len > 0 && len <= MAX_MULTIBYTE_CHAR_LEN)
		{
			memcpy(one, p, len);
			one[len] = '\0';
			c = convert_or_null(one, from, to);
		}
		else
			len = 1;			/* not a character: skip one byte */
		appendStringInfoString(&buf, c ? c : "?");
		p += len;
	}
	return buf.data;
}

/*
 * ab_repo_to_utf8(), with the hint of the ERROR given: a database cannot
 * be left out with aibackup.exclude.
 */
static char *
to_utf8(const char *s, int encoding, bool noError, bool is_database)
{
	char	   *r = convert_or_null(s, encoding, PG_UTF8);

	/*
	 * A name must come back from UTF-8 as it was: in EUC_JP, for one, NEC and
	 * IBM variants of a character share one UTF-8 spelling, and two tables
	 * whose names differ only so would write the same object.
	 */
	if (r != NULL && encoding != PG_UTF8 && encoding != PG_SQL_ASCII &&
		!pg_is_ascii(s))
	{
		char	   *back = convert_or_null(r, PG_UTF8, encoding);

		if (back == NULL || strcmp(back, s) != 0)
			r = NULL;
	}

	/*
	 * aibackup.exclude is UTF-8, so it cannot spell such a name, except in
	 * SQL_ASCII, where it is matched by its bytes (see catalog.c).
	 */
	if (r == NULL && !noError)
	{
		if (encoding == PG_SQL_ASCII)
			ereport(ERROR,
					(errcode(ERRCODE_CHARACTER_NOT_IN_REPERTOIRE),
					 errmsg("name \"%s\" is not valid UTF-8", printable(s, encoding)),
					 errdetail("In a database with encoding SQL_ASCII, aibackup reads names as UTF-8: the manifest and the keys in S3 are UTF-8."),
					 is_database ? errhint("Rename the database.") :
					 errhint("Rename it, or leave its table out with aibackup.exclude.")));
		ereport(ERROR,
				(errcode(ERRCODE_UNTRANSLATABLE_CHARACTER),
				 errmsg("name \"%s\" has no UTF-8 equivalent in encoding \"%s\"",
						printable(s, encoding), pg_encoding_to_char(encoding)),
				 errdetail("The manifest and the keys in S3 are UTF-8, and a name must convert to UTF-8 and back unchanged."),
				 is_database ? errhint("Rename the database.") :
				 errhint("Rename it.")));
	}
	return r;
}

char *
ab_repo_to_utf8(const char *s, int encoding, bool noError)
{
	return to_utf8(s, encoding, noError, false);
}

char *
ab_repo_from_utf8(const char *s, bool noError)
{
	char	   *r = convert_or_null(s, PG_UTF8, GetDatabaseEncoding());

	if (r == NULL && !noError)
		ereport(ERROR,
				(errcode(ERRCODE_UNTRANSLATABLE_CHARACTER),
				 errmsg("name \"%s\" of the backup has no equivalent in encoding \"%s\"",
						printable(s, PG_UTF8), GetDatabaseEncodingName()),
				 errdetail("The backup was made in a database whose encoding has characters this one lacks.")));
	return r;
}

char *
ab_repo_to_server(const char *s, int encoding)
{
	return convert_or_null(s, encoding, GetDatabaseEncoding());
}

char *
ab_repo_quotable(const char *s)
{
	int			enc = GetDatabaseEncoding();
	StringInfoData buf;
	const char *p = s;
	const char *end = s + strlen(s);

	if (convert_or_null(s, enc, PG_UTF8) != NULL)
		return pstrdup(s);
	if (enc == PG_SQL_ASCII)
		enc = PG_UTF8;
	initStringInfo(&buf);
	while (p < end)
	{
		int			len = 1;

		if (IS_HIGHBIT_SET(*p))
		{
			char		one[MAX_MULTIBYTE_CHAR_LEN + 1];

			len = pg_encoding_verifymbchar(enc, p, end - p);
			if (len > 0 && len <= MAX_MULTIBYTE_CHAR_LEN)
			{
				memcpy(one, p, len);
				one[len] = '\0';
				if (convert_or_null(one, enc, PG_UTF8) == NULL)
					len = -1;
			}
			else
				len = -1;
		}
		if (len > 0)
			appendBinaryStringInfo(&buf, p, len);
		else
		{
			appendStringInfo(&buf, "\\x%02X", (unsigned char) *p);
			len = 1;
		}
		p += len;
	}
	return buf.data;
}

/*
 * The server encoding's conversion function to UTF-8, looked up once (in
 * TopMemoryContext) so that ab_repo_text_to_utf8() needs no catalog access:
 * it runs in error cleanup too, as PostgreSQL's own conversion of messages
 * to the client encoding does.
 */
static FmgrInfo *text_utf8_flinfo = NULL;
static int	text_utf8_encoding = -1;

void
ab_repo_prepare_text_to_utf8(void)
{
	int			enc = GetDatabaseEncoding();
	Oid			proc;
	FmgrInfo   *f;

	if (text_utf8_encoding == enc || enc == PG_UTF8 || enc == PG_SQL_ASCII ||
		!IsTransactionState())
		return;
	proc = FindDefaultConversionProc(enc, PG_UTF8);
	if (!OidIsValid(proc))
		return;					/* MULE_INTERNAL: every character is '?' */
	f = MemoryContextAlloc(TopMemoryContext, sizeof(FmgrInfo));
	fmgr_info_cxt(proc, f, TopMemoryContext);
	text_utf8_flinfo = f;
	text_utf8_encoding = enc;
}

char *
ab_repo_text_to_utf8(const char *s)
{
	int			enc = GetDatabaseEncoding();
	StringInfoData buf;
	const char *p = s;
	const char *end = s + strlen(s);

	if (pg_is_ascii(s))
		return pstrdup(s);
	if (enc == PG_SQL_ASCII)
		enc = PG_UTF8;
	initStringInfo(&buf);
	while (p < end)
	{
		int			len = 1;
		bool		ok = !IS_HIGHBIT_SET(*p);

		if (!ok)
		{
			len = pg_encoding_verifymbchar(enc, p, end - p);
			if (len <= 0 || len > MAX_MULTIBYTE_CHAR_LEN)
				len = 1;		/* not a character: one byte */
			else if (enc == PG_UTF8)
				ok = true;
			else if (text_utf8_flinfo != NULL && text_utf8_encoding == enc)
			{
				unsigned char one[MAX_MULTIBYTE_CHAR_LEN + 1];
				unsigned char utf8[MAX_MULTIBYTE_CHAR_LEN * MAX_CONVERSION_GROWTH + 1];

				memcpy(one, p, len);
				one[len] = '\0';
				if (DatumGetInt32(FunctionCall6(text_utf8_flinfo,
												Int32GetDatum(enc),
												Int32GetDatum(PG_UTF8),
												CStringGetDatum((char *) one),
												CStringGetDatum((char *) utf8),
												Int32GetDatum(len),
												BoolGetDatum(true))) == len)
				{
					appendStringInfoString(&buf, (char *) utf8);
					p += len;
					continue;
				}
			}
		}
		if (ok)
			appendBinaryStringInfo(&buf, p, len);
		else
			appendStringInfoChar(&buf, '?');
		p += len;
	}
	return buf.data;
}

char *
ab_repo_text_from_utf8(const char *s)
{
	return convert_lenient(s, PG_UTF8, GetDatabaseEncoding());
}

/* how manifest_convert() converts */
typedef struct MfConv
{
	int			from;
	int			to;
	const char *bad;			/* the first string that must convert but does
								 * not (printable), or NULL */
	const char *bad_field;
} MfConv;

/*
 * One string of a manifest.  A strict one that does not convert is
 * recorded in cv->bad; every string comes back, with '?' for what did not
 * convert.
 */
static char *
conv_str(MfConv *cv, const char *s, bool strict, const char *field)
{
	char	   *r;

	if (s == NULL)
		return NULL;
	r = convert_or_null(s, cv->from, cv->to);
	if (r != NULL)
		return r;
	if (strict && cv->bad == NULL)
	{
		cv->bad = printable(s, cv->from);
		cv->bad_field = field;
	}
	return convert_lenient(s, cv->from, cv->to);
}

/*
 * Table t of a manifest into rt; strict: its names and data fields must
 * convert exactly (a table backed up).
 */
static void
convert_table(MfConv *cv, const MfTable *t, MfTable *rt, bool strict)
{
	*rt = *t;					/* numbers; every string is replaced below */
#define CONV(field, strict) rt->field = conv_str(cv, t->field, (strict), "table " #field)
	CONV(schema, strict);
	CONV(name, strict);
	CONV(parent, strict);
	CONV(extension, strict);
	CONV(status, true);
	CONV(error, false);
	CONV(object_key, strict);
	CONV(format, strict);
	CONV(compression, strict);
	CONV(sha256, strict);
	CONV(ddl, false);
	CONV(owner, strict);
	CONV(etag, strict);
	CONV(definition_hash, strict);
	CONV(copied_from, strict);
	CONV(read_in, strict);
#undef CONV
	rt->columns = palloc0(sizeof(MfColumn) * Max(t->ncolumns, 1));
	for (int j = 0; j < t->ncolumns; j++)
	{
		rt->columns[j] = t->columns[j];
		rt->columns[j].name = conv_str(cv, t->columns[j].name, strict,
									   "column name");
		rt->columns[j].type = conv_str(cv, t->columns[j].type, strict,
									   "column type");
	}

	/*
	 * The definition is text for people and for a best-effort recreation: a
	 * character with no equivalent becomes '?' rather than make the backup,
	 * or its data, unusable.
	 */
	rt->ddls = palloc0(sizeof(MfDdl) * Max(t->nddl, 1));
	for (int j = 0; j < t->nddl; j++)
	{
		rt->ddls[j].kind = conv_str(cv, t->ddls[j].kind, false, "definition kind");
		rt->ddls[j].name = conv_str(cv, t->ddls[j].name, false, "definition name");
		rt->ddls[j].target = conv_str(cv, t->ddls[j].target, false, "definition target");
		rt->ddls[j].sql = conv_str(cv, t->ddls[j].sql, false, "definition");
	}
}

/*
 * A copy of m (palloc'd, in CurrentMemoryContext) with every string
 * converted.  The backup's own fields and the entries of tables backed up
 * must convert exactly; error messages and the entries of failed tables
 * are for people to read, and convert with '?' for what has no equivalent.
 */
static Manifest *
manifest_convert(const Manifest *m, MfConv *cv)
{
	Manifest   *r = palloc0(sizeof(Manifest));

	*r = *m;					/* numbers and flags; every string and array
								 * is replaced below */
#define CONV(field, strict) r->field = conv_str(cv, m->field, (strict), #field)
	CONV(backup_id, true);
	CONV(database, true);
	CONV(status, true);
	CONV(started_at, true);
	CONV(finished_at, true);
	CONV(server_version, true);
	CONV(server_encoding, true);
	CONV(system_identifier, true);
	CONV(extension_version, true);
	CONV(snapshot_lsn, true);
	CONV(reuse_lsn, true);
#undef CONV
	r->ntables = m->ntables;
	r->tables = palloc0(sizeof(MfTable) * Max(m->ntables, 1));
	for (int i = 0; i < m->ntables; i++)
		convert_table(cv, &m->tables[i], &r->tables[i],
					  m->tables[i].status != NULL &&
					  strcmp(m->tables[i].status, "ok") == 0);

	/*
	 * A partitioned table's entry is a definition only: one whose names do
	 * not convert exactly is left out (a '?' could name another table).
	 */
	r->npartitioned = 0;
	r->partitioned = palloc0(sizeof(MfTable) * Max(m->npartitioned, 1));
	for (int i = 0; i < m->npartitioned; i++)
	{
		MfConv		probe = *cv;

		probe.bad = NULL;
		convert_table(&probe, &m->partitioned[i], &r->partitioned[r->npartitioned],
					  true);
		if (probe.bad == NULL)
			r->npartitioned++;
	}
	r->lo_owners = palloc0(sizeof(MfRole) * Max(m->nlo_owners, 1));
	for (int i = 0; i < m->nlo_owners; i++)
	{
		r->lo_owners[i].oid = m->lo_owners[i].oid;
		/* not spelled here: nobody's (a '?' could name another role) */
		r->lo_owners[i].name = m->lo_owners[i].name == NULL ? NULL :
			convert_or_null(m->lo_owners[i].name, cv->from, cv->to);
	}
	r->nsequences = m->nsequences;
	r->sequences = palloc0(sizeof(MfSequence) * Max(m->nsequences, 1));
	for (int i = 0; i < m->nsequences; i++)
	{
		r->sequences[i] = m->sequences[i];
		r->sequences[i].schema = conv_str(cv, m->sequences[i].schema, true,
										  "sequence schema");
		r->sequences[i].extension = conv_str(cv, m->sequences[i].extension,
											 true, "sequence extension");
		r->sequences[i].name = conv_str(cv, m->sequences[i].name, true,
										"sequence name");
	}
	return r;
}

static void
append_encoded(StringInfo buf, const char *s)
{
	for (const unsigned char *p = (const unsigned char *) s; *p; p++)
	{
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
			(*p >= '0' && *p <= '9') || *p == '_' || *p == '-')
			appendStringInfoChar(buf, (char) *p);
		else
			appendStringInfo(buf, "%%%02X", *p);
	}
}

char *
ab_repo_db_prefix(const char *dbname)
{
	StringInfoData db;

	initStringInfo(&db);
	append_encoded(&db, to_utf8(dbname, GetDatabaseEncoding(), false, true));
	return psprintf("%s/", ab_s3_key(ab_s3_prefix ? ab_s3_prefix : "", db.data,
									 NULL));
}

void
ab_repo_check_folder_unique(void)
{
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tup;
	char	   *ours = to_utf8(get_database_name(MyDatabaseId),
							   GetDatabaseEncoding(), false, true);
	char	   *other = NULL;

	rel = table_open(DatabaseRelationId, AccessShareLock);
	scan = table_beginscan_catalog(rel, 0, NULL);
	while (other == NULL &&
		   (tup = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		Form_pg_database db = (Form_pg_database) GETSTRUCT(tup);
		char	   *spelled;

		if (db->oid == MyDatabaseId)
			continue;
		spelled = ab_repo_to_utf8(NameStr(db->datname), db->encoding, true);
		if (spelled != NULL && strcmp(spelled, ours) == 0)
			other = pstrdup(printable(NameStr(db->datname), db->encoding));
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	if (other != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("database \"%s\" and database \"%s\" would share one backup folder",
						printable(get_database_name(MyDatabaseId), GetDatabaseEncoding()),
						other),
				 errdetail("Their names, in their own encodings, are both \"%s\" in UTF-8, which is how folders in S3 are named.",
						   printable(ours, PG_UTF8)),
				 errhint("Rename one of them.")));
}

bool
ab_repo_key_in_database(const char *key, const char *dbname)
{
	const char *prefix = ab_repo_db_prefix(dbname);
	size_t		n = strlen(prefix);
	const char *seg;

	if (strncmp(key, prefix, n) != 0 || key[n] == '\0')
		return false;
	for (seg = key + n;; seg++)
	{
		const char *end = strchr(seg, '/');
		size_t		len = end ? (size_t) (end - seg) : strlen(seg);

		if (len == 0 || (len == 1 && seg[0] == '.') ||
			(len == 2 && seg[0] == '.' && seg[1] == '.'))
			return false;
		if (end == NULL)
			return true;
		seg = end;
	}
}

char *
ab_repo_backup_folder(const char *dbname, const char *backup_id)
{
	return psprintf("%s%s/", ab_repo_db_prefix(dbname), backup_id);
}

void
ab_repo_check_table_object(const Manifest *m, const MfTable *t)
{
	char	   *folder = ab_repo_backup_folder(m->database, m->backup_id);
	size_t		n = strlen(folder);

	if (!ab_repo_key_in_database(t->object_key, m->database) ||
		strncmp(t->object_key, folder, n) != 0 ||
		strchr(t->object_key + n, '/') != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("backup \"%s\" names object \"%s\" for table \"%s.%s\", which is outside the backup's folder",
						m->backup_id, t->object_key, t->schema, t->name),
				 errdetail("A backup's objects are under \"%s\".", folder),
				 errhint("The manifest was edited or moved; restore from another backup.")));
}

/*
 * Is t's parent one of parents?  Its name is as quote_ident() wrote it in
 * the source (a keyword of this version may not have been one there): it
 * is compared split, unquoted.
 */
static bool
parent_in(const MfTable *t, List *parents)
{
	List	   *parts;
	ListCell   *lc;

	if (t->parent == NULL ||
		!SplitIdentifierString(pstrdup(t->parent), '.', &parts) ||
		list_length(parts) != 2)
		return false;
	foreach(lc, parents)
	{
		const MfTable *p = lfirst(lc);

		if (strcmp(p->schema, linitial(parts)) == 0 &&
			strcmp(p->name, lsecond(parts)) == 0)
			return true;
	}
	return false;
}

bool
ab_repo_is_partitioned(const Manifest *m, const MfTable *t)
{
	return m->npartitioned > 0 && t >= m->partitioned &&
		t < m->partitioned + m->npartitioned;
}

void
ab_repo_partition_tree(const Manifest *m, const MfTable *p, List **parents,
					   List **leaves)
{
	*parents = list_make1((MfTable *) p);
	*leaves = NIL;
	/* whatever the manifest's order: each is added after its parent */
	for (bool grew = true; grew;)
	{
		grew = false;
		for (int i = 0; i < m->npartitioned; i++)
		{
			const MfTable *t = &m->partitioned[i];

			if (!list_member_ptr(*parents, t) && parent_in(t, *parents))
			{
				*parents = lappend(*parents, (MfTable *) t);
				grew = true;
			}
		}
	}
	for (int i = 0; i < m->ntables; i++)
	{
		if (parent_in(&m->tables[i], *parents))
			*leaves = lappend(*leaves, &m->tables[i]);
	}
}

char *
ab_repo_manifest_key(const char *dbname, const char *backup_id)
{
	return psprintf("%smanifest.json", ab_repo_backup_folder(dbname, backup_id));
}

char *
ab_repo_script_key(const char *dbname, const char *backup_id,
				   const char *schema)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfoString(&buf, ab_repo_backup_folder(dbname, backup_id));
	if (schema == NULL)
		appendStringInfoString(&buf, "restore.sql");
	else
	{
		appendStringInfoString(&buf, "restore/");
		append_encoded(&buf, ab_repo_to_utf8(schema, GetDatabaseEncoding(), false));
		appendStringInfoString(&buf, ".sql");
	}
	return buf.data;
}

char *
ab_repo_table_key(const char *dbname, const char *backup_id,
				  const char *schema, const char *table)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfoString(&buf, ab_repo_backup_folder(dbname, backup_id));
	append_encoded(&buf, ab_repo_to_utf8(schema, GetDatabaseEncoding(), false));
	appendStringInfoChar(&buf, '.');
	append_encoded(&buf, ab_repo_to_utf8(table, GetDatabaseEncoding(), false));
	appendStringInfoString(&buf, ".csv.gz");
	return buf.data;
}

void
ab_repo_check_backup_id(const char *s)
{
	if (s != NULL && !ab_repo_valid_backup_id(s))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("\"%s\" is not a backup id", s),
				 errhint("Backup ids look like 20261124T040000Z; aibackup_list_backups() lists them.")));
}

bool
ab_repo_valid_backup_id(const char *s)
{
	if (s == NULL || strlen(s) != AB_BACKUP_ID_LEN)
		return false;
	for (int i = 0; i < AB_BACKUP_ID_LEN; i++)
	{
		char		ch = s[i];

		if (i == 8 ? ch != 'T' : i == 15 ? ch != 'Z' : !(ch >= '0' && ch <= '9'))
			return false;
	}
	return true;
}

/*
 * Strings gathered inside a core callback.  The callbacks run inside the
 * pure-C core's frames, so they must not palloc (an out-of-memory ERROR
 * would longjmp through them and leak their buffers): they append to a
 * malloc'd buffer, turned into a List once the core has returned.
 */
typedef struct Gathered
{
	AbBuf		buf;			/* NUL-terminated strings, back to back */
	size_t		prefix_len;		/* for collect_id */
} Gathered;

static int
gather(Gathered *g, const char *s)
{
	return abuf_append(&g->buf, s, strlen(s) + 1) ? 0 : 1;
}

/* the gathered strings as a List (palloc'd); frees the buffer */
static List *
gathered_list(Gathered *g)
{
	List	   *l = NIL;
	bool		oom = g->buf.oom;

	for (size_t off = 0; !oom && off < g->buf.len; off += strlen(g->buf.data + off) + 1)
		l = lappend(l, pstrdup(g->buf.data + off));
	abuf_free(&g->buf);
	if (oom)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	return l;
}

static void
gathered_init(Gathered *g)
{
	abuf_init(&g->buf);
	g->prefix_len = 0;
}

/* S3 failed: free what was gathered, then report */
static void
gathered_fail(Gathered *g, const S3Error *err)
{
	abuf_free(&g->buf);
	ab_s3_report(err);
}

static int
collect_id(void *arg, const S3ListEntry *e)
{
	Gathered   *g = arg;
	char		id[AB_BACKUP_ID_LEN + 1];

	if (!e->is_prefix || strlen(e->key) != g->prefix_len + AB_BACKUP_ID_LEN + 1)
		return 0;
	memcpy(id, e->key + g->prefix_len, AB_BACKUP_ID_LEN);
	id[AB_BACKUP_ID_LEN] = '\0';
	return ab_repo_valid_backup_id(id) ? gather(g, id) : 0;
}

static int
cmp_desc(const ListCell *a, const ListCell *b)
{
	return -strcmp((const char *) lfirst(a), (const char *) lfirst(b));
}

List *
ab_repo_backup_ids(S3Client *c, const char *dbname)
{
	Gathered	g;
	S3Error		err;
	char	   *prefix = ab_repo_db_prefix(dbname);
	List	   *ids;

	gathered_init(&g);
	g.prefix_len = strlen(prefix);
	if (!s3_list_objects(c, prefix, "/", collect_id, &g, &err))
		gathered_fail(&g, &err);
	ids = gathered_list(&g);
	list_sort(ids, cmp_desc);
	return ids;
}

/* collects a manifest into an AbBuf, up to MANIFEST_MAX_BYTES */
typedef struct MemSink
{
	AbBuf		buf;
	bool		too_big;
} MemSink;

static int
mem_sink(void *arg, const void *data, size_t len)
{
	MemSink    *m = arg;

	if (m->buf.len + len > MANIFEST_MAX_BYTES)
	{
		m->too_big = true;
		return 1;
	}
	return abuf_append(&m->buf, data, len) ? 0 : 1;
}

char *
ab_repo_mstrdup(const char *s)
{
	char	   *r;

	if (s == NULL)
		return NULL;
	if ((r = strdup(s)) == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	return r;
}

char *
ab_repo_get_small(S3Client *c, const char *key, size_t *len)
{
	MemSink		ms;
	S3Error		err;
	char	   *text;

	abuf_init(&ms.buf);
	ms.too_big = false;
	if (!s3_get_object(c, key, mem_sink, &ms, NULL, &err))
	{
		abuf_free(&ms.buf);
		if (err.kind == S3ERR_NOT_FOUND && strcmp(err.code, "NoSuchKey") == 0)
			return NULL;
		if (ms.too_big)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("object \"%s\" is larger than %d MB", key,
							MANIFEST_MAX_BYTES / (1024 * 1024))));
		ab_s3_report(&err);
	}
	*len = ms.buf.len;
	text = palloc(ms.buf.len + 1);

	if (ms.buf.len > 0)
		memcpy(text, ms.buf.data, ms.buf.len);
	text[		ms.buf.len] = '\0';

	abuf_free(&ms.buf);
	return text;
}

Manifest *
ab_repo_read_manifest_state(S3Client *c, const char *dbname,
							const char *backup_id, AbManifestState *state)
{
	char	   *key = ab_repo_manifest_key(dbname, backup_id);
	char	   *dbname_utf8 = to_utf8(dbname, GetDatabaseEncoding(), false, true);
	MemSink		ms;
	S3Error		err;
	Manifest   *m;
	Manifest   *volatile conv = NULL;
	MfConv		cv;
	char		errbuf[256];

	*state = AB_MANIFEST_UNREADABLE;
	abuf_init(&ms.buf);
	ms.too_big = false;
	if (!s3_get_object(c, key, mem_sink, &ms, NULL, &err))
	{
		abuf_free(&ms.buf);

		/*
		 * Only S3's own word that the key does not exist makes a folder
		 * debris (which retention deletes); a bare 404 from a proxy or a
		 * briefly inconsistent store leaves it unreadable, and kept.
		 */
		if (err.kind == S3ERR_NOT_FOUND && strcmp(err.code, "NoSuchKey") == 0)
		{
			*state = AB_MANIFEST_MISSING;
			return NULL;
		}
		if (err.kind == S3ERR_NOT_FOUND)
		{
			ereport(WARNING,
					(errmsg("ignoring backup folder \"%s\": its manifest could not be read", key),
					 errdetail("S3 answered 404 without saying NoSuchKey.")));
			return NULL;
		}
		if (ms.too_big)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("manifest \"%s\" is larger than %d MB", key,
							MANIFEST_MAX_BYTES / (1024 * 1024))));
		ab_s3_report(&err);
	}
	m = mf_parse(ms.buf.data ? ms.buf.data : "", ms.buf.len, errbuf, sizeof(errbuf));
	abuf_free(&ms.buf);
	if (m == NULL)
	{
		/* one damaged manifest must not hide every other backup */
		ereport(WARNING,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("ignoring manifest \"%s\": it is not valid", key),
				 errdetail("%s", errbuf)));
		return NULL;
	}

	/* compared in UTF-8, as written */
	if (m->backup_id == NULL || strcmp(m->backup_id, backup_id) != 0 ||
		m->database == NULL || strcmp(m->database, dbname_utf8) != 0)
	{
		char	   *other_id = pstrdup(m->backup_id ? m->backup_id : "");
		char	   *other_db = m->database ? printable(m->database, PG_UTF8) : "";

		/* copied or moved by hand: not trustworthy as this backup */
		mf_free(m);
		ereport(WARNING,
				(errmsg("ignoring manifest \"%s\": it describes backup \"%s\" of database \"%s\"",
						key, printable(other_id, PG_UTF8), other_db)));
		return NULL;
	}

	/* the rest of aibackup works in the server encoding */
	cv.from = PG_UTF8;
	cv.to = GetDatabaseEncoding();
	cv.bad = NULL;
	cv.bad_field = NULL;
	PG_TRY();
	{
		conv = manifest_convert(m, &cv);
	}
	PG_FINALLY();
	{
		mf_free(m);
	}
	PG_END_TRY();
	if (cv.bad != NULL)
	{
		ereport(WARNING,
				(errcode(ERRCODE_UNTRANSLATABLE_CHARACTER),
				 errmsg("ignoring manifest \"%s\": its %s \"%s\" has no equivalent in encoding \"%s\"",
						key, cv.bad_field, cv.bad, GetDatabaseEncodingName()),
				 errdetail("The backup was made in a database with encoding \"%s\".",
						   conv->server_encoding ? conv->server_encoding : "UTF8"),
				 errhint("Restore it into a database whose encoding can represent its names.")));
		return NULL;
	}
	*state = AB_MANIFEST_OK;
	return conv;
}

void
ab_repo_write_manifest(S3Client *c, const Manifest *m)
{
	MfConv		cv;
	Manifest   *utf8;
	char	   *json;
	char	   *key = ab_repo_manifest_key(m->database, m->backup_id);
	S3Error		err;
	bool		ok;

	cv.from = GetDatabaseEncoding();
	cv.to = PG_UTF8;
	cv.bad = NULL;
	cv.bad_field = NULL;
	utf8 = manifest_convert(m, &cv);
	if (cv.bad != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNTRANSLATABLE_CHARACTER),
				 errmsg("cannot write the manifest of backup \"%s\": its %s \"%s\" has no UTF-8 equivalent",
						m->backup_id, cv.bad_field, cv.bad)));
	json = mf_to_json(utf8);
	if (json == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory")));
	ok = s3_put_object(c, key, json, strlen(json), "application/json", &err);
	free(json);
	if (!ok)
		ab_s3_report(&err);
}

static int
collect_key(void *arg, const S3ListEntry *e)
{
	return e->is_prefix ? 0 : gather((Gathered *) arg, e->key);
}

/* two strings per object: its key and its size */
static int
collect_key_size(void *arg, const S3ListEntry *e)
{
	char		size[32];

	if (e->is_prefix)
		return 0;
	snprintf(size, sizeof(size), "%lld", (long long) e->size);
	return gather((Gathered *) arg, e->key) || gather((Gathered *) arg, size);
}

static int
cmp_table_key(const void *a, const void *b)
{
	return strcmp((*(const MfTable *const *) a)->object_key,
				  (*(const MfTable *const *) b)->object_key);
}

void
ab_repo_check_backup_objects(S3Client *c, const Manifest *m)
{
	char	   *prefix = ab_repo_backup_folder(m->database, m->backup_id);
	const MfTable **sorted = palloc(sizeof(MfTable *) * (m->ntables + 1));
	int			nok = 0;
	int			seen = 0;
	Gathered	g;
	S3Error		err;
	List	   *all;
	const char *bad = NULL;

	for (int i = 0; i < m->ntables; i++)
	{
		if (m->tables[i].object_key && m->tables[i].object_key[0])
			sorted[nok++] = &m->tables[i];
	}
	qsort(sorted, nok, sizeof(MfTable *), cmp_table_key);

	gathered_init(&g);
	if (!s3_list_objects(c, prefix, NULL, collect_key_size, &g, &err))
		gathered_fail(&g, &err);
	all = gathered_list(&g);
	for (int i = 0; bad == NULL && i + 1 < list_length(all); i += 2)
	{
		MfTable		probe;
		const MfTable *pp = &probe;
		const MfTable **hit;

		const char *key = list_nth(all, i);
		size_t		n = strlen(key);

		/*
		 * the backup's restore scripts (ab_restore_scripts_put), or those of
		 * them written before a failure that left them out
		 */
		if (strcmp(key + strlen(prefix), "restore.sql") == 0 ||
			strncmp(key + strlen(prefix), "restore/", 8) == 0)
			continue;
		/* a table's definition, <schema>.<table>.sql, goes with its data */
		if (n > 4 && strcmp(key + n - 4, ".sql") == 0)
		{
			probe.object_key = psprintf("%.*s.csv.gz", (int) (n - 4), key);
			hit = bsearch(&pp, sorted, nok, sizeof(MfTable *), cmp_table_key);
			if (hit == NULL)
				bad = key;
			continue;
		}
		probe.object_key = (char *) key;
		hit = bsearch(&pp, sorted, nok, sizeof(MfTable *), cmp_table_key);
		if (hit == NULL)
			bad = probe.object_key; /* not one of ours */
		else if (strcmp((*hit)->status, "ok") == 0)
		{
			seen++;
			if ((*hit)->compressed_bytes != strtoi64(list_nth(all, i + 1), NULL, 10))
				bad = probe.object_key; /* written over */
		}
	}
	for (int i = 0; i < nok; i++)
	{
		if (strcmp(sorted[i]->status, "ok") == 0)
			seen--;
	}
	if (bad == NULL && seen != 0)
		bad = "";				/* one of ours is gone */
	if (bad != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("backup \"%s\" of database \"%s\" was written to by another process",
						m->backup_id, m->database),
				 errdetail("%s",
						   bad[0] ? psprintf("Object \"%s\" is not the one this backup wrote.", bad) :
						   "An object this backup wrote is missing."),
				 errhint("Two clusters may be writing to the same aibackup.s3_prefix; give each its own.")));
}

void
ab_repo_delete_backup(S3Client *c, const char *dbname, const char *backup_id)
{
	char	   *manifest = ab_repo_manifest_key(dbname, backup_id);
	char	   *prefix = ab_repo_backup_folder(dbname, backup_id);
	Gathered	g;
	List	   *objects;
	S3Error		err;
	const char **keys;
	int			n = 0;
	ListCell   *lc;

	if (!s3_delete_objects(c, (const char *const *) &manifest, 1, &err))
		ab_s3_report(&err);
	gathered_init(&g);
	if (!s3_list_objects(c, prefix, NULL, collect_key, &g, &err))
		gathered_fail(&g, &err);
	objects = gathered_list(&g);
	if (objects == NIL)
		return;
	keys = palloc(sizeof(char *) * list_length(objects));
	foreach(lc, objects)
		keys[n++] = lfirst(lc);
	if (!s3_delete_objects(c, keys, n, &err))
		ab_s3_report(&err);
}

/* three strings per upload: key, upload id, initiated */
static int
collect_upload(void *arg, const S3UploadEntry *e)
{
	Gathered   *g = arg;

	return gather(g, e->key) || gather(g, e->upload_id) || gather(g, e->initiated);
}

/* <prefix>/<db>/<backup_id>/<name>.csv.gz: one of ours */
static bool
is_our_table_key(const char *key, size_t prefix_len)
{
	const char *db = key + prefix_len;
	const char *slash = strchr(db, '/');
	char		id[AB_BACKUP_ID_LEN + 1];
	size_t		n = strlen(key);

	if (slash == NULL || slash == db || strlen(slash + 1) < AB_BACKUP_ID_LEN + 2)
		return false;
	memcpy(id, slash + 1, AB_BACKUP_ID_LEN);
	id[AB_BACKUP_ID_LEN] = '\0';
	return ab_repo_valid_backup_id(id) && slash[1 + AB_BACKUP_ID_LEN] == '/' &&
		strchr(slash + 2 + AB_BACKUP_ID_LEN, '/') == NULL &&
		n > 7 && strcmp(key + n - 7, ".csv.gz") == 0;
}

/* a UTC calendar time as a timestamp; 0 when it is not a valid one */
static TimestampTz
utc_timestamp(struct pg_tm *tm)
{
	TimestampTz ts;

	if (tm2timestamp(tm, 0, NULL, &ts) != 0)
		return 0;
	return ts;
}

/* S3's Initiated (ISO 8601) as a timestamp; 0 when it does not parse */
static TimestampTz
parse_initiated(const char *s)
{
	struct pg_tm tm;
	double		sec = 0;

	memset(&tm, 0, sizeof(tm));
	if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%lf", &tm.tm_year, &tm.tm_mon,
			   &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &sec) != 6)
		return 0;
	tm.tm_sec = (int) sec;
	return utc_timestamp(&tm);
}

int
ab_repo_id_parity(void)
{
	if (RecoveryInProgress())
		return 1;
	return ab_backup_from_standby ? 0 : -1;
}

int
ab_repo_abort_stale_uploads(S3Client *c, TimestampTz before, List *prefixes,
							int id_parity)
{
	Gathered	g;
	List	   *all;
	S3Error		err;
	int			n = 0;
	char	   *prefix = ab_s3_prefix && ab_s3_prefix[0] ?
	psprintf("%s/", ab_s3_key(ab_s3_prefix, NULL)) : "";

	gathered_init(&g);
	if (!s3_list_multipart_uploads(c, prefix, collect_upload, &g, &err))
		gathered_fail(&g, &err);
	all = gathered_list(&g);
	for (int i = 0; i + 2 < list_length(all); i += 3)
	{
		const char *key = list_nth(all, i);
		const char *upload_id = list_nth(all, i + 1);
		TimestampTz started = parse_initiated(list_nth(all, i + 2));
		bool		ours = false;
		ListCell   *ls;

		if (!is_our_table_key(key, strlen(prefix)) || started == 0 ||
			started >= before)
			continue;
		/* the id's last digit of seconds: "<db>/YYYYMMDDTHHMMSSZ/" */
		if (id_parity >= 0 &&
			(strchr(key + strlen(prefix), '/')[AB_BACKUP_ID_LEN - 1] - '0') % 2 !=
			id_parity)
			continue;
		foreach(ls, prefixes)
		{
			if (strncmp(key, lfirst(ls), strlen(lfirst(ls))) == 0)
				ours = true;
		}
		if (!ours)
			continue;
		if (!s3_abort_upload_id(c, key, upload_id, &err))
			ab_s3_report(&err);
		n++;
	}
	return n;
}

/* "2026-11-24T03:10:00.123456Z" */
char *
ab_repo_iso_utc(TimestampTz ts)
{
	pg_time_t	t = timestamptz_to_time_t(ts);
	struct pg_tm *tm = pg_gmtime(&t);
	char		buf[64];
	int			usec = (int) (ts % USECS_PER_SEC);

	if (usec < 0)
		usec += USECS_PER_SEC;
	snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ",
			 tm->tm_year + 1900, tm->tm_mon + 1, tm->tm_mday,
			 tm->tm_hour, tm->tm_min, tm->tm_sec, usec);
	return pstrdup(buf);
}

TimestampTz
ab_repo_backup_time(const char *id)
{
	struct pg_tm tm;

	memset(&tm, 0, sizeof(tm));
	if (!ab_repo_valid_backup_id(id) ||
		sscanf(id, "%4d%2d%2dT%2d%2d%2dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
			   &tm.tm_hour, &tm.tm_min, &tm.tm_sec) != 6)
		return 0;
	return utc_timestamp(&tm);
}
