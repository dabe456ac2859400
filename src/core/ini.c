/*
 * ini.c
 *		A reader of INI text (the AWS shared credentials and config files).
 *		Works on the text in place: no line is copied, so no line is too
 *		long.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ini.h"

/* [*s, *e) trimmed of white space (CR included) on both sides */
static void
trim(const char **s, const char **e)
{
	while (*s < *e && isspace((unsigned char) **s))
		(*s)++;
	while (*e > *s && isspace((unsigned char) (*e)[-1]))
		(*e)--;
}

static bool
span_is(const char *s, const char *e, const char *word, bool nocase)
{
	size_t		n = strlen(word);

	if ((size_t) (e - s) != n)
		return false;
	return nocase ? strncasecmp(s, word, n) == 0 : strncmp(s, word, n) == 0;
}

/*
 * Walk text; for each "key = value" line of [section] call back with the
 * trimmed spans.  Returns whether the section was seen at all.
 */
typedef void (*IniPair) (void *arg, const char *k, const char *ke,
						 const char *v, const char *ve);

static bool
ini_walk(const char *text, const char *section, IniPair cb, void *arg)
{
	const char *p = text;
	bool		in = false;
	bool		seen = false;

	if (strncmp(p, "\xEF\xBB\xBF", 3) == 0)
		p += 3;
	while (*p)
	{
		const char *eol = strchr(p, '\n');
		const char *s = p;
		const char *e = eol ? eol : p + strlen(p);
		const char *sep;
		const char *ke;
		const char *v;

		p = eol ? eol + 1 : e;
		if (s < e && (*s == ' ' || *s == '\t'))
			continue;			/* a continuation line */
		trim(&s, &e);
		if (s == e || *s == '#' || *s == ';')
			continue;
		if (*s == '[')
		{
			const char *close = e;

			while (close > s && close[-1] != ']')
				close--;
			if (close == s)
			{
				in = false;		/* not a section header */
				continue;
			}
			s++;
			close--;
			trim(&s, &close);
			in = span_is(s, close, section, false);
			seen = seen || in;
			continue;
		}
		if (!in)
			continue;
		for (sep = s; sep < e && *sep != '=' && *sep != ':'; sep++);
		if (sep == e)
			continue;
		ke = sep;
		v = sep + 1;
		trim(&s, &ke);
		trim(&v, &e);
		cb(arg, s, ke, v, e);
	}
	return seen;
}

typedef struct IniFind
{
	const char *key;
	const char *v;
	const char *ve;
} IniFind;

static void
find_pair(void *arg, const char *k, const char *ke, const char *v, const char *ve)
{
	IniFind    *f = arg;

	if (span_is(k, ke, f->key, true))
	{
		f->v = v;
		f->ve = ve;
	}
}

char *
ini_get(const char *text, const char *section, const char *key)
{
	IniFind		f = {key, NULL, NULL};
	char	   *out;

	ini_walk(text, section, find_pair, &f);
	if (f.v == NULL)
		return NULL;
	out = malloc(f.ve - f.v + 1);
	if (out)
	{
		memcpy(out, f.v, f.ve - f.v);
		out[f.ve - f.v] = '\0';
	}
	return out;
}

static void
ignore_pair(void *arg, const char *k, const char *ke, const char *v, const char *ve)
{
}

bool
ini_has_section(const char *text, const char *section)
{
	return ini_walk(text, section, ignore_pair, NULL);
}
