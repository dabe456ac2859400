/*
 * xml.c
 *		Just enough XML for S3 response bodies: find an element, iterate over
 *		elements, decode text, escape text.  See xml.h.
 *
 * This file owns the reading of every XML body S3 sends back (listings,
 * multipart answers, error documents, DeleteObjects results) and the
 * escaping of keys put into request bodies.
 *
 * Spans are not NUL-terminated: every scan is bounded by the span's end, so
 * truncated or malformed input (an unterminated tag, a dangling '&', a
 * missing close tag) makes a lookup fail instead of reading past the body.
 * Declarations (<?...?>), comments, DOCTYPE and CDATA sections are skipped
 * while looking for elements; CDATA content counts as text.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "xml.h"

/* what parse_markup found at a '<' */
typedef enum MarkupKind
{
	MARKUP_BAD,					/* unterminated or malformed */
	MARKUP_OTHER,				/* declaration, comment, DOCTYPE */
	MARKUP_CDATA,				/* <![CDATA[ ... ]]> */
	MARKUP_START,				/* <Name ...> or <Name .../> */
	MARKUP_END					/* </Name> */
} MarkupKind;

typedef struct Markup
{
	MarkupKind	kind;
	const char *name;			/* element name, as written (with prefix) */
	size_t		namelen;
	bool		self_closing;	/* <Name/> */
	const char *inner;			/* CDATA content */
	size_t		innerlen;
	const char *after;			/* first byte past the markup */
} Markup;

static bool
is_xml_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* bounded search for a NUL-terminated sequence; NULL if absent */
static const char *
find_seq(const char *p, const char *end, const char *seq)
{
	size_t		n = strlen(seq);

	while ((size_t) (end - p) >= n)
	{
		const char *c = memchr(p, seq[0], (size_t) (end - p - n + 1));

		if (c == NULL)
			return NULL;
		if (memcmp(c, seq, n) == 0)
			return c;
		p = c + 1;
	}
	return NULL;
}

static bool
starts_with(const char *p, const char *end, const char *seq)
{
	size_t		n = strlen(seq);

	return (size_t) (end - p) >= n && memcmp(p, seq, n) == 0;
}

/*
 * Parse the markup starting at p (which points at '<') and ending before
 * end.  Never reads at or past end.
 */
static void
parse_markup(const char *p, const char *end, Markup *m)
{
	const char *q;
	char		quote = 0;
	char		last = 0;

	memset(m, 0, sizeof(Markup));
	m->kind = MARKUP_BAD;
	if (end - p < 2)
		return;

	if (p[1] == '?')
	{
		q = find_seq(p + 2, end, "?>");
		if (q == NULL)
			return;
		m->kind = MARKUP_OTHER;
		m->after = q + 2;
		return;
	}
	if (p[1] == '!')
	{
		int			depth = 0;

		if (starts_with(p, end, "<!--"))
		{
			q = find_seq(p + 4, end, "-->");
			if (q == NULL)
				return;
			m->kind = MARKUP_OTHER;
			m->after = q + 3;
			return;
		}
		if (starts_with(p, end, "<![CDATA["))
		{
			q = find_seq(p + 9, end, "]]>");
			if (q == NULL)
				return;
			m->kind = MARKUP_CDATA;
			m->inner = p + 9;
			m->innerlen = (size_t) (q - (p + 9));
			m->after = q + 3;
			return;
		}
		/* <!DOCTYPE ...>, possibly with an internal subset in [ ] */
		for (q = p + 2; q < end; q++)
		{
			if (quote)
			{
				if (*q == quote)
					quote = 0;
			}
			else if (*q == '"' || *q == '\'')
				quote = *q;
			else if (*q == '[')
				depth++;
			else if (*q == ']')
				depth--;
			else if (*q == '>' && depth <= 0)
			{
				m->kind = MARKUP_OTHER;
				m->after = q + 1;
				return;
			}
		}
		return;
	}

	/* an element tag: start or end */
	q = p + 1;
	if (*q == '/')
	{
		m->kind = MARKUP_END;
		q++;
	}
	else
		m->kind = MARKUP_START;
	m->name = q;
	while (q < end && !is_xml_space(*q) && *q != '/' && *q != '>' &&
		   *q != '<')
		q++;
	m->namelen = (size_t) (q - m->name);
	if (m->namelen == 0)
	{
		m->kind = MARKUP_BAD;
		return;
	}

	/* to the closing '>', skipping quoted attribute values */
	for (; q < end; q++)
	{
		if (quote)
		{
			if (*q == quote)
				quote = 0;
			continue;
		}
		if (*q == '"' || *q == '\'')
		{
			quote = *q;
			last = *q;
			continue;
		}
		if (*q == '<')
			break;				/* a '<' inside a tag: malformed */
		if (*q == '>')
		{
			m->self_closing = (m->kind == MARKUP_START && last == '/');
			m->after = q + 1;
			return;
		}
		if (!is_xml_space(*q))
			last = *q;
	}
	m->kind = MARKUP_BAD;
}

/*
 * Does the element name (as written) match tag?  A tag without ':' is
 * compared with the local name, so <s3:Key> matches "Key".
 */
static bool
name_matches(const char *name, size_t namelen, const char *tag)
{
	size_t		taglen = strlen(tag);

	if (strchr(tag, ':') == NULL)
	{
		const char *colon = memchr(name, ':', namelen);

		while (colon != NULL)
		{
			namelen -= (size_t) (colon + 1 - name);
			name = colon + 1;
			colon = memchr(name, ':', namelen);
		}
	}
	return namelen == taglen && memcmp(name, tag, taglen) == 0;
}

/*
 * Find the first element named tag in [p, end).  On success sets *content
 * to what is between its start and end tags and *elem_end past its end tag.
 */
static bool
find_element(const char *p, const char *end, const char *tag,
			 XmlSpan *content, const char **elem_end)
{
	Markup		m;

	while (p < end)
	{
		const char *lt = memchr(p, '<', (size_t) (end - p));
		const char *q;
		int			depth;

		if (lt == NULL)
			return false;
		parse_markup(lt, end, &m);
		if (m.kind == MARKUP_BAD)
			return false;
		p = m.after;
		if (m.kind != MARKUP_START || !name_matches(m.name, m.namelen, tag))
			continue;

		if (m.self_closing)
		{
			content->p = m.after;
			content->len = 0;
			*elem_end = m.after;
			return true;
		}

		/* the matching end tag, counting nested elements of that name */
		depth = 1;
		q = m.after;
		while (q < end)
		{
			const char *lt2 = memchr(q, '<', (size_t) (end - q));
			Markup		m2;

			if (lt2 == NULL)
				return false;
			parse_markup(lt2, end, &m2);
			if (m2.kind == MARKUP_BAD)
				return false;
			q = m2.after;
			if ((m2.kind != MARKUP_START && m2.kind != MARKUP_END) ||
				!name_matches(m2.name, m2.namelen, tag))
				continue;
			if (m2.kind == MARKUP_END)
			{
				if (--depth == 0)
				{
					content->p = m.after;
					content->len = (size_t) (lt2 - m.after);
					*elem_end = m2.after;
					return true;
				}
			}
			else if (!m2.self_closing)
				depth++;
		}
		return false;
	}
	return false;
}

bool
xml_find(XmlSpan span, const char *tag, XmlSpan *content)
{
	const char *elem_end;
	XmlSpan		c;

	if (tag == NULL || tag[0] == '\0' || content == NULL)
		return false;
	if (span.p == NULL || span.len == 0)
		return false;
	if (!find_element(span.p, span.p + span.len, tag, &c, &elem_end))
		return false;
	*content = c;
	return true;
}

bool
xml_next(XmlSpan *it, const char *tag, XmlSpan *content)
{
	const char *elem_end;
	XmlSpan		c;

	if (it == NULL || tag == NULL || tag[0] == '\0' || content == NULL)
		return false;
	if (it->p == NULL || it->len == 0)
		return false;
	if (!find_element(it->p, it->p + it->len, tag, &c, &elem_end))
	{
		/* nothing more: leave the iterator exhausted */
		it->p += it->len;
		it->len = 0;
		return false;
	}
	*content = c;
	it->len -= (size_t) (elem_end - it->p);
	it->p = elem_end;
	return true;
}


/*
 * Decode the entity starting at p ('&') into out; return the first byte
 * after it.  Anything that is not a known, well-formed entity is copied
 * as it stands (just the '&'), so text is never lost.
 */
static const char *
decode_entity(const char *p, const char *end, AbBuf *out)
{
	static const struct
	{
		const char *name;
		char		c;
	}			named[] = {
		{"amp", '&'}, {"lt", '<'}, {"gt", '>'}, {"quot", '"'}, {"apos", '\''}
	};
	const char *semi = NULL;
	const char *q;
	size_t		n;
	size_t		i;

	/* the longest form we accept is &#x10FFFF; */
	for (q = p + 1; q < end && q - p <= 10; q++)
	{
		if (*q == ';')
		{
			semi = q;
			break;
		}
	}
	if (semi == NULL)
		goto literal;
	n = (size_t) (semi - (p + 1));

	if (n >= 2 && p[1] == '#')
	{
		unsigned long cp = 0;
		bool		hex = (p[2] == 'x' || p[2] == 'X');
		const char *d = p + (hex ? 3 : 2);

		if (d == semi)
			goto literal;
		for (; d < semi; d++)
		{
			int			v;

			if (*d >= '0' && *d <= '9')
				v = *d - '0';
			else if (hex && *d >= 'a' && *d <= 'f')
				v = *d - 'a' + 10;
			else if (hex && *d >= 'A' && *d <= 'F')
				v = *d - 'A' + 10;
			else
				goto literal;
			cp = cp * (hex ? 16 : 10) + (unsigned long) v;
			if (cp > 0x10FFFF)
				goto literal;
		}
		/* no NUL (it would cut the C string), no surrogates */
		if (cp == 0 || (cp >= 0xD800 && cp <= 0xDFFF))
			goto literal;
		abuf_append_utf8(out, cp);
		return semi + 1;
	}
	for (i = 0; i < sizeof(named) / sizeof(named[0]); i++)
	{
		if (strlen(named[i].name) == n &&
			memcmp(p + 1, named[i].name, n) == 0)
		{
			abuf_appendc(out, named[i].c);
			return semi + 1;
		}
	}

literal:
	abuf_appendc(out, '&');
	return p + 1;
}

bool
xml_text(XmlSpan content, AbBuf *out)
{
	const char *p = content.p;
	const char *end;

	if (out == NULL || out->oom)
		return false;
	if (!abuf_append(out, "", 0))
		return false;
	if (p == NULL || content.len == 0)
		return true;
	end = p + content.len;

	while (p < end)
	{
		const char *run = p;
		Markup		m;

		/* a run of plain text */
		while (p < end && *p != '<' && *p != '&')
			p++;
		if (p > run)
			abuf_append(out, run, (size_t) (p - run));
		if (p >= end)
			break;

		if (*p == '&')
		{
			p = decode_entity(p, end, out);
			continue;
		}

		/* markup: CDATA is text, the rest (child tags, comments) is not */
		parse_markup(p, end, &m);
		if (m.kind == MARKUP_BAD)
			return false;
		if (m.kind == MARKUP_CDATA)
			abuf_append(out, m.inner, m.innerlen);
		p = m.after;
	}
	return !out->oom;
}

char *
xml_find_text(XmlSpan span, const char *tag)
{
	XmlSpan		c;
	AbBuf		b;

	if (!xml_find(span, tag, &c))
		return NULL;
	abuf_init(&b);
	if (!xml_text(c, &b))
	{
		abuf_free(&b);
		return NULL;
	}
	return abuf_steal(&b);
}

/*
 * Escape s as XML character data.  Besides the five predefined entities,
 * CR and LF are written as character references, as AWS asks for object
 * keys in XML bodies (a literal CR would be normalized away by the
 * server's parser), and so is TAB.  Other control characters cannot be
 * represented in XML 1.0 at all; they are written as character references
 * too and the server decides.
 */
bool
xml_escape(AbBuf *out, const char *s)
{
	const char *run;

	if (out == NULL || out->oom || s == NULL)
		return false;
	if (!abuf_append(out, "", 0))
		return false;
	run = s;
	for (; *s; s++)
	{
		unsigned char c = (unsigned char) *s;
		const char *rep = NULL;

		switch (c)
		{
			case '&':
				rep = "&amp;";
				break;
			case '<':
				rep = "&lt;";
				break;
			case '>':
				rep = "&gt;";
				break;
			case '"':
				rep = "&quot;";
				break;
			case '\'':
				rep = "&apos;";
				break;
			default:
				break;
		}
		if (rep == NULL && c >= 0x20)
			continue;
		if (s > run)
			abuf_append(out, run, (size_t) (s - run));
		if (rep != NULL)
			abuf_appends(out, rep);
		else
			abuf_appendf(out, "&#%u;", (unsigned int) c);
		run = s + 1;
	}
	if (s > run)
		abuf_append(out, run, (size_t) (s - run));
	return !out->oom;
}
