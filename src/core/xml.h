/*
 * xml.h
 *		Just enough XML for S3 response bodies: find an element, iterate over
 *		sibling elements, decode text.  Not a validating parser; S3 bodies are
 *		machine-written and small, with no CDATA or comments that matter.
 *		Pure C: no PostgreSQL headers.
 */
#ifndef AIBACKUP_XML_H
#define AIBACKUP_XML_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

/* A region of the document: the content between <Tag ...> and </Tag>. */
typedef struct XmlSpan
{
	const char *p;
	size_t		len;
} XmlSpan;

static inline XmlSpan
xml_span(const char *p, size_t len)
{
	XmlSpan		s = {p, len};

	return s;
}

/*
 * Find the first element named tag (exact, case-sensitive, namespace prefix
 * not considered) inside span.  Handles attributes and self-closing
 * <Tag/> (empty content).  Skips the <?xml ...?> declaration.  Returns false
 * if there is none.
 */
extern bool xml_find(XmlSpan span, const char *tag, XmlSpan *content);

/*
 * Iterate over successive elements named tag inside span: set *it = span
 * first, then call until it returns false; each call yields the next
 * element's content and advances *it past it.
 */
extern bool xml_next(XmlSpan *it, const char *tag, XmlSpan *content);

/* Append content's text to out with entities decoded (&amp; &lt; &gt;
 * &quot; &apos; &#N; &#xN;). */
extern bool xml_text(XmlSpan content, AbBuf *out);

/* xml_find + xml_text into a malloc'd string; NULL if absent */
extern char *xml_find_text(XmlSpan span, const char *tag);

/* Escape s for use as XML text (DeleteObjects keys). */
extern bool xml_escape(AbBuf *out, const char *s);

#endif							/* AIBACKUP_XML_H */
