/*
 * fuzz_xml.c
 *		libFuzzer target for the XML reader that parses every S3 answer
 *		(src/core/xml.c): listings, multipart answers, error documents,
 *		DeleteObjects results.  The bytes come from the network, from
 *		whatever answers on the endpoint.
 *
 * Two passes over every input:
 *
 * 1. The bytes as an S3 answer, read the way the client reads one
 *	  (s3_object.c, s3_multipart.c, s3_request.c: the same xml_find /
 *	  xml_next / xml_find_text calls on the same element names).  Nothing
 *	  may crash, leak or read outside the body, and every span handed out
 *	  must lie inside the one searched, start after a '>' and end at the
 *	  matching "</Name"; xml_next() must move forward; xml_find() must find
 *	  what the first xml_next() finds; decoded text is never longer than
 *	  its source, and escaping it again and decoding gives it back.
 *
 * 2. The bytes, cut at NUL bytes, as object keys: a ListObjectsV2 page, a
 *	  ListMultipartUploads page, a DeleteObjects result and an error
 *	  document built with xml_escape() around them must read back as
 *	  exactly those keys (escape then decode is the identity).
 *
 * And xml_text(), xml_find_text() and xml_escape() are run with one of
 * their allocations failing (picked by the input): they must fail cleanly.
 *
 *	make fuzzbin && test/fuzz/fuzz_xml test/fuzz/corpus/xml
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/xml.h"
#include "fuzz_common.h"

#define MAX_KEYS 16

/* the document being read: every span must lie inside it */
static XmlSpan doc_whole;

/* check_text() on every span found (pass 2 compares values instead) */
static bool check_texts;

/* does the element name (as written) have tag as its local name? */
static bool
local_name_is(const char *name, size_t namelen, const char *tag)
{
	size_t		taglen = strlen(tag);
	size_t		i;

	for (i = namelen; i > 0; i--)
		if (name[i - 1] == ':')
			break;
	name += i;
	namelen -= i;
	return namelen == taglen && memcmp(name, tag, taglen) == 0;
}

/*
 * A content span found for tag inside within: it lies inside, follows the
 * '>' of a start tag, and unless empty ends where "</tag" begins.
 */
static void
check_content(XmlSpan within, XmlSpan c, const char *tag)
{
	const char *end = within.p + within.len;
	const char *cend = c.p + c.len;

	CHECK(c.p != NULL);
	CHECK(c.p > within.p && cend <= end);
	CHECK(c.p >= doc_whole.p && cend <= doc_whole.p + doc_whole.len);
	CHECK(c.p[-1] == '>');
	if (c.len > 0)
	{
		const char *n;

		CHECK(end - cend >= 3 && cend[0] == '<' && cend[1] == '/');
		n = cend + 2;
		while (n < end && *n != '>' && *n != ' ' && *n != '\t' &&
			   *n != '\r' && *n != '\n' && *n != '/' && *n != '<')
			n++;
		CHECK(local_name_is(cend + 2, (size_t) (n - (cend + 2)), tag));
	}
}

/*
 * xml_text of c: false when it refuses (broken markup).  What it decodes is
 * never longer than the source; without NULs, escaping it and decoding
 * that gives it back.
 */
static void
check_text(XmlSpan c)
{
	AbBuf		t;
	AbBuf		e;
	AbBuf		back;

	abuf_init(&t);
	abuf_appends(&t, "x");
	if (!xml_text(c, &t))
	{
		abuf_free(&t);
		return;
	}
	CHECK(t.len - 1 <= c.len);
	CHECK(t.data[0] == 'x');
	if (strlen(t.data) == t.len)
	{
		abuf_init(&e);
		abuf_init(&back);
		CHECK(xml_escape(&e, t.data + 1));
		CHECK(xml_text(xml_span(e.data, e.len), &back));
		CHECK(strcmp(back.data, t.data + 1) == 0);
		abuf_free(&e);
		abuf_free(&back);
	}
	abuf_free(&t);
}

/* xml_find, checked against the first xml_next and check_content */
static bool
find(XmlSpan span, const char *tag, XmlSpan *c)
{
	XmlSpan		it = span;
	XmlSpan		c2;
	bool		found = xml_find(span, tag, c);
	bool		found2 = xml_next(&it, tag, &c2);

	CHECK(found == found2);
	if (!found)
	{
		/* an exhausted iterator sits at the end of its span */
		CHECK(span.p == NULL || (it.len == 0 && it.p == span.p + span.len));
		return false;
	}
	CHECK(c->p == c2.p && c->len == c2.len);
	CHECK(it.p >= c2.p + c2.len && it.p + it.len == span.p + span.len);
	check_content(span, *c, tag);
	if (check_texts)
		check_text(*c);
	return true;
}

/* xml_next, checked: it moves forward and stays inside */
static bool
next(XmlSpan *it, const char *tag, XmlSpan *c)
{
	XmlSpan		before = *it;
	const char *end = it->p + it->len;

	if (!xml_next(it, tag, c))
	{
		CHECK(it->len == 0 && (before.p == NULL || it->p == end));
		return false;
	}
	CHECK(it->p > before.p && it->p + it->len == end);
	CHECK(c->p + c->len <= it->p);
	check_content(before, *c, tag);
	if (check_texts)
		check_text(*c);
	return true;
}

/* xml_find_text, checked against find + xml_text */
static char *
find_text(XmlSpan span, const char *tag)
{
	char	   *s = xml_find_text(span, tag);
	XmlSpan		c;

	if (s != NULL)
		CHECK(find(span, tag, &c) && strlen(s) <= c.len);
	return s;
}

typedef struct Listing
{
	int			nkeys;
	char	   *keys[MAX_KEYS];
	char	   *etags[MAX_KEYS];
	long long	sizes[MAX_KEYS];
	int			nprefixes;
	char	   *prefixes[MAX_KEYS];
	char	   *token;			/* NextContinuationToken when truncated */
} Listing;

static void
listing_free(Listing *l)
{
	int			i;

	for (i = 0; i < l->nkeys; i++)
	{
		free(l->keys[i]);
		free(l->etags[i]);
	}
	for (i = 0; i < l->nprefixes; i++)
		free(l->prefixes[i]);
	free(l->token);
}

/* one ListObjectsV2 page, as s3_list_objects() reads it */
static bool
read_listing(XmlSpan body, Listing *l)
{
	XmlSpan		doc = body;
	XmlSpan		it;
	XmlSpan		item;
	char	   *truncated;

	memset(l, 0, sizeof(Listing));
	if (!find(doc, "ListBucketResult", &doc))
		return false;
	it = doc;
	while (next(&it, "Contents", &item))
	{
		char	   *k = find_text(item, "Key");
		char	   *size = find_text(item, "Size");
		char	   *etag = find_text(item, "ETag");
		char	   *lm = find_text(item, "LastModified");

		if (etag && etag[0] == '"')
		{
			size_t		n = strlen(etag);

			memmove(etag, etag + 1, n);
			if (n >= 2 && etag[n - 2] == '"')
				etag[n - 2] = '\0';
		}
		if (k && l->nkeys < MAX_KEYS)
		{
			l->keys[l->nkeys] = k;
			l->etags[l->nkeys] = etag ? etag : strdup("");
			l->sizes[l->nkeys] = size ? strtoll(size, NULL, 10) : 0;
			l->nkeys++;
			k = NULL;
			etag = NULL;
		}
		free(k);
		free(size);
		free(etag);
		free(lm);
	}
	it = doc;
	while (next(&it, "CommonPrefixes", &item))
	{
		char	   *p = find_text(item, "Prefix");

		if (p && l->nprefixes < MAX_KEYS)
			l->prefixes[l->nprefixes++] = p;
		else
			free(p);
	}
	truncated = find_text(doc, "IsTruncated");
	if (truncated && strcmp(truncated, "true") == 0)
		l->token = find_text(doc, "NextContinuationToken");
	free(truncated);
	return true;
}

/* one ListMultipartUploads page, as s3_list_multipart_uploads() reads it */
static int
read_uploads(XmlSpan body, char **keys, char **ids)
{
	XmlSpan		doc = body;
	XmlSpan		it;
	XmlSpan		item;
	char	   *truncated;
	int			n = 0;

	if (!find(doc, "ListMultipartUploadsResult", &doc))
		return -1;
	it = doc;
	while (next(&it, "Upload", &item))
	{
		char	   *k = find_text(item, "Key");
		char	   *id = find_text(item, "UploadId");
		char	   *ini = find_text(item, "Initiated");

		if (k && id && n < MAX_KEYS)
		{
			keys[n] = k;
			ids[n] = id;
			n++;
		}
		else
		{
			free(k);
			free(id);
		}
		free(ini);
	}
	truncated = find_text(doc, "IsTruncated");
	if (truncated && strcmp(truncated, "true") == 0)
	{
		free(find_text(doc, "NextKeyMarker"));
		free(find_text(doc, "NextUploadIdMarker"));
	}
	free(truncated);
	return n;
}

/*
 * An <Error> document, as s3_request.c's s3_parse_error_body() reads one:
 * only an <Error> root counts.  code/message are malloc'd or NULL.
 */
static bool
read_error(XmlSpan body, char **code, char **message)
{
	const char *p = body.p;
	const char *end = body.p + body.len;
	XmlSpan		e;

	*code = *message = NULL;
	for (;;)
	{
		while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
			p++;
		if (end - p >= 2 && p[0] == '<' && (p[1] == '?' || p[1] == '!'))
		{
			p = memchr(p, '>', end - p);
			if (p == NULL)
				return false;
			p++;
			continue;
		}
		break;
	}
	if (end - p < 7 || strncmp(p, "<Error", 6) != 0 ||
		!(p[6] == '>' || p[6] == ' ' || p[6] == '/'))
		return false;
	if (!find(body, "Error", &e))
		return false;
	*code = find_text(e, "Code");
	*message = find_text(e, "Message");
	return true;
}

/* the per-key errors of a DeleteObjects result, as s3_delete_batch() */
static int
read_delete_errors(XmlSpan body, char **keys)
{
	XmlSpan		it = body;
	XmlSpan		item;
	int			n = 0;

	while (next(&it, "Error", &item))
	{
		char	   *k = find_text(item, "Key");

		free(find_text(item, "Code"));
		free(find_text(item, "Message"));
		if (k && n < MAX_KEYS)
			keys[n++] = k;
		else
			free(k);
	}
	return n;
}

/*
 * xml_text, xml_find_text and xml_escape with one of their allocations
 * failing (picked by the input): they fail, and nothing leaks.
 */
static void
check_oom(XmlSpan body, const uint8_t *data, size_t size)
{
	uint64_t	h = fz_hash(data, size);
	AbBuf		b;
	char	   *s;
	long		n;
	bool		ok;

	abuf_init(&b);
	fz_alloc_arm(0);
	(void) xml_text(body, &b);
	n = fz_alloc_disarm();
	abuf_free(&b);
	if (n > 0)
	{
		fz_alloc_arm(1 + (long) (h % (uint64_t) n));
		ok = xml_text(body, &b);
		fz_alloc_disarm();
		CHECK(fz_alloc_failed && !ok && b.oom);
		abuf_free(&b);
	}

	fz_alloc_arm(0);
	s = xml_find_text(body, "Key");
	n = fz_alloc_disarm();
	free(s);
	if (n > 0)
	{
		fz_alloc_arm(1 + (long) (h % (uint64_t) n));
		s = xml_find_text(body, "Key");
		fz_alloc_disarm();
		CHECK(fz_alloc_failed && s == NULL);
	}

	s = fz_cstring(data, size);
	fz_alloc_arm(0);
	(void) xml_escape(&b, s);
	n = fz_alloc_disarm();
	abuf_free(&b);
	CHECK(n > 0);
	fz_alloc_arm(1 + (long) (h % (uint64_t) n));
	ok = xml_escape(&b, s);
	fz_alloc_disarm();
	CHECK(fz_alloc_failed && !ok);
	abuf_free(&b);
	free(s);
}

/* pass 1: the input is an S3 answer */
static void
read_answer(const uint8_t *data, size_t size)
{
	XmlSpan		body = {(const char *) data, size};
	XmlSpan		c;
	Listing		l;
	char	   *keys[MAX_KEYS];
	char	   *ids[MAX_KEYS];
	char	   *code;
	char	   *message;
	int			n;
	int			i;

	doc_whole = body;
	check_texts = true;

	if (read_listing(body, &l))
		listing_free(&l);
	n = read_uploads(body, keys, ids);
	for (i = 0; i < n; i++)
	{
		free(keys[i]);
		free(ids[i]);
	}
	free(find_text(body, "UploadId"));
	free(find_text(body, "ETag"));
	if (read_error(body, &code, &message))
		CHECK(find(body, "Error", &c));
	free(code);
	free(message);
	n = read_delete_errors(body, keys);
	for (i = 0; i < n; i++)
		free(keys[i]);

	/* the whole body as text, and element names that nest */
	check_text(body);
	(void) find(body, "a", &c);

	check_oom(body, data, size);
}

static void
append_escaped(AbBuf *b, const char *open, const char *s, const char *close)
{
	abuf_appends(b, open);
	CHECK(xml_escape(b, s));
	abuf_appends(b, close);
}

/* pass 2: keys made of the input's bytes read back as themselves */
static void
keys_roundtrip(const uint8_t *data, size_t size)
{
	char	   *all = fz_cstring(data, size);
	char	   *keys[MAX_KEYS];
	char	   *got[MAX_KEYS];
	char	   *ids[MAX_KEYS];
	int			nkeys = 0;
	size_t		off = 0;
	AbBuf		b;
	Listing		l;
	XmlSpan		body;
	char	   *code;
	char	   *message;
	int			i;
	int			n;

	/* the input cut at its NUL bytes */
	while (nkeys < MAX_KEYS)
	{
		keys[nkeys++] = all + off;
		off += strlen(all + off);
		if (off >= size)
			break;
		off++;
	}
	check_texts = false;

	abuf_init(&b);
	abuf_appends(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
				 "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
				 "<Name>bucket</Name>");
	append_escaped(&b, "<Prefix>", keys[0], "</Prefix>");
	abuf_appends(&b, "<IsTruncated>true</IsTruncated>");
	append_escaped(&b, "<NextContinuationToken>", keys[nkeys - 1],
				   "</NextContinuationToken>");
	for (i = 0; i < nkeys; i++)
	{
		append_escaped(&b, "\n  <Contents><Key>", keys[i], "</Key>");
		abuf_appendf(&b, "<LastModified>2026-11-24T04:00:00.000Z</LastModified>"
					 "<ETag>&quot;");
		CHECK(xml_escape(&b, keys[i]));
		abuf_appendf(&b, "&quot;</ETag><Size>%d</Size>"
					 "<Owner><ID>x</ID></Owner></Contents>", i * 1000);
	}
	for (i = 0; i < nkeys; i++)
		append_escaped(&b, "<CommonPrefixes><Prefix>", keys[i],
					   "</Prefix></CommonPrefixes>");
	abuf_appends(&b, "</ListBucketResult>\n");
	CHECK(!b.oom);
	body = xml_span(b.data, b.len);
	doc_whole = body;
	CHECK(read_listing(body, &l));
	CHECK(l.nkeys == nkeys && l.nprefixes == nkeys);
	for (i = 0; i < nkeys; i++)
	{
		CHECK(strcmp(l.keys[i], keys[i]) == 0);
		CHECK(strcmp(l.etags[i], keys[i]) == 0);
		CHECK(l.sizes[i] == i * 1000);
		CHECK(strcmp(l.prefixes[i], keys[i]) == 0);
	}
	CHECK(l.token != NULL && strcmp(l.token, keys[nkeys - 1]) == 0);
	listing_free(&l);

	/* ListMultipartUploads */
	abuf_reset(&b);
	abuf_appends(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
				 "<ListMultipartUploadsResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
				 "<Bucket>bucket</Bucket><KeyMarker></KeyMarker><UploadIdMarker/>"
				 "<IsTruncated>false</IsTruncated>");
	for (i = 0; i < nkeys; i++)
	{
		append_escaped(&b, "<Upload><Key>", keys[i], "</Key>");
		append_escaped(&b, "<UploadId>", keys[nkeys - 1 - i], "</UploadId>");
		abuf_appends(&b, "<Initiator><ID>i</ID></Initiator>"
					 "<Initiated>2010-11-10T20:48:33.000Z</Initiated></Upload>");
	}
	abuf_appends(&b, "</ListMultipartUploadsResult>");
	CHECK(!b.oom);
	body = xml_span(b.data, b.len);
	doc_whole = body;
	n = read_uploads(body, got, ids);
	CHECK(n == nkeys);
	for (i = 0; i < n; i++)
	{
		CHECK(strcmp(got[i], keys[i]) == 0);
		CHECK(strcmp(ids[i], keys[nkeys - 1 - i]) == 0);
		free(got[i]);
		free(ids[i]);
	}

	/* DeleteObjects result, and an error document */
	abuf_reset(&b);
	abuf_appends(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<DeleteResult>");
	for (i = 0; i < nkeys; i++)
	{
		append_escaped(&b, "<Error><Key>", keys[i], "</Key>");
		append_escaped(&b, "<Code>", keys[nkeys - 1 - i], "</Code>");
		append_escaped(&b, "<Message>", keys[i], "</Message></Error>");
	}
	abuf_appends(&b, "</DeleteResult>");
	CHECK(!b.oom);
	body = xml_span(b.data, b.len);
	doc_whole = body;
	CHECK(!read_error(body, &code, &message));
	n = read_delete_errors(body, got);
	CHECK(n == nkeys);
	for (i = 0; i < n; i++)
	{
		CHECK(strcmp(got[i], keys[i]) == 0);
		free(got[i]);
	}

	abuf_reset(&b);
	abuf_appends(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\n");
	append_escaped(&b, "<Error><Code>", keys[0], "</Code>");
	append_escaped(&b, "<Message>", keys[nkeys - 1], "</Message>");
	abuf_appends(&b, "<RequestId>r</RequestId></Error>");
	CHECK(!b.oom);
	body = xml_span(b.data, b.len);
	doc_whole = body;
	CHECK(read_error(body, &code, &message));
	CHECK(code != NULL && strcmp(code, keys[0]) == 0);
	CHECK(message != NULL && strcmp(message, keys[nkeys - 1]) == 0);
	free(code);
	free(message);

	abuf_free(&b);
	free(all);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	read_answer(data, size);
	keys_roundtrip(data, size);
	return 0;
}
