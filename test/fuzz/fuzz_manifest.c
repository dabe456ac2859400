/*
 * fuzz_manifest.c
 *		libFuzzer target for the manifest reader and writer
 *		(src/core/manifest.c): a manifest.json comes from the bucket, which
 *		anyone with write access to it can edit.
 *
 * Two passes over every input:
 *
 * 1. The bytes as manifest.json: mf_parse() returns a Manifest, or NULL
 *	  with a message, and never crashes, leaks or reads outside the input.
 *	  An accepted manifest has every required field, valid UTF-8 strings
 *	  and a known format; writing it (mf_to_json) and parsing that gives the
 *	  same manifest, field by field, and writing that the same bytes.
 *	  mf_find_table() finds each table (or an earlier one of the same name).
 *	  mf_parse() and mf_to_json() are run again with one of their
 *	  allocations failing (picked by the input): they must fail cleanly,
 *	  the reader saying "out of memory" when the text was valid.
 *
 * 2. The bytes as raw material for a Manifest built in memory, the way a
 *	  backup fills one (arbitrary strings, integers at their limits):
 *	  mf_to_json -> mf_parse must succeed and give back the same values,
 *	  strings with bytes that are not UTF-8 getting U+FFFD for them as
 *	  json_escape() documents; writing what was read gives the same bytes.
 *
 *	make fuzzbin && test/fuzz/fuzz_manifest test/fuzz/corpus/manifest
 */
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "core/manifest.h"
#include "fuzz_common.h"

/*
 * How b (parsed) must relate to a: equal, or, when sanitized, equal after
 * a's bytes that are not UTF-8 became U+FFFD.
 */
static bool
str_match(const char *a, const char *b, bool sanitized)
{
	char	   *want;
	bool		eq;

	if (!sanitized || a == NULL)
		return fz_str_eq(a, b);
	want = fz_utf8_sanitize(a);
	eq = fz_str_eq(want, b);
	free(want);
	return eq;
}

#define SAME_STR(what, a, b) \
	do { \
		if (!str_match((a), (b), sanitized)) \
		{ \
			fprintf(stderr, "differs after the round trip: %s\n", what); \
			return false; \
		} \
	} while (0)
#define SAME_NUM(what, a, b) \
	do { \
		if ((a) != (b)) \
		{ \
			fprintf(stderr, "differs after the round trip: %s\n", what); \
			return false; \
		} \
	} while (0)

static bool
manifests_match(const Manifest *a, const Manifest *b, bool sanitized)
{
	int			i;
	int			j;

	SAME_NUM("format", a->format, b->format);
	SAME_STR("backup_id", a->backup_id, b->backup_id);
	SAME_STR("database", a->database, b->database);
	SAME_STR("status", a->status, b->status);
	SAME_STR("started_at", a->started_at, b->started_at);
	SAME_STR("finished_at", a->finished_at, b->finished_at);
	SAME_STR("server_version", a->server_version, b->server_version);
	SAME_STR("system_identifier", a->system_identifier, b->system_identifier);
	SAME_STR("extension_version", a->extension_version, b->extension_version);
	SAME_STR("snapshot_lsn", a->snapshot_lsn, b->snapshot_lsn);
	SAME_NUM("ntables", a->ntables, b->ntables);
	for (i = 0; i < a->ntables; i++)
	{
		const MfTable *ta = &a->tables[i];
		const MfTable *tb = &b->tables[i];

		SAME_STR("table schema", ta->schema, tb->schema);
		SAME_STR("table name", ta->name, tb->name);
		SAME_STR("table parent", ta->parent, tb->parent);
		SAME_STR("table owner", ta->owner, tb->owner);
		SAME_STR("table status", ta->status, tb->status);
		SAME_STR("table error", ta->error, tb->error);
		SAME_STR("table object_key", ta->object_key, tb->object_key);
		SAME_STR("table format", ta->format, tb->format);
		SAME_STR("table compression", ta->compression, tb->compression);
		SAME_STR("table sha256", ta->sha256, tb->sha256);
		SAME_STR("table ddl", ta->ddl, tb->ddl);
		SAME_NUM("table relid", ta->relid, tb->relid);
		SAME_NUM("table rows", ta->rows, tb->rows);
		SAME_NUM("table raw_bytes", ta->raw_bytes, tb->raw_bytes);
		SAME_NUM("table compressed_bytes", ta->compressed_bytes,
				 tb->compressed_bytes);
		SAME_NUM("table nddl", ta->nddl, tb->nddl);
		for (j = 0; j < ta->nddl; j++)
		{
			SAME_STR("ddl kind", ta->ddls[j].kind, tb->ddls[j].kind);
			SAME_STR("ddl name", ta->ddls[j].name, tb->ddls[j].name);
			SAME_STR("ddl target", ta->ddls[j].target, tb->ddls[j].target);
			SAME_STR("ddl sql", ta->ddls[j].sql, tb->ddls[j].sql);
		}
		SAME_NUM("table ncolumns", ta->ncolumns, tb->ncolumns);
		for (j = 0; j < ta->ncolumns; j++)
		{
			SAME_STR("column name", ta->columns[j].name, tb->columns[j].name);
			SAME_STR("column type", ta->columns[j].type, tb->columns[j].type);
			SAME_NUM("column position", ta->columns[j].position,
					 tb->columns[j].position);
			SAME_NUM("column not_null", ta->columns[j].not_null,
					 tb->columns[j].not_null);
		}
	}
	SAME_NUM("nsequences", a->nsequences, b->nsequences);
	for (i = 0; i < a->nsequences; i++)
	{
		SAME_STR("sequence schema", a->sequences[i].schema,
				 b->sequences[i].schema);
		SAME_STR("sequence name", a->sequences[i].name, b->sequences[i].name);
		SAME_NUM("sequence last_value", a->sequences[i].last_value,
				 b->sequences[i].last_value);
		SAME_NUM("sequence is_called", a->sequences[i].is_called,
				 b->sequences[i].is_called);
	}
	return true;
}

/* a string field of an accepted manifest: present if required, UTF-8 */
static void
check_str(const char *s, bool required)
{
	if (s == NULL)
	{
		CHECK(!required);
		return;
	}
	CHECK(fz_utf8_valid(s, strlen(s)));
}

/* what mf_parse() promises about a manifest it accepted */
static void
check_accepted(const Manifest *m)
{
	int			i;
	int			j;

	CHECK(m->format >= 1 && m->format <= MANIFEST_FORMAT);
	check_str(m->backup_id, true);
	check_str(m->database, true);
	check_str(m->status, true);
	check_str(m->started_at, false);
	check_str(m->finished_at, false);
	check_str(m->server_version, false);
	check_str(m->system_identifier, false);
	check_str(m->extension_version, false);
	check_str(m->snapshot_lsn, false);
	CHECK(m->ntables >= 0 && (m->ntables == 0 || m->tables != NULL));
	CHECK(m->nsequences >= 0 && (m->nsequences == 0 || m->sequences != NULL));
	for (i = 0; i < m->ntables; i++)
	{
		const MfTable *t = &m->tables[i];
		const MfTable *found;

		check_str(t->schema, true);
		check_str(t->name, true);
		check_str(t->parent, false);
		check_str(t->owner, false);
		check_str(t->status, true);
		check_str(t->error, false);
		check_str(t->object_key, true);
		check_str(t->format, false);
		check_str(t->compression, false);
		check_str(t->sha256, false);
		check_str(t->ddl, false);
		CHECK(t->nddl >= 0 && (t->nddl == 0 || t->ddls != NULL));
		for (j = 0; j < t->nddl; j++)
		{
			check_str(t->ddls[j].kind, true);
			check_str(t->ddls[j].name, false);
			check_str(t->ddls[j].target, false);
			check_str(t->ddls[j].sql, true);
		}
		CHECK(t->ncolumns >= 0 && (t->ncolumns == 0 || t->columns != NULL));
		for (j = 0; j < t->ncolumns; j++)
		{
			check_str(t->columns[j].name, true);
			check_str(t->columns[j].type, true);
		}

		/* the first table of that schema and name */
		found = mf_find_table(m, t->schema, t->name);
		CHECK(found != NULL && found <= t && found >= m->tables);
		CHECK(strcmp(found->schema, t->schema) == 0 &&
			  strcmp(found->name, t->name) == 0);
	}
	for (i = 0; i < m->nsequences; i++)
	{
		check_str(m->sequences[i].schema, true);
		check_str(m->sequences[i].name, true);
	}
}

/* m -> JSON -> Manifest must give m back (sanitized: see str_match) */
static void
check_roundtrip(const Manifest *m, bool sanitized)
{
	char		err[256];
	char	   *json;
	char	   *json2;
	Manifest   *p;

	json = mf_to_json(m);
	CHECK(json != NULL);
	CHECK(fz_utf8_valid(json, strlen(json)));
	p = mf_parse(json, strlen(json), err, sizeof(err));
	if (p == NULL)
		fprintf(stderr, "written manifest rejected: %s\n", err);
	CHECK(p != NULL);
	CHECK(manifests_match(m, p, sanitized));

	/*
	 * U+FFFD was written for a bad byte: the same bytes either way.  This
	 * also catches a field the writer writes and the reader drops, even one
	 * manifests_match() does not know yet.
	 */
	json2 = mf_to_json(p);
	CHECK(json2 != NULL && strcmp(json, json2) == 0);
	free(json2);
	free(json);
	mf_free(p);
}

/* pass 1: the input is manifest.json */
static void
parse_input(const uint8_t *data, size_t size)
{
	char		err[256];
	Manifest   *m;
	Manifest   *m2;
	JsonValue  *v;
	long		nalloc;
	char	   *json;

	fz_alloc_arm(0);
	m = mf_parse((const char *) data, size, err, sizeof(err));
	nalloc = fz_alloc_disarm();

	/* again with one allocation failing: fails, and says why if it must */
	if (nalloc > 0)
	{
		char		err2[256];

		fz_alloc_arm(1 + (long) (fz_hash(data, size) % (uint64_t) nalloc));
		m2 = mf_parse((const char *) data, size, err2, sizeof(err2));
		fz_alloc_disarm();
		CHECK(fz_alloc_failed && m2 == NULL);
		CHECK(m == NULL || strcmp(err2, "out of memory") == 0);
	}

	if (m == NULL)
	{
		char	   *small;
		size_t		smalllen = 1 + size % 24;

		CHECK(err[0] != '\0' && strlen(err) < sizeof(err));
		small = malloc(smalllen);
		CHECK(small != NULL);
		CHECK(mf_parse((const char *) data, size, small, smalllen) == NULL);
		CHECK(strlen(small) < smalllen);
		free(small);
		return;
	}
	CHECK(err[0] == '\0');
	/* a manifest is JSON first */
	v = json_parse((const char *) data, size, NULL, 0);
	CHECK(v != NULL && v->type == JV_OBJECT);
	json_free(v);
	check_accepted(m);
	check_roundtrip(m, false);

	/* the writer out of memory: NULL, nothing leaked */
	fz_alloc_arm(0);
	json = mf_to_json(m);
	nalloc = fz_alloc_disarm();
	free(json);
	CHECK(nalloc > 0);
	fz_alloc_arm(1 + (long) (fz_hash(data, size) % (uint64_t) nalloc));
	json = mf_to_json(m);
	fz_alloc_disarm();
	CHECK(fz_alloc_failed && json == NULL);
	mf_free(m);
}

static char *
opt_string(FzBytes *in, size_t maxlen)
{
	if (fz_byte(in) % 4 == 0)
		return NULL;
	return fz_string(in, maxlen);
}

/* an int64 that is often at or near a limit */
static int64_t
some_int(FzBytes *in)
{
	switch (fz_byte(in) % 6)
	{
		case 0:
			return INT64_MIN;
		case 1:
			return INT64_MAX;
		case 2:
			return (int64_t) (fz_byte(in) % 5) - 2;
		case 3:
			return INT64_C(9007199254740993);	/* 2^53 + 1 */
		default:
			return (int64_t) fz_u64(in);
	}
}

/* pass 2: the input is raw material for a Manifest */
static void
build_from_input(const uint8_t *data, size_t size)
{
	FzBytes		in = {data, size};
	Manifest   *m = mf_new();
	int			ntables;
	int			nseqs;
	int			i;
	int			j;

	CHECK(m != NULL);
	m->backup_id = fz_string(&in, 20);
	m->database = fz_string(&in, 16);
	m->status = fz_string(&in, 8);
	m->started_at = opt_string(&in, 32);
	m->finished_at = opt_string(&in, 32);
	m->server_version = opt_string(&in, 8);
	m->system_identifier = opt_string(&in, 20);
	m->extension_version = opt_string(&in, 8);
	m->snapshot_lsn = opt_string(&in, 20);
	ntables = fz_byte(&in) % 6;
	for (i = 0; i < ntables; i++)
	{
		MfTable    *t = mf_add_table(m);
		int			ncols;

		CHECK(t != NULL);
		t->schema = fz_string(&in, 16);
		t->name = fz_string(&in, 16);
		t->parent = opt_string(&in, 24);
		t->owner = opt_string(&in, 16);
		t->status = fz_string(&in, 8);
		t->error = opt_string(&in, 40);
		t->object_key = fz_string(&in, 40);
		t->format = opt_string(&in, 4);
		t->compression = opt_string(&in, 4);
		t->sha256 = opt_string(&in, 64);
		t->ddl = opt_string(&in, 64);
		t->relid = (uint32_t) some_int(&in);
		t->rows = some_int(&in);
		t->raw_bytes = some_int(&in);
		t->compressed_bytes = some_int(&in);
		ncols = fz_byte(&in) % 4;
		for (j = 0; j < ncols; j++)
		{
			MfDdl	   *d = mf_add_ddl(t);

			CHECK(d != NULL);
			d->kind = fz_string(&in, 8);
			d->name = opt_string(&in, 16);
			d->target = opt_string(&in, 8);
			d->sql = fz_string(&in, 32);
		}
		ncols = fz_byte(&in) % 6;
		for (j = 0; j < ncols; j++)
		{
			MfColumn   *c = mf_add_column(t);

			CHECK(c != NULL);
			c->name = fz_string(&in, 16);
			c->type = fz_string(&in, 16);
			c->position = (int) (int32_t) (uint32_t) some_int(&in);
			c->not_null = fz_byte(&in) & 1;
		}
	}
	nseqs = fz_byte(&in) % 4;
	for (i = 0; i < nseqs; i++)
	{
		MfSequence *s = mf_add_sequence(m);

		CHECK(s != NULL);
		s->schema = fz_string(&in, 16);
		s->name = fz_string(&in, 16);
		s->last_value = some_int(&in);
		s->is_called = fz_byte(&in) & 1;
	}
	check_roundtrip(m, true);
	mf_free(m);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	parse_input(data, size);
	build_from_input(data, size);
	return 0;
}
