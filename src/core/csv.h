/*
 * csv.h
 *		A pull-style reader of the CSV that COPY ... (FORMAT csv) writes:
 *		',' between fields, '"' quotes with '""' inside, an unquoted empty
 *		field is NULL and a quoted one the empty string, '\n' (or "\r\n")
 *		ends a record outside quotes.  Pure C: bytes in, records out, in any
 *		server encoding (all keep ',', '"', '\r' and '\n' as ASCII bytes).
 */
#ifndef AIBACKUP_CSV_H
#define AIBACKUP_CSV_H

#include <stdbool.h>
#include <stddef.h>

typedef struct CsvReader CsvReader;

/* one record: valid until the next csv_next() or csv_free() */
typedef struct CsvRecord
{
	int			nfields;
	char	  **fields;			/* NUL-terminated (a field may hold NULs of
								 * its own only if the data did) */
	size_t	   *lens;
	bool	   *nulls;
} CsvRecord;

/* NULL on OOM; max_record: the longest record accepted, in bytes */
extern CsvReader *csv_new(size_t max_record);

/* append bytes; false on OOM or a record longer than max_record */
extern bool csv_feed(CsvReader *r, const void *data, size_t len);

/* no more bytes will come */
extern void csv_end(CsvReader *r);

/*
 * The next record: 1 with *rec filled; 0 when more bytes are needed (or,
 * after csv_end(), at the end); -1 on an error (csv_error() says which).
 */
extern int	csv_next(CsvReader *r, CsvRecord *rec);
extern const char *csv_error(const CsvReader *r);
extern void csv_free(CsvReader *r);

#endif							/* AIBACKUP_CSV_H */
