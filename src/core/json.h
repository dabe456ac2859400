/*
 * json.h
 *		A small, strict JSON (RFC 8259) reader that builds a tree, and the
 *		string escaping a JSON writer needs.  Pure C: no PostgreSQL headers;
 *		trees are malloc'd and freed with json_free().
 *
 * Strict means: exactly one value, optionally surrounded by whitespace;
 * no comments, trailing commas, single quotes, NaN, leading zeros or a
 * byte-order mark; strings must be valid UTF-8 with control characters
 * escaped; lone UTF-16 surrogates are rejected; duplicate keys in an object
 * are rejected (readers would disagree on which one counts); nesting is
 * limited to JSON_MAX_DEPTH.  The type names (JsonValue, JvType, JV_*) and
 * functions avoid the names PostgreSQL's own JSON code uses.
 */
#ifndef AIBACKUP_JSON_H
#define AIBACKUP_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define JSON_MAX_DEPTH	64

typedef enum JvType
{
	JV_NULL,
	JV_BOOL,
	JV_NUMBER,
	JV_STRING,
	JV_ARRAY,
	JV_OBJECT
} JvType;

typedef struct JsonValue JsonValue;

typedef struct JsonMember
{
	char	   *key;			/* UTF-8, NUL-terminated */
	size_t		keylen;			/* bytes; a "\u0000" escape counts as one */
	JsonValue  *value;
} JsonMember;

struct JsonValue
{
	JvType		type;
	bool		boolean;		/* JV_BOOL */

	/*
	 * JV_STRING: the decoded text, UTF-8, NUL-terminated; len excludes the
	 * terminator and may be more than strlen() if the text had "\u0000".
	 * JV_NUMBER: the literal as written (e.g. "-1.5e3").  NULL otherwise.
	 */
	char	   *string;
	size_t		len;

	/* JV_NUMBER */
	bool		is_int;			/* integer literal (no fraction or exponent)
								 * that fits in int64 */
	int64_t		integer;		/* the value when is_int */
	double		number;			/* the value as a double (always set) */

	/* JV_ARRAY: items[0..count-1]; JV_OBJECT: members[0..count-1] */
	size_t		count;
	JsonValue **items;
	JsonMember *members;		/* in document order */
};

/*
 * Parse len bytes of text (need not be NUL-terminated).  NULL when it is not
 * valid JSON or on out-of-memory, with a message in errbuf (which may be
 * NULL) such as "invalid JSON at line 3, column 7: expected ',' or '}'".
 */
extern JsonValue *json_parse(const char *text, size_t len,
							 char *errbuf, size_t errlen);

/* free a tree from json_parse(); NULL is fine */
extern void json_free(JsonValue *v);

/*
 * The value of member key in an object, NULL if v is NULL, not an object, or
 * has no such member.  Keys are compared exactly (bytes, case-sensitive).
 */
extern const JsonValue *json_get(const JsonValue *obj, const char *key);

/*
 * Append s as a quoted JSON string: '"' and '\\' and control characters are
 * escaped (\n, \t, ... or \u00XX), valid UTF-8 passes through, and each
 * byte that is not part of valid UTF-8 becomes U+FFFD, so the output is
 * always valid JSON.  NULL appends null.  False on out-of-memory.
 */
extern bool json_escape(AbBuf *out, const char *s);

/* "null", "boolean", "number", "string", "array" or "object" */
extern const char *json_type_name(JvType type);

/*
 * A JSON writer: an object or array being written into an AbBuf, pretty-
 * printed with two spaces per level.  Out-of-memory is remembered in the
 * AbBuf (check it once at the end).  Strings go through json_escape(), so
 * NULL writes null.
 */
typedef struct JsonOut
{
	AbBuf	   *b;
	int			indent;			/* level of the container's contents */
	bool		first;			/* nothing written in it yet */
} JsonOut;

/* open '{' or '[' at nesting level indent (0 for the top) */
extern void json_out_open(JsonOut *o, AbBuf *b, int indent, char bracket);
extern void json_out_close(JsonOut *o, char bracket);

/* start the next element of an array */
extern void json_out_elem(JsonOut *o);

/* start the next member of an object: its key and the colon */
extern void json_out_key(JsonOut *o, const char *key);
extern void json_out_str(JsonOut *o, const char *key, const char *value);
extern void json_out_int(JsonOut *o, const char *key, int64_t value);
extern void json_out_bool(JsonOut *o, const char *key, bool value);

#endif							/* AIBACKUP_JSON_H */
