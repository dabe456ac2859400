/*
 * ini.c
 *		A reader of INI text (the AWS shared credentials and config files),
 *		with configparser's rules (see ini.h).  Works on the text in place:
 *		no line is copied, so no line is too long.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ini.h"

/* which sections a walk wants */
typedef bool (*IniMatch) (const char *name, size_t len, const void *arg);

typedef struct IniFind
{
	const char *key;
	const char *v;				/* the value found, [v, ve) */
	const char *ve;
	bool		seen;			/* a wanted section exists */
} IniFind;

static bool
is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\f' || c == '\v';
}

/* [*s, *e) trimmed of blanks on both sides */
static void
trim(const char **s, const char **e)
{
	while (*s < *e && is_blank(**s))
		(*s)++;
	while (*e > *s && is_blank((*e)[-1]))
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
 * Find key in the sections match accepts (the last occurrence counts).
 */
static void
ini_walk(const char *doc, IniMatch match, const void *arg, IniFind *f)
{
	const char *p = doc;
	bool		in = false;
	bool		have_key = false;	/* a key line came before in the section */
	size_t		key_indent = 0;

	if (strncmp(p, "\xEF\xBB\xBF", 3) == 0)
		p += 3;
	while (*p)
	{
		const char *s = p;
		const char *e = p + strcspn(p, "\r\n");
		size_t		indent;
		const char *sep;
		const char *ke;
		const char *v;

		p = e;
		if (*p == '\r' && p[1] == '\n')
			p += 2;
		else if (*p)
			p++;
		for (indent = 0; s + indent < e && is_blank(s[indent]); indent++);
		trim(&s, &e);
		if (s == e || *s == '#' || *s == ';')
			continue;
		if (have_key && indent > key_indent)
			continue;			/* continues the value before */
		if (*s == '[')
		{
			const char *close = e;

			while (close > s + 1 && close[-1] != ']')
				close--;
			if (close > s + 2)
			{
				in = match(s + 1, close - 1 - (s + 1), arg);
				f->seen = f->seen || in;
				have_key = false;
				continue;
			}
		}
		for (sep = s; sep < e && *sep != '=' && *sep != ':'; sep++);
		if (sep == e)
			continue;			/* configparser refuses the file */
		have_key = true;
		key_indent = indent;
		if (!in)
			continue;
		ke = sep;
		v = sep + 1;
		trim(&s, &ke);
		trim(&v, &e);
		if (span_is(s, ke, f->key, true))
		{
			f->v = v;
			f->ve = e;
		}
	}
}

static char *
found_value(const IniFind *f)
{
	char	   *out;

	if (f->v == NULL)
		return NULL;
	out = malloc(f->ve - f->v + 1);
	if (out)
	{
		memcpy(out, f->v, f->ve - f->v);
		out[f->ve - f->v] = '\0';
	}
	return out;
}

static bool
match_exact(const char *name, size_t len, const void *arg)
{
	return len == strlen(arg) && strncmp(name, arg, len) == 0;
}

/* key in the sections match accepts, else (if one exists) in [DEFAULT] */
static char *
get_with_default(const char *doc, IniMatch match, const void *arg,
				 const char *key, bool *seen)
{
	IniFind		f = {key, NULL, NULL, false};

	ini_walk(doc, match, arg, &f);
	*seen = f.seen;
	if (f.v == NULL && f.seen)
	{
		IniFind		d = {key, NULL, NULL, false};

		ini_walk(doc, match_exact, "DEFAULT", &d);
		return found_value(&d);
	}
	return found_value(&f);
}

char *
ini_get(const char *doc, const char *section, const char *key)
{
	bool		seen;

	return get_with_default(doc, match_exact, section, key, &seen);
}

bool
ini_has_section(const char *doc, const char *section)
{
	IniFind		f = {"", NULL, NULL, false};

	ini_walk(doc, match_exact, section, &f);
	return f.seen;
}

/*
 * "profile NAME" split on blanks, each word unquoted as shlex would
 * ('...' or "..."): exactly the two words "profile" and the name.
 */
static bool
match_config_profile(const char *name, size_t len, const void *arg)
{
	const char *end = name + len;
	const char *words[3];
	size_t		lens[3];
	int			n = 0;
	const char *p = name;

	while (p < end)
	{
		const char *w;

		while (p < end && is_blank(*p))
			p++;
		if (p == end)
			break;
		if (n == 3)
			return false;
		if (*p == '"' || *p == '\'')
		{
			char		q = *p++;

			w = p;
			while (p < end && *p != q)
				p++;
			if (p == end)
				return false;	/* shlex: no closing quotation */
			words[n] = w;
			lens[n++] = p - w;
			p++;
		}
		else
		{
			w = p;
			while (p < end && !is_blank(*p) && *p != '"' && *p != '\'')
				p++;
			words[n] = w;
			lens[n++] = p - w;
		}
	}
	return n == 2 && lens[0] == 7 && strncmp(words[0], "profile", 7) == 0 &&
		lens[1] == strlen(arg) && strncmp(words[1], arg, lens[1]) == 0;
}

char *
ini_config_get(const char *doc, const char *profile, const char *key)
{
	bool		seen;
	char	   *v = get_with_default(doc, match_config_profile, profile, key, &seen);

	if (!seen && strcmp(profile, "default") == 0)
		v = get_with_default(doc, match_exact, "default", key, &seen);
	return v;
}

bool
ini_config_has_profile(const char *doc, const char *profile)
{
	IniFind		f = {"", NULL, NULL, false};

	ini_walk(doc, match_config_profile, profile, &f);
	return f.seen || (strcmp(profile, "default") == 0 &&
					  ini_has_section(doc, "default"));
}
