/*
 * fuzz_json.c
 *		libFuzzer target for the strict JSON reader (src/core/json.c).
 *
 * For any bytes, json_parse() returns a tree, or NULL with a message, and
 * never crashes, leaks or reads outside the input (ASan/UBSan watch).  On a
 * tree the promises of json.h are checked: strings NUL-terminated, with the
 * right length and valid UTF-8; keys unique and found by json_get(); nesting
 * within JSON_MAX_DEPTH; a number's int64 and double agree with its literal.
 * Then the round trip: the tree is written back as JSON, parsed again, and
 * must give the same tree, and writing that gives the same bytes.
 *
 * Independently, json_escape() of the input read as a C string must parse
 * back as a string: the input itself when it is valid UTF-8, else the input
 * with each bad byte replaced by U+FFFD.
 *
 * And the parse is repeated with one of its allocations failing (which one
 * follows from the input): it must fail cleanly, "out of memory".
 *
 *	make fuzzbin && test/fuzz/fuzz_json test/fuzz/corpus/json
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/json.h"
#include "fuzz_common.h"

/* append the JSON string for s[0..len), which may hold NULs */
static void
write_string(AbBuf *out, const char *s, size_t len)
{
	const char *end = s + len;
	AbBuf		piece;

	abuf_init(&piece);
	abuf_appendc(out, '"');
	for (;;)
	{
		size_t		n = strlen(s);

		/* json_escape() quotes; keep what is between the quotes */
		abuf_reset(&piece);
		CHECK(json_escape(&piece, s));
		CHECK(piece.len >= 2 && piece.data[0] == '"' &&
			  piece.data[piece.len - 1] == '"');
		abuf_append(out, piece.data + 1, piece.len - 2);
		s += n;
		if (s >= end)
			break;
		abuf_appends(out, "\\u0000");
		s++;
	}
	abuf_appendc(out, '"');
	abuf_free(&piece);
}

/* JSON text for v, compact */
static void
write_value(AbBuf *out, const JsonValue *v)
{
	size_t		i;

	switch (v->type)
	{
		case JV_NULL:
			abuf_appends(out, "null");
			break;
		case JV_BOOL:
			abuf_appends(out, v->boolean ? "true" : "false");
			break;
		case JV_NUMBER:
			abuf_append(out, v->string, v->len);
			break;
		case JV_STRING:
			write_string(out, v->string, v->len);
			break;
		case JV_ARRAY:
			abuf_appendc(out, '[');
			for (i = 0; i < v->count; i++)
			{
				if (i > 0)
					abuf_appendc(out, ',');
				write_value(out, v->items[i]);
			}
			abuf_appendc(out, ']');
			break;
		case JV_OBJECT:
			abuf_appendc(out, '{');
			for (i = 0; i < v->count; i++)
			{
				if (i > 0)
					abuf_appendc(out, ',');
				write_string(out, v->members[i].key, v->members[i].keylen);
				abuf_appendc(out, ':');
				write_value(out, v->members[i].value);
			}
			abuf_appendc(out, '}');
			break;
	}
}

static bool
bytes_eq(const char *a, size_t alen, const char *b, size_t blen)
{
	return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

static bool
tree_eq(const JsonValue *a, const JsonValue *b)
{
	size_t		i;

	if (a->type != b->type || a->count != b->count)
		return false;
	switch (a->type)
	{
		case JV_NULL:
			return true;
		case JV_BOOL:
			return a->boolean == b->boolean;
		case JV_NUMBER:
			return bytes_eq(a->string, a->len, b->string, b->len) &&
				a->is_int == b->is_int &&
				(!a->is_int || a->integer == b->integer) &&
				a->number == b->number;
		case JV_STRING:
			return bytes_eq(a->string, a->len, b->string, b->len);
		case JV_ARRAY:
			for (i = 0; i < a->count; i++)
				if (!tree_eq(a->items[i], b->items[i]))
					return false;
			return true;
		case JV_OBJECT:
			for (i = 0; i < a->count; i++)
				if (!bytes_eq(a->members[i].key, a->members[i].keylen,
							  b->members[i].key, b->members[i].keylen) ||
					!tree_eq(a->members[i].value, b->members[i].value))
					return false;
			return true;
	}
	return false;
}

/* RFC 8259's number grammar, checked by hand */
static bool
is_json_number(const char *s)
{
	if (*s == '-')
		s++;
	if (*s == '0')
		s++;
	else if (*s >= '1' && *s <= '9')
		while (*s >= '0' && *s <= '9')
			s++;
	else
		return false;
	if (*s == '.')
	{
		s++;
		if (!(*s >= '0' && *s <= '9'))
			return false;
		while (*s >= '0' && *s <= '9')
			s++;
	}
	if (*s == 'e' || *s == 'E')
	{
		s++;
		if (*s == '+' || *s == '-')
			s++;
		if (!(*s >= '0' && *s <= '9'))
			return false;
		while (*s >= '0' && *s <= '9')
			s++;
	}
	return *s == '\0';
}

static void
check_number(const JsonValue *v)
{
	bool		integral;

	CHECK(v->string != NULL && strlen(v->string) == v->len);
	CHECK(is_json_number(v->string));
	integral = strpbrk(v->string, ".eE") == NULL;
	CHECK(!v->is_int || integral);
	if (integral)
	{
		long long	ll;

		errno = 0;
		ll = strtoll(v->string, NULL, 10);
		if (errno == ERANGE)
			CHECK(!v->is_int);
		else
			CHECK(v->is_int && v->integer == (int64_t) ll);
	}
	if (v->is_int)
	{
		char		lit[32];

		snprintf(lit, sizeof(lit), "%" PRId64, v->integer);
		CHECK(strcmp(lit, v->string) == 0 ||
			  (v->integer == 0 && strcmp(v->string, "-0") == 0));
	}
	/* the fuzzer runs in the C locale */
	CHECK(v->number == strtod(v->string, NULL));
}

/* the promises of json.h about a tree; returns the nesting depth */
static int
check_tree(const JsonValue *v)
{
	size_t		i;
	size_t		j;
	int			depth = 0;
	int			d;

	CHECK(v != NULL);
	switch (v->type)
	{
		case JV_NULL:
		case JV_BOOL:
			CHECK(v->string == NULL && v->count == 0);
			return 0;
		case JV_NUMBER:
			check_number(v);
			return 0;
		case JV_STRING:
			CHECK(v->string != NULL && v->string[v->len] == '\0');
			CHECK(fz_utf8_valid(v->string, v->len));
			return 0;
		case JV_ARRAY:
			CHECK(v->count == 0 || v->items != NULL);
			for (i = 0; i < v->count; i++)
			{
				d = check_tree(v->items[i]);
				if (d > depth)
					depth = d;
			}
			return depth + 1;
		case JV_OBJECT:
			CHECK(v->count == 0 || v->members != NULL);
			for (i = 0; i < v->count; i++)
			{
				const JsonMember *m = &v->members[i];

				CHECK(m->key != NULL && m->key[m->keylen] == '\0');
				CHECK(fz_utf8_valid(m->key, m->keylen));
				for (j = 0; j < i; j++)
					CHECK(!bytes_eq(m->key, m->keylen,
									v->members[j].key, v->members[j].keylen));
				/* unique keys: json_get finds this very member */
				if (strlen(m->key) == m->keylen)
					CHECK(json_get(v, m->key) == m->value);
				d = check_tree(m->value);
				if (d > depth)
					depth = d;
			}
			return depth + 1;
	}
	CHECK(!"unknown JSON value type");
	return 0;
}

/* json_escape() of the input as a C string parses back as promised */
static void
check_escape(const uint8_t *data, size_t size)
{
	char	   *s = fz_cstring(data, size);
	char	   *want = fz_utf8_sanitize(s);
	AbBuf		b;
	JsonValue  *v;
	char		err[256];

	abuf_init(&b);
	CHECK(json_escape(&b, s));
	v = json_parse(b.data, b.len, err, sizeof(err));
	if (v == NULL)
		fprintf(stderr, "json_escape output rejected: %s\n", err);
	CHECK(v != NULL && v->type == JV_STRING);
	CHECK(bytes_eq(v->string, v->len, want, strlen(want)));
	json_free(v);
	abuf_free(&b);
	free(want);
	free(s);
}

/*
 * The same parse with one of its nalloc allocations failing: it must fail,
 * free what it built, and blame the memory if the text was valid.
 */
static void
check_parse_oom(const uint8_t *data, size_t size, bool valid, long nalloc)
{
	char		err[256];
	JsonValue  *v;

	if (nalloc == 0)
		return;
	fz_alloc_arm(1 + (long) (fz_hash(data, size) % (uint64_t) nalloc));
	v = json_parse((const char *) data, size, err, sizeof(err));
	fz_alloc_disarm();
	CHECK(fz_alloc_failed);
	CHECK(v == NULL);
	CHECK(!valid || strcmp(err, "out of memory") == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char		err[256];
	JsonValue  *v;
	JsonValue  *v2;
	AbBuf		t1;
	AbBuf		t2;
	long		nalloc;

	fz_alloc_arm(0);
	v = json_parse((const char *) data, size, err, sizeof(err));
	nalloc = fz_alloc_disarm();
	check_parse_oom(data, size, v != NULL, nalloc);
	if (v == NULL)
	{
		char	   *small;
		size_t		smalllen = 1 + size % 24;

		CHECK(err[0] != '\0' && strlen(err) < sizeof(err));
		/* a short error buffer is filled exactly, never overrun */
		small = malloc(smalllen);
		CHECK(small != NULL);
		CHECK(json_parse((const char *) data, size, small, smalllen) == NULL);
		CHECK(strlen(small) < smalllen);
		free(small);
		CHECK(json_parse((const char *) data, size, NULL, 0) == NULL);
		check_escape(data, size);
		return 0;
	}
	CHECK(err[0] == '\0');
	CHECK(check_tree(v) <= JSON_MAX_DEPTH);

	/* write -> parse gives the same tree; write again: the same bytes */
	abuf_init(&t1);
	abuf_init(&t2);
	write_value(&t1, v);
	CHECK(!t1.oom);
	v2 = json_parse(t1.data, t1.len, err, sizeof(err));
	if (v2 == NULL)
		fprintf(stderr, "rewritten JSON rejected: %s\n", err);
	CHECK(v2 != NULL);
	CHECK(tree_eq(v, v2));
	write_value(&t2, v2);
	CHECK(bytes_eq(t1.data, t1.len, t2.data, t2.len));
	abuf_free(&t1);
	abuf_free(&t2);
	json_free(v2);
	json_free(v);

	check_escape(data, size);
	return 0;
}
