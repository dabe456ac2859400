/*
 * csv.c
 *		The CSV reader (csv.h).  Bytes are kept until a record is whole;
 *		the scan for its end resumes where it stopped, so a long quoted
 *		field fed in pieces costs one pass.
 */
#include <stdlib.h>
#include <string.h>

#include "csv.h"

struct CsvReader
{
	char	   *buf;			/* bytes fed and not yet returned */
	size_t		start;			/* the current record's first byte */
	size_t		len;
	size_t		cap;
	size_t		scan;			/* where the search for its end goes on */
	bool		in_quotes;		/* ... and whether it is inside quotes */
	bool		ended;
	size_t		max_record;
	const char *error;

	/* the record returned: unescaped fields, one after the other */
	char	   *out;
	size_t		out_cap;
	int			nfields;
	int			fields_cap;
	char	  **fields;
	size_t	   *lens;
	bool	   *nulls;
	size_t	   *offsets;
};

CsvReader *
csv_new(size_t max_record)
{
	CsvReader  *r = calloc(1, sizeof(CsvReader));

	if (r != NULL)
		r->max_record = max_record;
	return r;
}

void
csv_free(CsvReader *r)
{
	if (r == NULL)
		return;
	free(r->buf);
	free(r->out);
	free(r->fields);
	free(r->lens);
	free(r->nulls);
	free(r->offsets);
	free(r);
}

const char *
csv_error(const CsvReader *r)
{
	return r->error ? r->error : "no error";
}

bool
csv_feed(CsvReader *r, const void *data, size_t len)
{
	if (r->start > 0 && r->start == r->len)
	{
		r->scan -= r->start;
		r->start = r->len = 0;
	}
	if (r->len + len > r->cap)
	{
		size_t		keep = r->len - r->start;
		size_t		ncap;
		char	   *n;

		/* drop what was returned before growing */
		if (r->start > 0)
		{
			memmove(r->buf, r->buf + r->start, keep);
			r->scan -= r->start;
			r->len = keep;
			r->start = 0;
		}
		if (keep + len > r->max_record + 2)
		{
			r->error = "a record is longer than the longest accepted";
			return false;
		}
		ncap = r->cap ? r->cap : 65536;
		while (ncap < r->len + len)
			ncap *= 2;
		if (ncap > r->cap)
		{
			n = realloc(r->buf, ncap);
			if (n == NULL)
			{
				r->error = "out of memory";
				return false;
			}
			r->buf = n;
			r->cap = ncap;
		}
	}
	memcpy(r->buf + r->len, data, len);
	r->len += len;
	return true;
}

void
csv_end(CsvReader *r)
{
	r->ended = true;
}

static bool
add_field(CsvReader *r, size_t offset, size_t len, bool null)
{
	if (r->nfields == r->fields_cap)
	{
		int			ncap = r->fields_cap ? r->fields_cap * 2 : 64;
		char	  **f = realloc(r->fields, sizeof(char *) * ncap);
		size_t	   *l = f ? realloc(r->lens, sizeof(size_t) * ncap) : NULL;
		bool	   *n = l ? realloc(r->nulls, sizeof(bool) * ncap) : NULL;
		size_t	   *o = n ? realloc(r->offsets, sizeof(size_t) * ncap) : NULL;

		if (f)
			r->fields = f;
		if (l)
			r->lens = l;
		if (n)
			r->nulls = n;
		if (o == NULL)
			return false;
		r->offsets = o;
		r->fields_cap = ncap;
	}
	r->offsets[r->nfields] = offset;
	r->lens[r->nfields] = len;
	r->nulls[r->nfields] = null;
	r->nfields++;
	return true;
}

/* split buf[from, to) (one record, without its line end) into fields */
static int
split(CsvReader *r, size_t from, size_t to)
{
	size_t		o = 0;
	size_t		field_start = 0;
	bool		quoted = false;
	bool		in_quotes = false;

	if (to - from + 1 > r->out_cap)
	{
		char	   *n = realloc(r->out, to - from + 1);

		if (n == NULL)
		{
			r->error = "out of memory";
			return -1;
		}
		r->out = n;
		r->out_cap = to - from + 1;
	}
	r->nfields = 0;
	for (size_t i = from;; i++)
	{
		char		c = i < to ? r->buf[i] : ',';

		if (in_quotes)
		{
			if (c != '"')
				r->out[o++] = c;
			else if (i + 1 < to && r->buf[i + 1] == '"')
				r->out[o++] = r->buf[++i];
			else
				in_quotes = false;
			continue;
		}
		if (c == '"')
		{
			if (o != field_start)
			{
				r->error = "a quote inside an unquoted field";
				return -1;
			}
			in_quotes = quoted = true;
		}
		else if (c == ',')
		{
			if (!add_field(r, field_start, o - field_start, !quoted && o == field_start))
			{
				r->error = "out of memory";
				return -1;
			}
			r->out[o++] = '\0';
			field_start = o;
			quoted = false;
			if (i >= to)
				break;
		}
		else if (quoted)
		{
			r->error = "text after the closing quote of a field";
			return -1;
		}
		else
			r->out[o++] = c;
	}
	for (int f = 0; f < r->nfields; f++)
		r->fields[f] = r->out + r->offsets[f];
	return 1;
}

int
csv_next(CsvReader *r, CsvRecord *rec)
{
	size_t		end;
	int			rc;

	if (r->error)
		return -1;
	while (r->scan < r->len)
	{
		char		c = r->buf[r->scan];

		if (c == '"')
			r->in_quotes = !r->in_quotes;	/* "" toggles twice */
		else if (c == '\n' && !r->in_quotes)
			break;
		r->scan++;
	}
	if (r->scan >= r->len)
	{
		if (!r->ended || r->start == r->len)
			return 0;
		if (r->in_quotes)
		{
			r->error = "the data ends inside a quoted field";
			return -1;
		}
		end = r->len;			/* a last record without its line end */
		r->scan = r->len;
	}
	else
		end = r->scan++;
	rc = split(r, r->start, end > r->start && r->buf[end - 1] == '\r' ? end - 1 : end);
	r->start = r->scan;
	if (rc < 0)
		return -1;
	rec->nfields = r->nfields;
	rec->fields = r->fields;
	rec->lens = r->lens;
	rec->nulls = r->nulls;
	return 1;
}
