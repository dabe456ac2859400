/*
 * bindex.c
 *		The backup index (index.json): writer and strict reader.
 *
 * Readers ignore fields they do not know; a newer "format" is refused, and
 * the caller then does without the index (it is only a cache).
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bindex.h"
#include "buf.h"
#include "json.h"

BackupIndex *
bi_new(void)
{
	return calloc(1, sizeof(BackupIndex));
}

BiEntry *
bi_add(BackupIndex *ix)
{
	BiEntry    *e;

	if (ix->nentries % 64 == 0)
	{
		size_t		cap = (size_t) ix->nentries + 64;
		BiEntry    *n = realloc(ix->entries, cap * sizeof(BiEntry));

		if (n == NULL)
			return NULL;
		ix->entries = n;
	}
	e = &ix->entries[ix->nentries++];
	memset(e, 0, sizeof(*e));
	return e;
}

static void
bi_free_entry(BiEntry *e)
{
	free(e->backup_id);
	free(e->status);
	free(e->started_at);
	free(e->finished_at);
	free(e->system_identifier);
}

void
bi_free(BackupIndex *ix)
{
	if (ix == NULL)
		return;
	for (int i = 0; i < ix->nentries; i++)
		bi_free_entry(&ix->entries[i]);
	free(ix->entries);
	free(ix->database);
	free(ix->system_identifier);
	free(ix->updated_at);
	free(ix);
}

char *
bi_to_json(const BackupIndex *ix)
{
	AbBuf		b;
	JsonOut		top;
	JsonOut		arr;

	abuf_init(&b);
	json_out_open(&top, &b, 0, '{');
	json_out_int(&top, "format", ix->format);
	json_out_str(&top, "database", ix->database);
	json_out_str(&top, "system_identifier", ix->system_identifier);
	json_out_str(&top, "updated_at", ix->updated_at);
	json_out_key(&top, "backups");
	json_out_open(&arr, &b, top.indent, '[');
	for (int i = 0; i < ix->nentries; i++)
	{
		const BiEntry *e = &ix->entries[i];
		JsonOut		o;

		json_out_elem(&arr);
		json_out_open(&o, &b, arr.indent, '{');
		json_out_str(&o, "backup_id", e->backup_id);
		json_out_str(&o, "status", e->status);
		json_out_str(&o, "started_at", e->started_at);
		json_out_str(&o, "finished_at", e->finished_at);
		json_out_str(&o, "system_identifier", e->system_identifier);
		json_out_int(&o, "tables_ok", e->tables_ok);
		json_out_int(&o, "tables_failed", e->tables_failed);
		json_out_int(&o, "rows", e->rows);
		json_out_int(&o, "raw_bytes", e->raw_bytes);
		json_out_int(&o, "compressed_bytes", e->compressed_bytes);
		if (e->from_standby)
			json_out_bool(&o, "from_standby", true);
		json_out_close(&o, '}');
	}
	json_out_close(&arr, ']');
	json_out_close(&top, '}');
	abuf_appendc(&b, '\n');
	return abuf_steal(&b);		/* NULL if anything ran out of memory */
}

/* ----------------------------------------------------------------
 * Reading
 * ----------------------------------------------------------------
 */

typedef struct BiReader
{
	char	   *errbuf;
	size_t		errlen;
} BiReader;

static bool bi_error(BiReader *r, const char *fmt,...)
			__attribute__((format(printf, 2, 3)));

static bool
bi_error(BiReader *r, const char *fmt,...)
{
	va_list		ap;

	if (r->errbuf == NULL || r->errlen == 0)
		return false;
	va_start(ap, fmt);
	vsnprintf(r->errbuf, r->errlen, fmt, ap);
	va_end(ap);
	return false;
}

/* an optional true or false; absent is false */
static bool
bi_bool(BiReader *r, const JsonValue *obj, const char *key, bool *dst)
{
	const JsonValue *v = json_get(obj, key);

	*dst = false;
	if (v == NULL)
		return true;
	if (v->type != JV_BOOL)
		return bi_error(r, "invalid index: \"%s\" must be true or false", key);
	*dst = v->boolean;
	return true;
}

/* an optional string member (absent or null: NULL); required ones checked */
static bool
bi_str(BiReader *r, const JsonValue *obj, const char *key, bool required,
	   char **dst)
{
	const JsonValue *v = json_get(obj, key);

	*dst = NULL;
	if (v == NULL || v->type == JV_NULL)
		return required ?
			bi_error(r, "invalid index: \"%s\" is missing", key) : true;
	if (v->type != JV_STRING || strlen(v->string) != v->len)
		return bi_error(r, "invalid index: \"%s\" must be a string", key);
	if ((*dst = strdup(v->string)) == NULL)
		return bi_error(r, "out of memory");
	return true;
}

/* a non-negative integer member; absent is 0 */
static bool
bi_int(BiReader *r, const JsonValue *obj, const char *key, int64_t *dst)
{
	const JsonValue *v = json_get(obj, key);

	*dst = 0;
	if (v == NULL)
		return true;
	if (v->type != JV_NUMBER || !v->is_int || v->integer < 0)
		return bi_error(r, "invalid index: \"%s\" must be a non-negative integer", key);
	*dst = v->integer;
	return true;
}

static bool
bi_read_entry(BiReader *r, const JsonValue *o, BiEntry *e)
{
	if (o->type != JV_OBJECT)
		return bi_error(r, "invalid index: each backup must be an object");
	return bi_str(r, o, "backup_id", true, &e->backup_id) &&
		bi_str(r, o, "status", true, &e->status) &&
		bi_str(r, o, "started_at", false, &e->started_at) &&
		bi_str(r, o, "finished_at", false, &e->finished_at) &&
		bi_str(r, o, "system_identifier", false, &e->system_identifier) &&
		bi_int(r, o, "tables_ok", &e->tables_ok) &&
		bi_int(r, o, "tables_failed", &e->tables_failed) &&
		bi_int(r, o, "rows", &e->rows) &&
		bi_int(r, o, "raw_bytes", &e->raw_bytes) &&
		bi_int(r, o, "compressed_bytes", &e->compressed_bytes) &&
		bi_bool(r, o, "from_standby", &e->from_standby);
}

static bool
bi_read(BiReader *r, const JsonValue *root, BackupIndex *ix)
{
	const JsonValue *fmt = json_get(root, "format");
	const JsonValue *arr = json_get(root, "backups");

	if (root->type != JV_OBJECT)
		return bi_error(r, "invalid index: the top level must be an object");
	if (fmt == NULL || fmt->type != JV_NUMBER || !fmt->is_int || fmt->integer < 1)
		return bi_error(r, "invalid index: \"format\" must be a positive integer");
	if (fmt->integer > BINDEX_FORMAT)
		return bi_error(r, "index format %" PRId64 " is newer than this version understands",
						fmt->integer);
	ix->format = (int) fmt->integer;
	if (!bi_str(r, root, "database", true, &ix->database) ||
		!bi_str(r, root, "system_identifier", false, &ix->system_identifier) ||
		!bi_str(r, root, "updated_at", false, &ix->updated_at))
		return false;
	if (arr == NULL || arr->type != JV_ARRAY)
		return bi_error(r, "invalid index: \"backups\" must be an array");
	for (size_t i = 0; i < arr->count; i++)
	{
		BiEntry    *e = bi_add(ix);

		if (e == NULL)
			return bi_error(r, "out of memory");
		if (!bi_read_entry(r, arr->items[i], e))
			return false;
	}
	return true;
}

BackupIndex *
bi_parse(const char *json, size_t len, char *errbuf, size_t errlen)
{
	BiReader	r = {errbuf, errlen};
	JsonValue  *root;
	BackupIndex *ix;
	char		jerr[256];

	if (errbuf != NULL && errlen > 0)
		errbuf[0] = '\0';
	root = json_parse(json, len, jerr, sizeof(jerr));
	if (root == NULL)
	{
		bi_error(&r, "invalid index: %s", jerr);
		return NULL;
	}
	ix = bi_new();
	if (ix == NULL || !bi_read(&r, root, ix))
	{
		if (ix == NULL)
			bi_error(&r, "out of memory");
		json_free(root);
		bi_free(ix);
		return NULL;
	}
	json_free(root);
	return ix;
}

int64_t
bi_peek_format(const char *json, size_t len)
{
	JsonValue  *root = json_parse(json, len, NULL, 0);
	const JsonValue *fmt;
	int64_t		format = 0;

	if (root == NULL)
		return 0;
	fmt = root->type == JV_OBJECT ? json_get(root, "format") : NULL;
	if (fmt != NULL && fmt->type == JV_NUMBER && fmt->is_int && fmt->integer > 0)
		format = fmt->integer;
	json_free(root);
	return format;
}
