/*
 * json.c
 *		Strict recursive-descent JSON reader building a JsonValue tree, and
 *		JSON string escaping.  See json.h.
 *
 * The reader works on a byte range (the text need not be NUL-terminated),
 * never reads outside it, and frees whatever it has built when it fails.
 * Recursion is bounded by JSON_MAX_DEPTH.  Errors report a line and column
 * (counted in characters, 1-based) of where the problem was seen.
 */
#include <errno.h>
#include <inttypes.h>
#include <locale.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

typedef struct JsonParser
{
	const unsigned char *start;
	const unsigned char *p;		/* next byte to read */
	const unsigned char *end;
	char	   *errbuf;
	size_t		errlen;
	bool		failed;
} JsonParser;

static JsonValue *parse_value(JsonParser *ps, int depth);

static void json_error(JsonParser *ps, const char *fmt,...)
			__attribute__((format(printf, 2, 3)));

/* record the first error, prefixed with the position of ps->p */
static void
json_error(JsonParser *ps, const char *fmt,...)
{
	const unsigned char *q;
	int			line = 1;
	int			column = 1;
	int			n;
	va_list		ap;

	if (ps->failed)
		return;
	ps->failed = true;
	if (ps->errbuf == NULL || ps->errlen == 0)
		return;

	for (q = ps->start; q < ps->p; q++)
	{
		if (*q == '\n')
		{
			line++;
			column = 1;
		}
		else if ((*q & 0xC0) != 0x80)
			column++;
	}
	n = snprintf(ps->errbuf, ps->errlen,
				 "invalid JSON at line %d, column %d: ", line, column);
	if (n < 0 || (size_t) n >= ps->errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(ps->errbuf + n, ps->errlen - n, fmt, ap);
	va_end(ap);
}

static void
json_oom(JsonParser *ps)
{
	if (ps->failed)
		return;
	ps->failed = true;
	if (ps->errbuf != NULL && ps->errlen > 0)
		snprintf(ps->errbuf, ps->errlen, "out of memory");
}

/* complain about whatever is at ps->p */
static void
json_unexpected(JsonParser *ps, const char *expected)
{
	if (ps->p >= ps->end)
		json_error(ps, "expected %s, found end of input", expected);
	else if (*ps->p >= 0x21 && *ps->p < 0x7F)
		json_error(ps, "expected %s, found '%c'", expected, *ps->p);
	else
		json_error(ps, "expected %s, found byte 0x%02X", expected, *ps->p);
}

static void
skip_ws(JsonParser *ps)
{
	while (ps->p < ps->end &&
		   (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' ||
			*ps->p == '\r'))
		ps->p++;
}

static JsonValue *
new_value(JsonParser *ps, JvType type)
{
	JsonValue  *v = calloc(1, sizeof(JsonValue));

	if (v == NULL)
		json_oom(ps);
	else
		v->type = type;
	return v;
}

/*
 * Length of the valid UTF-8 sequence of two to four bytes at p (no more
 * than n bytes available), or 0 if it is not one: overlong forms, UTF-16
 * surrogates and code points above U+10FFFF are invalid.
 */
static int
utf8_seq_len(const unsigned char *p, size_t n)
{
	unsigned char c = p[0];
	int			len;
	unsigned char lo = 0x80;
	unsigned char hi = 0xBF;
	int			i;

	if (c >= 0xC2 && c <= 0xDF)
		len = 2;
	else if (c >= 0xE0 && c <= 0xEF)
	{
		len = 3;
		if (c == 0xE0)
			lo = 0xA0;
		else if (c == 0xED)
			hi = 0x9F;
	}
	else if (c >= 0xF0 && c <= 0xF4)
	{
		len = 4;
		if (c == 0xF0)
			lo = 0x90;
		else if (c == 0xF4)
			hi = 0x8F;
	}
	else
		return 0;

	if (n < (size_t) len)
		return 0;
	if (p[1] < lo || p[1] > hi)
		return 0;
	for (i = 2; i < len; i++)
	{
		if ((p[i] & 0xC0) != 0x80)
			return 0;
	}
	return len;
}


/* the four hex digits after "\u" at ps->p; -1 (error reported) if bad */
static long
parse_hex4(JsonParser *ps)
{
	long		cp = 0;
	int			i;

	if (ps->end - ps->p < 4)
	{
		json_error(ps, "incomplete \\u escape");
		return -1;
	}
	for (i = 0; i < 4; i++)
	{
		unsigned char c = ps->p[i];

		cp <<= 4;
		if (c >= '0' && c <= '9')
			cp |= c - '0';
		else if (c >= 'a' && c <= 'f')
			cp |= c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			cp |= c - 'A' + 10;
		else
		{
			json_error(ps, "invalid \\u escape: expected four hex digits");
			return -1;
		}
	}
	ps->p += 4;
	return cp;
}

/* a "\uXXXX" escape (ps->p just past the 'u'), possibly a surrogate pair */
static bool
parse_unicode_escape(JsonParser *ps, AbBuf *out)
{
	const unsigned char *esc = ps->p - 2;
	long		cp = parse_hex4(ps);

	if (cp < 0)
		return false;
	if (cp >= 0xDC00 && cp <= 0xDFFF)
	{
		ps->p = esc;
		json_error(ps, "invalid \\u escape: lone low surrogate");
		return false;
	}
	if (cp >= 0xD800 && cp <= 0xDBFF)
	{
		long		lo;

		if (ps->end - ps->p < 2 || ps->p[0] != '\\' || ps->p[1] != 'u')
		{
			ps->p = esc;
			json_error(ps, "invalid \\u escape: high surrogate not followed by a low surrogate");
			return false;
		}
		ps->p += 2;
		lo = parse_hex4(ps);
		if (lo < 0)
			return false;
		if (lo < 0xDC00 || lo > 0xDFFF)
		{
			ps->p = esc;
			json_error(ps, "invalid \\u escape: high surrogate not followed by a low surrogate");
			return false;
		}
		cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
	}
	abuf_append_utf8(out, (unsigned long) cp);
	return true;
}

/* a string literal at ps->p (which is '"'), decoded into out */
static bool
parse_string(JsonParser *ps, AbBuf *out)
{
	ps->p++;					/* the opening quote */
	for (;;)
	{
		const unsigned char *run = ps->p;
		unsigned char c;

		/* copy plain ASCII in one go */
		while (ps->p < ps->end && *ps->p >= 0x20 && *ps->p < 0x80 &&
			   *ps->p != '"' && *ps->p != '\\')
			ps->p++;
		if (ps->p > run)
			abuf_append(out, run, ps->p - run);

		if (ps->p >= ps->end)
		{
			json_error(ps, "unterminated string");
			return false;
		}
		c = *ps->p;
		if (c == '"')
		{
			ps->p++;
			break;
		}
		else if (c == '\\')
		{
			if (ps->end - ps->p < 2)
			{
				ps->p++;
				json_error(ps, "unterminated string");
				return false;
			}
			ps->p += 2;
			switch (ps->p[-1])
			{
				case '"':
					abuf_appendc(out, '"');
					break;
				case '\\':
					abuf_appendc(out, '\\');
					break;
				case '/':
					abuf_appendc(out, '/');
					break;
				case 'b':
					abuf_appendc(out, '\b');
					break;
				case 'f':
					abuf_appendc(out, '\f');
					break;
				case 'n':
					abuf_appendc(out, '\n');
					break;
				case 'r':
					abuf_appendc(out, '\r');
					break;
				case 't':
					abuf_appendc(out, '\t');
					break;
				case 'u':
					if (!parse_unicode_escape(ps, out))
						return false;
					break;
				default:
					ps->p -= 2;
					json_error(ps, "invalid escape sequence in string");
					return false;
			}
		}
		else if (c < 0x20)
		{
			json_error(ps, "control character 0x%02X in string must be escaped",
					   c);
			return false;
		}
		else
		{
			int			n = utf8_seq_len(ps->p, ps->end - ps->p);

			if (n == 0)
			{
				json_error(ps, "invalid UTF-8 in string");
				return false;
			}
			abuf_append(out, ps->p, n);
			ps->p += n;
		}
	}
	if (out->oom)
	{
		json_oom(ps);
		return false;
	}
	return true;
}

static JsonValue *
parse_string_value(JsonParser *ps)
{
	AbBuf		b;
	JsonValue  *v;

	abuf_init(&b);
	if (!parse_string(ps, &b))
	{
		abuf_free(&b);
		return NULL;
	}
	v = new_value(ps, JV_STRING);
	if (v == NULL)
	{
		abuf_free(&b);
		return NULL;
	}
	v->len = b.len;
	v->string = abuf_steal(&b);
	if (v->string == NULL)
	{
		free(v);
		json_oom(ps);
		return NULL;
	}
	return v;
}

static bool
is_digit(const JsonParser *ps)
{
	return ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9';
}

/* strtod(), but always with '.' as the decimal point whatever the locale */
static bool
c_strtod(const char *lit, double *result)
{
	const char *dp = localeconv()->decimal_point;
	const char *dot = strchr(lit, '.');

	if (dot != NULL && dp != NULL && strcmp(dp, ".") != 0)
	{
		AbBuf		b;

		abuf_init(&b);
		abuf_append(&b, lit, dot - lit);
		abuf_appends(&b, dp);
		abuf_appends(&b, dot + 1);
		if (b.oom)
		{
			abuf_free(&b);
			return false;
		}
		*result = strtod(b.data, NULL);
		abuf_free(&b);
		return true;
	}
	*result = strtod(lit, NULL);
	return true;
}

static JsonValue *
parse_number(JsonParser *ps)
{
	const unsigned char *s = ps->p;
	bool		neg = false;
	bool		integral = true;
	JsonValue  *v;

	if (*ps->p == '-')
	{
		neg = true;
		ps->p++;
	}
	if (!is_digit(ps))
	{
		json_unexpected(ps, "a digit");
		return NULL;
	}
	if (*ps->p == '0')
	{
		ps->p++;
		if (is_digit(ps))
		{
			json_error(ps, "leading zeros are not allowed in numbers");
			return NULL;
		}
	}
	else
		while (is_digit(ps))
			ps->p++;
	if (ps->p < ps->end && *ps->p == '.')
	{
		integral = false;
		ps->p++;
		if (!is_digit(ps))
		{
			json_unexpected(ps, "a digit after the decimal point");
			return NULL;
		}
		while (is_digit(ps))
			ps->p++;
	}
	if (ps->p < ps->end && (*ps->p == 'e' || *ps->p == 'E'))
	{
		integral = false;
		ps->p++;
		if (ps->p < ps->end && (*ps->p == '+' || *ps->p == '-'))
			ps->p++;
		if (!is_digit(ps))
		{
			json_unexpected(ps, "a digit in the exponent");
			return NULL;
		}
		while (is_digit(ps))
			ps->p++;
	}

	v = new_value(ps, JV_NUMBER);
	if (v == NULL)
		return NULL;
	v->len = ps->p - s;
	v->string = malloc(v->len + 1);
	if (v->string == NULL)
	{
		free(v);
		json_oom(ps);
		return NULL;
	}
	memcpy(v->string, s, v->len);
	v->string[v->len] = '\0';

	if (integral)
	{
		/* exact int64 when it fits */
		uint64_t	mag = 0;
		uint64_t	limit = neg ? (uint64_t) INT64_MAX + 1 : (uint64_t) INT64_MAX;
		const char *d = v->string + (neg ? 1 : 0);
		bool		fits = true;

		for (; *d; d++)
		{
			unsigned int digit = (unsigned int) (*d - '0');

			if (mag > (limit - digit) / 10)
			{
				fits = false;
				break;
			}
			mag = mag * 10 + digit;
		}
		if (fits)
		{
			v->is_int = true;
			if (neg)
				v->integer = mag == (uint64_t) INT64_MAX + 1 ?
					INT64_MIN : -(int64_t) mag;
			else
				v->integer = (int64_t) mag;
		}
	}
	if (!c_strtod(v->string, &v->number))
	{
		json_free(v);
		json_oom(ps);
		return NULL;
	}
	return v;
}

static JsonValue *
parse_literal(JsonParser *ps)
{
	static const struct
	{
		const char *word;
		JvType		type;
		bool		boolean;
	}			literals[] = {
		{"true", JV_BOOL, true},
		{"false", JV_BOOL, false},
		{"null", JV_NULL, false},
	};
	size_t		i;

	for (i = 0; i < sizeof(literals) / sizeof(literals[0]); i++)
	{
		size_t		n = strlen(literals[i].word);

		if ((size_t) (ps->end - ps->p) >= n &&
			memcmp(ps->p, literals[i].word, n) == 0)
		{
			JsonValue  *v = new_value(ps, literals[i].type);

			if (v != NULL)
			{
				v->boolean = literals[i].boolean;
				ps->p += n;
			}
			return v;
		}
	}
	json_unexpected(ps, "a JSON value");
	return NULL;
}

/* make room for one more element in an array of elsize-byte elements */
static bool
grow(void **arr, size_t *cap, size_t count, size_t elsize)
{
	size_t		ncap;
	void	   *n;

	if (count < *cap)
		return true;
	ncap = *cap ? *cap * 2 : 4;
	if (ncap > ((size_t) -1) / elsize)
		return false;
	n = realloc(*arr, ncap * elsize);
	if (n == NULL)
		return false;
	*arr = n;
	*cap = ncap;
	return true;
}

static JsonValue *
parse_array(JsonParser *ps, int depth)
{
	JsonValue  *v = new_value(ps, JV_ARRAY);
	size_t		cap = 0;

	if (v == NULL)
		return NULL;
	ps->p++;					/* '[' */
	skip_ws(ps);
	if (ps->p < ps->end && *ps->p == ']')
	{
		ps->p++;
		return v;
	}
	for (;;)
	{
		JsonValue  *item;

		if (!grow((void **) &v->items, &cap, v->count, sizeof(JsonValue *)))
		{
			json_oom(ps);
			json_free(v);
			return NULL;
		}
		item = parse_value(ps, depth);
		if (item == NULL)
		{
			json_free(v);
			return NULL;
		}
		v->items[v->count++] = item;
		skip_ws(ps);
		if (ps->p < ps->end && *ps->p == ',')
		{
			ps->p++;
			continue;
		}
		if (ps->p < ps->end && *ps->p == ']')
		{
			ps->p++;
			return v;
		}
		json_unexpected(ps, "',' or ']'");
		json_free(v);
		return NULL;
	}
}

static int
member_cmp(const void *a, const void *b)
{
	const JsonMember *ma = *(const JsonMember *const *) a;
	const JsonMember *mb = *(const JsonMember *const *) b;
	size_t		n = ma->keylen < mb->keylen ? ma->keylen : mb->keylen;
	int			c = memcmp(ma->key, mb->key, n);

	if (c != 0)
		return c;
	return ma->keylen < mb->keylen ? -1 : ma->keylen > mb->keylen ? 1 : 0;
}

/* find a key that occurs twice; false on OOM */
static bool
find_duplicate(const JsonValue *v, const JsonMember **dup)
{
	const JsonMember **sorted;
	size_t		i;

	*dup = NULL;
	if (v->count < 2)
		return true;
	sorted = malloc(v->count * sizeof(JsonMember *));
	if (sorted == NULL)
		return false;
	for (i = 0; i < v->count; i++)
		sorted[i] = &v->members[i];
	qsort(sorted, v->count, sizeof(JsonMember *), member_cmp);
	for (i = 1; i < v->count; i++)
	{
		if (member_cmp(&sorted[i - 1], &sorted[i]) == 0)
		{
			*dup = sorted[i];
			break;
		}
	}
	free(sorted);
	return true;
}

static JsonValue *
parse_object(JsonParser *ps, int depth)
{
	JsonValue  *v = new_value(ps, JV_OBJECT);
	const unsigned char *open = ps->p;
	size_t		cap = 0;
	const JsonMember *dup;

	if (v == NULL)
		return NULL;
	ps->p++;					/* '{' */
	skip_ws(ps);
	if (ps->p < ps->end && *ps->p == '}')
	{
		ps->p++;
		return v;
	}
	for (;;)
	{
		AbBuf		key;
		JsonMember *m;

		if (ps->p >= ps->end || *ps->p != '"')
		{
			json_unexpected(ps, "a string (object key)");
			json_free(v);
			return NULL;
		}
		if (!grow((void **) &v->members, &cap, v->count, sizeof(JsonMember)))
		{
			json_oom(ps);
			json_free(v);
			return NULL;
		}
		abuf_init(&key);
		if (!parse_string(ps, &key))
		{
			abuf_free(&key);
			json_free(v);
			return NULL;
		}
		m = &v->members[v->count];
		m->keylen = key.len;
		m->key = abuf_steal(&key);
		m->value = NULL;
		if (m->key == NULL)
		{
			json_oom(ps);
			json_free(v);
			return NULL;
		}
		v->count++;

		skip_ws(ps);
		if (ps->p >= ps->end || *ps->p != ':')
		{
			json_unexpected(ps, "':'");
			json_free(v);
			return NULL;
		}
		ps->p++;
		m->value = parse_value(ps, depth);
		if (m->value == NULL)
		{
			json_free(v);
			return NULL;
		}
		skip_ws(ps);
		if (ps->p < ps->end && *ps->p == ',')
		{
			ps->p++;
			skip_ws(ps);
			continue;
		}
		if (ps->p < ps->end && *ps->p == '}')
		{
			ps->p++;
			break;
		}
		json_unexpected(ps, "',' or '}'");
		json_free(v);
		return NULL;
	}

	if (!find_duplicate(v, &dup))
	{
		json_oom(ps);
		json_free(v);
		return NULL;
	}
	if (dup != NULL)
	{
		ps->p = open;
		json_error(ps, "duplicate key \"%.64s\" in object", dup->key);
		json_free(v);
		return NULL;
	}
	return v;
}

static JsonValue *
parse_value(JsonParser *ps, int depth)
{
	skip_ws(ps);
	if (ps->p >= ps->end)
	{
		json_unexpected(ps, "a JSON value");
		return NULL;
	}
	switch (*ps->p)
	{
		case '{':
		case '[':
			if (depth >= JSON_MAX_DEPTH)
			{
				json_error(ps, "nesting is deeper than %d levels",
						   JSON_MAX_DEPTH);
				return NULL;
			}
			if (*ps->p == '{')
				return parse_object(ps, depth + 1);
			return parse_array(ps, depth + 1);
		case '"':
			return parse_string_value(ps);
		case '-':
		case '0':
		case '1':
		case '2':
		case '3':
		case '4':
		case '5':
		case '6':
		case '7':
		case '8':
		case '9':
			return parse_number(ps);
		default:
			return parse_literal(ps);
	}
}

JsonValue *
json_parse(const char *text, size_t len, char *errbuf, size_t errlen)
{
	JsonParser	ps;
	JsonValue  *v;

	if (errbuf != NULL && errlen > 0)
		errbuf[0] = '\0';
	if (text == NULL)
		len = 0;
	ps.start = (const unsigned char *) (text ? text : "");
	ps.p = ps.start;
	ps.end = ps.start + len;
	ps.errbuf = errbuf;
	ps.errlen = errlen;
	ps.failed = false;

	v = parse_value(&ps, 0);
	if (v == NULL)
	{
		/* every failure path reports, but make sure of a message */
		json_error(&ps, "invalid input");
		return NULL;
	}
	skip_ws(&ps);
	if (ps.p < ps.end)
	{
		json_error(&ps, "unexpected data after the JSON value");
		json_free(v);
		return NULL;
	}
	return v;
}

void
json_free(JsonValue *v)
{
	size_t		i;

	if (v == NULL)
		return;
	free(v->string);
	if (v->type == JV_ARRAY)
	{
		for (i = 0; i < v->count; i++)
			json_free(v->items[i]);
	}
	else if (v->type == JV_OBJECT)
	{
		for (i = 0; i < v->count; i++)
		{
			free(v->members[i].key);
			json_free(v->members[i].value);
		}
	}
	free(v->items);
	free(v->members);
	free(v);
}

const JsonValue *
json_get(const JsonValue *obj, const char *key)
{
	size_t		keylen;
	size_t		i;

	if (obj == NULL || obj->type != JV_OBJECT || key == NULL)
		return NULL;
	keylen = strlen(key);
	for (i = 0; i < obj->count; i++)
	{
		const JsonMember *m = &obj->members[i];

		if (m->keylen == keylen && memcmp(m->key, key, keylen) == 0)
			return m->value;
	}
	return NULL;
}

const char *
json_type_name(JvType type)
{
	switch (type)
	{
		case JV_NULL:
			return "null";
		case JV_BOOL:
			return "boolean";
		case JV_NUMBER:
			return "number";
		case JV_STRING:
			return "string";
		case JV_ARRAY:
			return "array";
		case JV_OBJECT:
			return "object";
	}
	return "unknown";
}

bool
json_escape(AbBuf *out, const char *s)
{
	const unsigned char *p = (const unsigned char *) s;

	if (s == NULL)
		return abuf_appends(out, "null");

	abuf_appendc(out, '"');
	while (*p)
	{
		const unsigned char *run = p;

		/* printable ASCII other than '"' and '\\' goes through as is */
		while (*p >= 0x20 && *p < 0x7F && *p != '"' && *p != '\\')
			p++;
		if (p > run)
			abuf_append(out, run, p - run);
		if (*p == '\0')
			break;

		switch (*p)
		{
			case '"':
				abuf_appends(out, "\\\"");
				break;
			case '\\':
				abuf_appends(out, "\\\\");
				break;
			case '\b':
				abuf_appends(out, "\\b");
				break;
			case '\f':
				abuf_appends(out, "\\f");
				break;
			case '\n':
				abuf_appends(out, "\\n");
				break;
			case '\r':
				abuf_appends(out, "\\r");
				break;
			case '\t':
				abuf_appends(out, "\\t");
				break;
			default:
				if (*p < 0x80)
				{
					/* other control characters, and DEL */
					abuf_appendf(out, "\\u%04X", *p);
				}
				else
				{
					int			n = utf8_seq_len(p, strnlen((const char *) p, 4));

					if (n == 0)
						abuf_appends(out, "\xEF\xBF\xBD");	/* U+FFFD */
					else
					{
						abuf_append(out, p, n);
						p += n - 1;
					}
				}
				break;
		}
		p++;
	}
	abuf_appendc(out, '"');
	return !out->oom;
}

/* ----------------------------------------------------------------
 * Writing (pretty-printed, two spaces per level)
 * ----------------------------------------------------------------
 */

static void
out_newline(AbBuf *b, int indent)
{
	int			i;

	abuf_appendc(b, '\n');
	for (i = 0; i < indent; i++)
		abuf_append(b, "  ", 2);
}

void
json_out_open(JsonOut *o, AbBuf *b, int indent, char bracket)
{
	o->b = b;
	o->indent = indent + 1;
	o->first = true;
	abuf_appendc(b, bracket);
}

void
json_out_close(JsonOut *o, char bracket)
{
	if (!o->first)
		out_newline(o->b, o->indent - 1);
	abuf_appendc(o->b, bracket);
}

/* start the next element of an array */
void
json_out_elem(JsonOut *o)
{
	if (!o->first)
		abuf_appendc(o->b, ',');
	o->first = false;
	out_newline(o->b, o->indent);
}

/* start the next member of an object: its key and the colon */
void
json_out_key(JsonOut *o, const char *key)
{
	json_out_elem(o);
	json_escape(o->b, key);
	abuf_append(o->b, ": ", 2);
}

void
json_out_str(JsonOut *o, const char *key, const char *value)
{
	json_out_key(o, key);
	json_escape(o->b, value);
}

void
json_out_int(JsonOut *o, const char *key, int64_t value)
{
	json_out_key(o, key);
	abuf_appendf(o->b, "%" PRId64, value);
}

void
json_out_bool(JsonOut *o, const char *key, bool value)
{
	json_out_key(o, key);
	abuf_appends(o->b, value ? "true" : "false");
}
