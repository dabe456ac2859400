/*
 * fuzz_index.c
 *		libFuzzer target for the backup index reader and writer
 *		(src/core/bindex.c): index.json comes from the bucket, which anyone
 *		with write access to it can edit.
 *
 * bi_parse() returns an index or NULL with a message, and never crashes,
 * leaks or reads outside the input.  An accepted index has its required
 * fields; writing it and parsing that gives the same bytes when written
 * again.  Parsing with one allocation failing (picked by the input) fails
 * cleanly.
 *
 *	make fuzzbin && test/fuzz/fuzz_index test/fuzz/corpus/index
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/bindex.h"
#include "fuzz_common.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char		err[256];
	BackupIndex *ix;
	BackupIndex *ix2;
	char	   *json;
	char	   *json2;
	long		nalloc;

	fz_alloc_arm(0);
	ix = bi_parse((const char *) data, size, err, sizeof(err));
	nalloc = fz_alloc_disarm();
	if (ix == NULL)
	{
		CHECK(err[0] != '\0' && strlen(err) < sizeof(err));
		return 0;
	}
	CHECK(ix->format >= 1 && ix->format <= BINDEX_FORMAT);
	CHECK(ix->database != NULL);
	for (int i = 0; i < ix->nentries; i++)
		CHECK(ix->entries[i].backup_id != NULL && ix->entries[i].status != NULL &&
			  ix->entries[i].rows >= 0 && ix->entries[i].tables_ok >= 0);

	json = bi_to_json(ix);
	CHECK(json != NULL);
	ix2 = bi_parse(json, strlen(json), err, sizeof(err));
	CHECK(ix2 != NULL);
	CHECK(ix2->nentries == ix->nentries);
	json2 = bi_to_json(ix2);
	CHECK(json2 != NULL && strcmp(json, json2) == 0);
	free(json);
	free(json2);
	bi_free(ix2);
	bi_free(ix);

	/* again with one allocation failing: a clean NULL */
	if (nalloc > 0)
	{
		fz_alloc_arm(1 + (long) (fz_hash(data, size) % (uint64_t) nalloc));
		ix = bi_parse((const char *) data, size, err, sizeof(err));
		(void) fz_alloc_disarm();
		CHECK(ix == NULL);
	}
	return 0;
}
