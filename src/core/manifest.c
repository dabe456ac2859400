/*
 * manifest.c
 *		The backup manifest: building it, writing it as JSON and reading it
 *		back (on the tree from json.c).  See manifest.h.
 *
 * The writer always emits every field, in a fixed order, with null for
 * absent strings, so the same Manifest always gives the same bytes.  The
 * reader checks the "format" first (a newer format may have changed
 * anything else), then requires format, backup_id, database, status and
 * tables, plus schema and name in each table and sequence and name and type
 * in each column.  Other fields may be missing (they read as NULL, 0 or
 * false) but must have the right type when present; fields it does not know
 * are ignored.
 *
 * The tables, columns and sequences arrays are only ever grown by
 * mf_add_*(), which size them to powers of two: their capacity follows from
 * their length, so the structs in manifest.h need no capacity fields.  An
 * mf_add_*() call may move the array, so a pointer it returned earlier for
 * the same array is no longer valid after the next call.
 */
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "json.h"
#include "manifest.h"

/* ----------------------------------------------------------------
 * Building and freeing
 * ----------------------------------------------------------------
 */

/*
 * Make room for element n (the current count) in *arr.  Capacity is 4 for
 * up to 4 elements and the next power of two above that, so the array has
 * to grow only when n is 0 or a power of two of at least 4.
 */
static void *
mf_grow(void **arr, int n, size_t elsize)
{
	size_t		ncap;
	char	   *na;

	if (n < 0 || n >= INT_MAX / 2)
		return NULL;
	if (n == 0)
		ncap = 4;
	else if (n >= 4 && (n & (n - 1)) == 0)
		ncap = (size_t) n * 2;
	else
		ncap = 0;				/* there is room */

	if (ncap > 0)
	{
		if (ncap > ((size_t) -1) / elsize)
			return NULL;
		na = realloc(*arr, ncap * elsize);
		if (na == NULL)
			return NULL;
		*arr = na;
	}
	na = (char *) *arr + (size_t) n * elsize;
	memset(na, 0, elsize);
	return na;
}

Manifest *
mf_new(void)
{
	Manifest   *m = calloc(1, sizeof(Manifest));

	if (m != NULL)
		m->format = MANIFEST_FORMAT;
	return m;
}

MfTable *
mf_add_table(Manifest *m)
{
	MfTable    *t;

	if (m == NULL)
		return NULL;
	t = mf_grow((void **) &m->tables, m->ntables, sizeof(MfTable));
	if (t != NULL)
		m->ntables++;
	return t;
}

MfTable *
mf_add_partitioned(Manifest *m)
{
	MfTable    *t;

	if (m == NULL)
		return NULL;
	t = mf_grow((void **) &m->partitioned, m->npartitioned, sizeof(MfTable));
	if (t != NULL)
		m->npartitioned++;
	return t;
}

void
mf_clear_partitioned(Manifest *m)
{
	for (int i = 0; i < m->npartitioned; i++)
		mf_free_table(&m->partitioned[i]);
	free(m->partitioned);
	m->partitioned = NULL;
	m->npartitioned = 0;
}

MfColumn *
mf_add_column(MfTable *t)
{
	MfColumn   *c;

	if (t == NULL)
		return NULL;
	c = mf_grow((void **) &t->columns, t->ncolumns, sizeof(MfColumn));
	if (c != NULL)
		t->ncolumns++;
	return c;
}

MfDdl *
mf_add_ddl(MfTable *t)
{
	MfDdl	   *d;

	if (t == NULL)
		return NULL;
	d = mf_grow((void **) &t->ddls, t->nddl, sizeof(MfDdl));
	if (d != NULL)
		t->nddl++;
	return d;
}

void
mf_clear_definition(MfTable *t)
{
	for (int i = 0; i < t->nddl; i++)
	{
		free(t->ddls[i].kind);
		free(t->ddls[i].name);
		free(t->ddls[i].target);
		free(t->ddls[i].sql);
	}
	free(t->ddls);
	t->ddls = NULL;
	t->nddl = 0;
	free(t->ddl);
	t->ddl = NULL;
}

MfSequence *
mf_add_sequence(Manifest *m)
{
	MfSequence *s;

	if (m == NULL)
		return NULL;
	s = mf_grow((void **) &m->sequences, m->nsequences, sizeof(MfSequence));
	if (s != NULL)
		m->nsequences++;
	return s;
}

MfRole *
mf_add_lo_owner(Manifest *m)
{
	MfRole	   *o;

	if (m == NULL)
		return NULL;
	o = mf_grow((void **) &m->lo_owners, m->nlo_owners, sizeof(MfRole));
	if (o != NULL)
		m->nlo_owners++;
	return o;
}

void
mf_free_table(MfTable *t)
{
	int			i;

	free(t->schema);
	free(t->name);
	free(t->parent);
	free(t->extension);
	free(t->owner);
	free(t->status);
	free(t->error);
	free(t->object_key);
	free(t->format);
	free(t->compression);
	free(t->sha256);
	free(t->definition_hash);
	free(t->etag);
	free(t->copied_from);
	free(t->read_in);
	for (i = 0; i < t->ncolumns; i++)
	{
		free(t->columns[i].name);
		free(t->columns[i].type);
	}
	free(t->columns);
	mf_clear_definition(t);
}

void
mf_free(Manifest *m)
{
	int			i;

	if (m == NULL)
		return;
	free(m->backup_id);
	free(m->database);
	free(m->status);
	free(m->started_at);
	free(m->finished_at);
	free(m->server_version);
	free(m->server_encoding);
	free(m->system_identifier);
	free(m->extension_version);
	free(m->snapshot_lsn);
	free(m->reuse_lsn);
	for (i = 0; i < m->ntables; i++)
		mf_free_table(&m->tables[i]);
	free(m->tables);
	mf_clear_partitioned(m);
	for (i = 0; i < m->nsequences; i++)
	{
		free(m->sequences[i].schema);
		free(m->sequences[i].name);
		free(m->sequences[i].extension);
	}
	free(m->sequences);
	for (i = 0; i < m->nlo_owners; i++)
		free(m->lo_owners[i].name);
	free(m->lo_owners);
	free(m);
}

bool
mf_system_schema(const char *schema)
{
	return schema != NULL && strcmp(schema, "pg_catalog") == 0;
}

static const MfTable *
find_in(const MfTable *arr, int n, const char *schema, const char *name)
{
	int			i;

	if (schema == NULL || name == NULL)
		return NULL;
	for (i = 0; i < n; i++)
	{
		const MfTable *t = &arr[i];

		if (t->schema != NULL && t->name != NULL &&
			strcmp(t->schema, schema) == 0 && strcmp(t->name, name) == 0)
			return t;
	}
	return NULL;
}

const MfTable *
mf_find_table(const Manifest *m, const char *schema, const char *name)
{
	return m ? find_in(m->tables, m->ntables, schema, name) : NULL;
}

const MfTable *
mf_find_partitioned(const Manifest *m, const char *schema, const char *name)
{
	return m ? find_in(m->partitioned, m->npartitioned, schema, name) : NULL;
}

/* ----------------------------------------------------------------
 * Writing
 * ----------------------------------------------------------------
 */

/* a table; data: its object's fields (not for a partitioned table) */
static void
write_table(JsonOut *arr, const MfTable *t, bool data)
{
	JsonOut		o;
	JsonOut		cols;
	int			i;

	json_out_elem(arr);
	json_out_open(&o, arr->b, arr->indent, '{');
	json_out_str(&o, "schema", t->schema);
	json_out_str(&o, "name", t->name);
	json_out_int(&o, "relid", t->relid);
	json_out_str(&o, "owner", t->owner);
	json_out_str(&o, "parent", t->parent);
	if (t->extension)
		json_out_str(&o, "extension", t->extension);
	if (!data)
		json_out_int(&o, "partitions", t->partitions);
	if (data)
	{
		json_out_str(&o, "status", t->status);
		json_out_str(&o, "error", t->error);
		json_out_str(&o, "object_key", t->object_key);
		json_out_str(&o, "format", t->format);
		json_out_str(&o, "compression", t->compression);
		json_out_int(&o, "rows", t->rows);
		json_out_int(&o, "raw_bytes", t->raw_bytes);
		json_out_int(&o, "compressed_bytes", t->compressed_bytes);
		json_out_str(&o, "sha256", t->sha256);
		if (t->etag)
			json_out_str(&o, "etag", t->etag);
		if (t->relfilenode)
			json_out_int(&o, "relfilenode", t->relfilenode);
		if (t->toast_relfilenode)
			json_out_int(&o, "toast_relfilenode", t->toast_relfilenode);
		if (t->definition_hash)
			json_out_str(&o, "definition_hash", t->definition_hash);
		if (t->copied_from)
			json_out_str(&o, "copied_from", t->copied_from);
		if (t->read_in)
			json_out_str(&o, "read_in", t->read_in);
	}

	json_out_key(&o, "columns");
	json_out_open(&cols, o.b, o.indent, '[');
	for (i = 0; i < t->ncolumns; i++)
	{
		const MfColumn *c = &t->columns[i];
		JsonOut		col;

		json_out_elem(&cols);
		json_out_open(&col, cols.b, cols.indent, '{');
		json_out_str(&col, "name", c->name);
		json_out_str(&col, "type", c->type);
		json_out_int(&col, "position", c->position);
		json_out_bool(&col, "not_null", c->not_null);
		json_out_close(&col, '}');
	}
	json_out_close(&cols, ']');

	json_out_str(&o, "ddl", t->ddl);

	json_out_key(&o, "definition");
	json_out_open(&cols, o.b, o.indent, '[');
	for (i = 0; i < t->nddl; i++)
	{
		const MfDdl *d = &t->ddls[i];
		JsonOut		item;

		json_out_elem(&cols);
		json_out_open(&item, cols.b, cols.indent, '{');
		json_out_str(&item, "kind", d->kind);
		json_out_str(&item, "name", d->name);
		json_out_str(&item, "target", d->target);
		json_out_str(&item, "sql", d->sql);
		json_out_close(&item, '}');
	}
	json_out_close(&cols, ']');
	json_out_close(&o, '}');
}

char *
mf_to_json(const Manifest *m)
{
	AbBuf		b;
	JsonOut		top;
	JsonOut		arr;
	int			i;

	if (m == NULL)
		return NULL;
	abuf_init(&b);
	json_out_open(&top, &b, 0, '{');
	json_out_int(&top, "format", m->format);
	json_out_str(&top, "backup_id", m->backup_id);
	json_out_str(&top, "database", m->database);
	json_out_str(&top, "status", m->status);
	json_out_str(&top, "started_at", m->started_at);
	json_out_str(&top, "finished_at", m->finished_at);
	json_out_str(&top, "server_version", m->server_version);
	json_out_str(&top, "server_encoding", m->server_encoding);
	json_out_str(&top, "system_identifier", m->system_identifier);
	json_out_str(&top, "extension_version", m->extension_version);
	json_out_str(&top, "snapshot_lsn", m->snapshot_lsn);
	if (m->reuse_lsn)
	{
		json_out_str(&top, "reuse_lsn", m->reuse_lsn);
		json_out_int(&top, "snapshot_xmin", m->snapshot_xmin);
		json_out_int(&top, "timeline", m->timeline);
		json_out_int(&top, "database_oid", m->database_oid);
	}
	if (m->restore_scripts)
		json_out_bool(&top, "restore_scripts", true);
	if (m->from_standby)
		json_out_bool(&top, "from_standby", true);

	json_out_key(&top, "tables");
	json_out_open(&arr, &b, top.indent, '[');
	for (i = 0; i < m->ntables; i++)
		write_table(&arr, &m->tables[i], true);
	json_out_close(&arr, ']');

	if (m->npartitioned > 0)
	{
		json_out_key(&top, "partitioned");
		json_out_open(&arr, &b, top.indent, '[');
		for (i = 0; i < m->npartitioned; i++)
			write_table(&arr, &m->partitioned[i], false);
		json_out_close(&arr, ']');
	}

	json_out_key(&top, "sequences");
	json_out_open(&arr, &b, top.indent, '[');
	for (i = 0; i < m->nsequences; i++)
	{
		const MfSequence *s = &m->sequences[i];
		JsonOut		o;

		json_out_elem(&arr);
		json_out_open(&o, &b, arr.indent, '{');
		json_out_str(&o, "schema", s->schema);
		json_out_str(&o, "name", s->name);
		if (s->extension)
			json_out_str(&o, "extension", s->extension);
		json_out_int(&o, "last_value", s->last_value);
		json_out_bool(&o, "is_called", s->is_called);
		json_out_close(&o, '}');
	}
	json_out_close(&arr, ']');

	if (m->lo_page_size > 0)
	{
		json_out_int(&top, "large_object_page_size", m->lo_page_size);
		json_out_key(&top, "large_object_owners");
		json_out_open(&arr, &b, top.indent, '[');
		for (i = 0; i < m->nlo_owners; i++)
		{
			JsonOut		o;

			json_out_elem(&arr);
			json_out_open(&o, &b, arr.indent, '{');
			json_out_int(&o, "oid", m->lo_owners[i].oid);
			json_out_str(&o, "name", m->lo_owners[i].name);
			json_out_close(&o, '}');
		}
		json_out_close(&arr, ']');
	}

	json_out_close(&top, '}');
	abuf_appendc(&b, '\n');
	return abuf_steal(&b);		/* NULL if anything ran out of memory */
}

/* ----------------------------------------------------------------
 * Reading
 * ----------------------------------------------------------------
 */

typedef struct MfReader
{
	char	   *errbuf;
	size_t		errlen;
	bool		failed;
} MfReader;

static void mf_error(MfReader *r, const char *fmt,...)
			__attribute__((format(printf, 2, 3)));

static void
mf_error(MfReader *r, const char *fmt,...)
{
	va_list		ap;

	if (r->failed)
		return;
	r->failed = true;
	if (r->errbuf == NULL || r->errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(r->errbuf, r->errlen, fmt, ap);
	va_end(ap);
}

/* where: "" for the top level, else e.g. "tables[2]" */
static const char *
field_path(char *buf, size_t len, const char *where, const char *key)
{
	snprintf(buf, len, "%s%s%s", where, *where ? "." : "", key);
	return buf;
}

/* "a string", "an array", "null", ... */
static const char *
type_with_article(JvType type)
{
	switch (type)
	{
		case JV_NULL:
			return "null";
		case JV_BOOL:
			return "a boolean";
		case JV_NUMBER:
			return "a number";
		case JV_STRING:
			return "a string";
		case JV_ARRAY:
			return "an array";
		case JV_OBJECT:
			return "an object";
	}
	return "unknown";
}

static bool
wrong_type(MfReader *r, const char *where, const char *key,
		   const char *want, const JsonValue *v)
{
	char		path[128];

	mf_error(r, "invalid manifest: \"%s\" must be %s, not %s",
			 field_path(path, sizeof(path), where, key), want,
			 type_with_article(v->type));
	return false;
}

static bool
missing(MfReader *r, const char *where, const char *key)
{
	char		path[128];

	mf_error(r, "invalid manifest: \"%s\" is missing",
			 field_path(path, sizeof(path), where, key));
	return false;
}

/*
 * A string field into *dst (malloc'd).  Absent or null gives NULL, which is
 * an error if required.
 */
static bool
get_str(MfReader *r, const JsonValue *obj, const char *where,
		const char *key, bool required, char **dst)
{
	const JsonValue *v = json_get(obj, key);
	char		path[128];

	*dst = NULL;
	if (v == NULL || v->type == JV_NULL)
	{
		if (required)
		{
			if (v == NULL)
				return missing(r, where, key);
			return wrong_type(r, where, key, "a string", v);
		}
		return true;
	}
	if (v->type != JV_STRING)
		return wrong_type(r, where, key, "a string", v);
	if (strlen(v->string) != v->len)
	{
		mf_error(r, "invalid manifest: \"%s\" contains a NUL character",
				 field_path(path, sizeof(path), where, key));
		return false;
	}
	*dst = strdup(v->string);
	if (*dst == NULL)
	{
		mf_error(r, "out of memory");
		return false;
	}
	return true;
}

/* an integer field within [min, max]; absent leaves *dst at 0 */
static bool
get_int(MfReader *r, const JsonValue *obj, const char *where,
		const char *key, int64_t min, int64_t max, int64_t *dst)
{
	const JsonValue *v = json_get(obj, key);
	char		path[128];

	*dst = 0;
	if (v == NULL)
		return true;
	if (v->type != JV_NUMBER)
		return wrong_type(r, where, key, "an integer", v);
	if (!v->is_int && min == INT64_MIN && max == INT64_MAX)
	{
		mf_error(r, "invalid manifest: \"%s\" must be a 64-bit integer, not %.40s",
				 field_path(path, sizeof(path), where, key), v->string);
		return false;
	}
	if (!v->is_int || v->integer < min || v->integer > max)
	{
		mf_error(r, "invalid manifest: \"%s\" must be an integer between %" PRId64 " and %" PRId64 ", not %.40s",
				 field_path(path, sizeof(path), where, key), min, max,
				 v->string);
		return false;
	}
	*dst = v->integer;
	return true;
}

static bool
get_bool(MfReader *r, const JsonValue *obj, const char *where,
		 const char *key, bool *dst)
{
	const JsonValue *v = json_get(obj, key);

	*dst = false;
	if (v == NULL)
		return true;
	if (v->type != JV_BOOL)
		return wrong_type(r, where, key, "true or false", v);
	*dst = v->boolean;
	return true;
}

/* an array field; absent is NULL (allowed unless required) */
static bool
get_array(MfReader *r, const JsonValue *obj, const char *where,
		  const char *key, bool required, const JsonValue **dst)
{
	const JsonValue *v = json_get(obj, key);

	*dst = NULL;
	if (v == NULL)
		return required ? missing(r, where, key) : true;
	if (v->type != JV_ARRAY)
		return wrong_type(r, where, key, "an array", v);
	if (v->count > INT_MAX / 4)
	{
		mf_error(r, "invalid manifest: too many entries in \"%s\"", key);
		return false;
	}
	*dst = v;
	return true;
}

static bool
check_object(MfReader *r, const JsonValue *v, const char *where)
{
	if (v->type == JV_OBJECT)
		return true;
	mf_error(r, "invalid manifest: \"%s\" must be an object, not %s",
			 where, type_with_article(v->type));
	return false;
}

static bool
read_column(MfReader *r, const JsonValue *jc, const char *where, MfColumn *c)
{
	int64_t		position;

	if (!check_object(r, jc, where))
		return false;
	if (!get_str(r, jc, where, "name", true, &c->name) ||
		!get_str(r, jc, where, "type", true, &c->type) ||
		!get_int(r, jc, where, "position", INT_MIN, INT_MAX, &position) ||
		!get_bool(r, jc, where, "not_null", &c->not_null))
		return false;
	c->position = (int) position;
	return true;
}

/* a table; data: with its object's fields (not for a partitioned table) */
static bool
read_table(MfReader *r, const JsonValue *jt, const char *where, MfTable *t,
		   bool data)
{
	const JsonValue *cols;
	const JsonValue *defs;
	int64_t		relid;
	int64_t		relfilenode = 0;
	int64_t		toast_relfilenode = 0;
	size_t		i;

	if (!check_object(r, jt, where))
		return false;
	if (!get_str(r, jt, where, "schema", true, &t->schema) ||
		!get_str(r, jt, where, "name", true, &t->name) ||
		!get_str(r, jt, where, "parent", false, &t->parent) ||
		!get_str(r, jt, where, "extension", false, &t->extension) ||
		!get_str(r, jt, where, "owner", false, &t->owner) ||
		!get_str(r, jt, where, "ddl", false, &t->ddl) ||
		!get_int(r, jt, where, "relid", 0, UINT32_MAX, &relid) ||
		!get_array(r, jt, where, "columns", false, &cols) ||
		!get_array(r, jt, where, "definition", false, &defs))
		return false;
	t->relid = (uint32_t) relid;

	/* a partitioned table has no data: whatever such fields say is ignored */
	if (data &&
		(!get_str(r, jt, where, "status", true, &t->status) ||
		 !get_str(r, jt, where, "error", false, &t->error) ||
		 !get_str(r, jt, where, "object_key", true, &t->object_key) ||
		 !get_str(r, jt, where, "format", false, &t->format) ||
		 !get_str(r, jt, where, "compression", false, &t->compression) ||
		 !get_str(r, jt, where, "sha256", false, &t->sha256) ||
		 !get_int(r, jt, where, "rows", INT64_MIN, INT64_MAX, &t->rows) ||
		 !get_int(r, jt, where, "raw_bytes", INT64_MIN, INT64_MAX,
				  &t->raw_bytes) ||
		 !get_int(r, jt, where, "compressed_bytes", INT64_MIN, INT64_MAX,
				  &t->compressed_bytes) ||
		 !get_str(r, jt, where, "etag", false, &t->etag) ||
		 !get_int(r, jt, where, "relfilenode", 0, UINT32_MAX, &relfilenode) ||
		 !get_int(r, jt, where, "toast_relfilenode", 0, UINT32_MAX,
				  &toast_relfilenode) ||
		 !get_str(r, jt, where, "definition_hash", false,
				  &t->definition_hash) ||
		 !get_str(r, jt, where, "copied_from", false, &t->copied_from) ||
		 !get_str(r, jt, where, "read_in", false, &t->read_in)))
		return false;
	t->relfilenode = (uint32_t) relfilenode;
	t->toast_relfilenode = (uint32_t) toast_relfilenode;
	if (!data)
	{
		int64_t		n = 0;

		if (!get_int(r, jt, where, "partitions", 0, INT32_MAX, &n))
			return false;
		t->partitions = (int) n;
	}

	for (i = 0; defs != NULL && i < defs->count; i++)
	{
		char		dwhere[128];
		MfDdl	   *d = mf_add_ddl(t);

		if (d == NULL)
		{
			mf_error(r, "out of memory");
			return false;
		}
		snprintf(dwhere, sizeof(dwhere), "%s.definition[%zu]", where, i);
		if (!check_object(r, defs->items[i], dwhere) ||
			!get_str(r, defs->items[i], dwhere, "kind", true, &d->kind) ||
			!get_str(r, defs->items[i], dwhere, "name", false, &d->name) ||
			!get_str(r, defs->items[i], dwhere, "target", false, &d->target) ||
			!get_str(r, defs->items[i], dwhere, "sql", true, &d->sql))
			return false;
	}

	for (i = 0; cols != NULL && i < cols->count; i++)
	{
		char		cwhere[128];
		MfColumn   *c = mf_add_column(t);

		if (c == NULL)
		{
			mf_error(r, "out of memory");
			return false;
		}
		snprintf(cwhere, sizeof(cwhere), "%s.columns[%zu]", where, i);
		if (!read_column(r, cols->items[i], cwhere, c))
			return false;
	}
	return true;
}

static bool
read_sequence(MfReader *r, const JsonValue *js, const char *where,
			  MfSequence *s)
{
	if (!check_object(r, js, where))
		return false;
	return get_str(r, js, where, "schema", true, &s->schema) &&
		get_str(r, js, where, "name", true, &s->name) &&
		get_str(r, js, where, "extension", false, &s->extension) &&
		get_int(r, js, where, "last_value", INT64_MIN, INT64_MAX,
				&s->last_value) &&
		get_bool(r, js, where, "is_called", &s->is_called);
}

static bool
read_manifest(MfReader *r, const JsonValue *root, Manifest *m)
{
	const JsonValue *fmt;
	const JsonValue *tables;
	const JsonValue *parts;
	const JsonValue *seqs;
	const JsonValue *owners;
	size_t		i;

	if (root->type != JV_OBJECT)
	{
		mf_error(r, "invalid manifest: the top level must be an object, not %s",
				 type_with_article(root->type));
		return false;
	}

	/* the format first: a newer one may have changed everything else */
	fmt = json_get(root, "format");
	if (fmt == NULL)
		return missing(r, "", "format");
	if (fmt->type != JV_NUMBER)
		return wrong_type(r, "", "format", "an integer", fmt);
	if (!fmt->is_int || fmt->integer < 1)
	{
		mf_error(r, "invalid manifest: \"format\" must be a positive integer, not %.40s",
				 fmt->string);
		return false;
	}
	if (fmt->integer > MANIFEST_FORMAT)
	{
		mf_error(r, "manifest format %" PRId64 " is newer than this version understands",
				 fmt->integer);
		return false;
	}
	m->format = (int) fmt->integer;

	if (!get_str(r, root, "", "backup_id", true, &m->backup_id) ||
		!get_str(r, root, "", "database", true, &m->database) ||
		!get_str(r, root, "", "status", true, &m->status) ||
		!get_str(r, root, "", "started_at", false, &m->started_at) ||
		!get_str(r, root, "", "finished_at", false, &m->finished_at) ||
		!get_str(r, root, "", "server_version", false, &m->server_version) ||
		!get_str(r, root, "", "server_encoding", false,
				 &m->server_encoding) ||
		!get_str(r, root, "", "system_identifier", false,
				 &m->system_identifier) ||
		!get_str(r, root, "", "extension_version", false,
				 &m->extension_version) ||
		!get_str(r, root, "", "snapshot_lsn", false, &m->snapshot_lsn) ||
		!get_str(r, root, "", "reuse_lsn", false, &m->reuse_lsn) ||
		!get_int(r, root, "", "snapshot_xmin", 0, INT64_MAX,
				 &m->snapshot_xmin) ||
		!get_int(r, root, "", "timeline", 0, UINT32_MAX, &m->timeline) ||
		!get_int(r, root, "", "database_oid", 0, UINT32_MAX,
				 &m->database_oid) ||
		!get_bool(r, root, "", "restore_scripts", &m->restore_scripts) ||
		!get_bool(r, root, "", "from_standby", &m->from_standby) ||
		!get_array(r, root, "", "tables", true, &tables) ||
		!get_array(r, root, "", "partitioned", false, &parts) ||
		!get_array(r, root, "", "sequences", false, &seqs) ||
		!get_int(r, root, "", "large_object_page_size", 0, INT32_MAX,
				 &m->lo_page_size) ||
		!get_array(r, root, "", "large_object_owners", false, &owners))
		return false;

	for (i = 0; i < tables->count; i++)
	{
		char		where[64];
		MfTable    *t = mf_add_table(m);

		if (t == NULL)
		{
			mf_error(r, "out of memory");
			return false;
		}
		snprintf(where, sizeof(where), "tables[%zu]", i);
		if (!read_table(r, tables->items[i], where, t, true))
			return false;
	}
	for (i = 0; parts != NULL && i < parts->count; i++)
	{
		char		where[64];
		MfTable    *t = mf_add_partitioned(m);

		if (t == NULL)
		{
			mf_error(r, "out of memory");
			return false;
		}
		snprintf(where, sizeof(where), "partitioned[%zu]", i);
		if (!read_table(r, parts->items[i], where, t, false))
			return false;
	}
	for (i = 0; seqs != NULL && i < seqs->count; i++)
	{
		char		where[64];
		MfSequence *s = mf_add_sequence(m);

		if (s == NULL)
		{
			mf_error(r, "out of memory");
			return false;
		}
		snprintf(where, sizeof(where), "sequences[%zu]", i);
		if (!read_sequence(r, seqs->items[i], where, s))
			return false;
	}
	for (i = 0; owners != NULL && i < owners->count; i++)
	{
		char		where[64];
		MfRole	   *o = mf_add_lo_owner(m);

		if (o == NULL)
		{
			mf_error(r, "out of memory");
			return false;
		}
		snprintf(where, sizeof(where), "large_object_owners[%zu]", i);
		if (!check_object(r, owners->items[i], where) ||
			!get_int(r, owners->items[i], where, "oid", 0, UINT32_MAX, &o->oid) ||
			!get_str(r, owners->items[i], where, "name", true, &o->name))
			return false;
	}
	return true;
}

Manifest *
mf_parse(const char *json, size_t len, char *errbuf, size_t errlen)
{
	MfReader	r;
	JsonValue  *root;
	Manifest   *m;
	char		jerr[256];

	r.errbuf = errbuf;
	r.errlen = errlen;
	r.failed = false;
	if (errbuf != NULL && errlen > 0)
		errbuf[0] = '\0';

	root = json_parse(json, len, jerr, sizeof(jerr));
	if (root == NULL)
	{
		if (strcmp(jerr, "out of memory") == 0)
			mf_error(&r, "out of memory");
		else
			mf_error(&r, "invalid manifest: %s", jerr);
		return NULL;
	}
	m = mf_new();
	if (m == NULL)
	{
		json_free(root);
		mf_error(&r, "out of memory");
		return NULL;
	}
	if (!read_manifest(&r, root, m))
	{
		/* every failure path reports, but make sure of a message */
		mf_error(&r, "invalid manifest");
		json_free(root);
		mf_free(m);
		return NULL;
	}
	json_free(root);
	return m;
}

/* ----------------------------------------------------------------
 * Handing one entry to another process
 *
 * Every field in a fixed order: strings as a 32-bit length (all ones for
 * NULL) and their bytes, whatever their encoding; numbers in the host's
 * byte order.  Both processes run the same binary: this is no storage
 * format, and is never written anywhere.
 * ----------------------------------------------------------------
 */

#define MF_PACK_NULL	UINT32_MAX

static void
pack_bytes(AbBuf *b, const void *p, size_t n)
{
	abuf_append(b, p, n);
}

static void
pack_str(AbBuf *b, const char *s)
{
	uint32_t	n = s == NULL ? MF_PACK_NULL : (uint32_t) strlen(s);

	pack_bytes(b, &n, sizeof(n));
	if (s != NULL)
		pack_bytes(b, s, n);
}

static void
pack_int(AbBuf *b, int64_t v)
{
	pack_bytes(b, &v, sizeof(v));
}

/* the strings of a table, in the order both directions use */
#define MF_TABLE_STRINGS(X) \
	X(schema) X(name) X(parent) X(extension) X(status) X(error) \
	X(object_key) X(format) X(compression) X(sha256) X(ddl) X(owner) \
	X(definition_hash) X(etag) X(copied_from) X(read_in)
#define MF_TABLE_INTS(X) \
	X(relid) X(rows) X(raw_bytes) X(compressed_bytes) X(partitions) \
	X(relfilenode) X(toast_relfilenode)

char *
mf_table_pack(const MfTable *t, size_t *len)
{
	AbBuf		b;
	int			i;

	abuf_init(&b);
#define PACK_STR(f) pack_str(&b, t->f);
#define PACK_INT(f) pack_int(&b, (int64_t) t->f);
	MF_TABLE_STRINGS(PACK_STR)
		MF_TABLE_INTS(PACK_INT)
#undef PACK_STR
#undef PACK_INT
		pack_int(&b, t->ncolumns);
	for (i = 0; i < t->ncolumns; i++)
	{
		pack_str(&b, t->columns[i].name);
		pack_str(&b, t->columns[i].type);
		pack_int(&b, t->columns[i].position);
		pack_int(&b, t->columns[i].not_null);
	}
	pack_int(&b, t->nddl);
	for (i = 0; i < t->nddl; i++)
	{
		pack_str(&b, t->ddls[i].kind);
		pack_str(&b, t->ddls[i].name);
		pack_str(&b, t->ddls[i].target);
		pack_str(&b, t->ddls[i].sql);
	}
	*len = b.len;
	return abuf_steal(&b);		/* NULL if anything ran out of memory */
}

typedef struct MfUnpack
{
	const char *p;
	const char *end;
	bool		failed;
} MfUnpack;

static bool
unpack_bytes(MfUnpack *u, void *out, size_t n)
{
	if (u->failed || (size_t) (u->end - u->p) < n)
	{
		u->failed = true;
		return false;
	}
	memcpy(out, u->p, n);
	u->p += n;
	return true;
}

static char *
unpack_str(MfUnpack *u)
{
	uint32_t	n;
	char	   *s;

	if (!unpack_bytes(u, &n, sizeof(n)) || n == MF_PACK_NULL)
		return NULL;
	if ((size_t) (u->end - u->p) < n || (s = malloc((size_t) n + 1)) == NULL)
	{
		u->failed = true;
		return NULL;
	}
	memcpy(s, u->p, n);
	s[n] = '\0';
	u->p += n;
	return s;
}

static int64_t
unpack_int(MfUnpack *u)
{
	int64_t		v = 0;

	(void) unpack_bytes(u, &v, sizeof(v));
	return v;
}

bool
mf_table_unpack(const void *data, size_t len, MfTable *t)
{
	MfUnpack	u = {data, (const char *) data + len, false};
	int64_t		n;

	memset(t, 0, sizeof(MfTable));
#define UNPACK_STR(f) t->f = unpack_str(&u);
#define UNPACK_INT(f) t->f = unpack_int(&u);
	MF_TABLE_STRINGS(UNPACK_STR)
		MF_TABLE_INTS(UNPACK_INT)
#undef UNPACK_STR
#undef UNPACK_INT
		n = unpack_int(&u);
	for (int64_t i = 0; !u.failed && i < n; i++)
	{
		MfColumn   *c = mf_add_column(t);

		if (c == NULL)
			u.failed = true;
		else
		{
			c->name = unpack_str(&u);
			c->type = unpack_str(&u);
			c->position = (int) unpack_int(&u);
			c->not_null = unpack_int(&u) != 0;
		}
	}
	n = unpack_int(&u);
	for (int64_t i = 0; !u.failed && i < n; i++)
	{
		MfDdl	   *d = mf_add_ddl(t);

		if (d == NULL)
			u.failed = true;
		else
		{
			d->kind = unpack_str(&u);
			d->name = unpack_str(&u);
			d->target = unpack_str(&u);
			d->sql = unpack_str(&u);
		}
	}
	if (u.failed || u.p != u.end)
	{
		mf_free_table(t);
		memset(t, 0, sizeof(MfTable));
		return false;
	}
	return true;
}
