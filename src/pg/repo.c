/*
 * repo.c
 *		Knows where things are in the bucket and reads/writes manifests.
 *
 * A backup exists only once its manifest.json does: every reader goes
 * through ab_repo_read_manifest() and treats a folder without one as
 * debris (a run that failed or is still going).  Names in keys are
 * percent-encoded (every byte outside [A-Za-z0-9_-]) so that any table name
 * makes one flat, unambiguous key and '.' separates schema from table.
 */
#include "postgres.h"

#include "lib/stringinfo.h"
#include "utils/datetime.h"
#include "utils/timestamp.h"
#include "utils/memutils.h"

#include "core/buf.h"
#include "pg/repo.h"
#include "pg/s3_session.h"
#include "pg/settings.h"

#define MANIFEST_MAX_BYTES	(256 * 1024 * 1024)

static void
append_encoded(StringInfo buf, const char *s)
{
	for (const unsigned char *p = (const unsigned char *) s; *p; p++)
	{
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
			(*p >= '0' && *p <= '9') || *p == '_' || *p == '-')
			appendStringInfoChar(buf, (char) *p);
		else
			appendStringInfo(buf, "%%%02X", *p);
	}
}

char *
ab_repo_db_prefix(const char *dbname)
{
	StringInfoData db;

	initStringInfo(&db);
	append_encoded(&db, dbname);
	return psprintf("%s/", ab_s3_key(ab_s3_prefix ? ab_s3_prefix : "", db.data,
									 NULL));
}

bool
ab_repo_key_in_database(const char *key, const char *dbname)
{
	const char *prefix = ab_repo_db_prefix(dbname);
	size_t		n = strlen(prefix);
	const char *seg;

	if (strncmp(key, prefix, n) != 0 || key[n] == '\0')
		return false;
	for (seg = key + n;; seg++)
	{
		const char *end = strchr(seg, '/');
		size_t		len = end ? (size_t) (end - seg) : strlen(seg);

		if (len == 0 || (len == 1 && seg[0] == '.') ||
			(len == 2 && seg[0] == '.' && seg[1] == '.'))
			return false;
		if (end == NULL)
			return true;
		seg = end;
	}
}

char *
ab_repo_manifest_key(const char *dbname, const char *backup_id)
{
	return psprintf("%s%s/manifest.json", ab_repo_db_prefix(dbname), backup_id);
}

char *
ab_repo_table_key(const char *dbname, const char *backup_id,
				  const char *schema, const char *table)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfo(&buf, "%s%s/", ab_repo_db_prefix(dbname), backup_id);
	append_encoded(&buf, schema);
	appendStringInfoChar(&buf, '.');
	append_encoded(&buf, table);
	appendStringInfoString(&buf, ".csv.gz");
	return buf.data;
}

bool
ab_repo_valid_backup_id(const char *s)
{
	if (s == NULL || strlen(s) != AB_BACKUP_ID_LEN)
		return false;
	for (int i = 0; i < AB_BACKUP_ID_LEN; i++)
	{
		char		ch = s[i];

		if (i == 8 ? ch != 'T' : i == 15 ? ch != 'Z' : !(ch >= '0' && ch <= '9'))
			return false;
	}
	return true;
}

/*
 * Strings gathered inside a core callback.  The callbacks run inside the
 * pure-C core's frames, so they must not palloc (an out-of-memory ERROR
 * would longjmp through them and leak their buffers): they append to a
 * malloc'd buffer, turned into a List once the core has returned.
 */
typedef struct Gathered
{
	AbBuf		buf;			/* NUL-terminated strings, back to back */
	size_t		prefix_len;		/* for collect_id */
} Gathered;

static int
gather(Gathered *g, const char *s)
{
	return abuf_append(&g->buf, s, strlen(s) + 1) ? 0 : 1;
}

/* the gathered strings as a List (palloc'd); frees the buffer */
static List *
gathered_list(Gathered *g)
{
	List	   *l = NIL;
	bool		oom = g->buf.oom;

	for (size_t off = 0; !oom && off < g->buf.len; off += strlen(g->buf.data + off) + 1)
		l = lappend(l, pstrdup(g->buf.data + off));
	abuf_free(&g->buf);
	if (oom)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	return l;
}

static void
gathered_init(Gathered *g)
{
	abuf_init(&g->buf);
	g->prefix_len = 0;
}

/* S3 failed: free what was gathered, then report */
static void
gathered_fail(Gathered *g, const S3Error *err)
{
	abuf_free(&g->buf);
	ab_s3_report(err);
}

static int
collect_id(void *arg, const S3ListEntry *e)
{
	Gathered   *g = arg;
	char		id[AB_BACKUP_ID_LEN + 1];

	if (!e->is_prefix || strlen(e->key) != g->prefix_len + AB_BACKUP_ID_LEN + 1)
		return 0;
	memcpy(id, e->key + g->prefix_len, AB_BACKUP_ID_LEN);
	id[AB_BACKUP_ID_LEN] = '\0';
	return ab_repo_valid_backup_id(id) ? gather(g, id) : 0;
}

static int
cmp_desc(const ListCell *a, const ListCell *b)
{
	return -strcmp((const char *) lfirst(a), (const char *) lfirst(b));
}

List *
ab_repo_backup_ids(S3Client *c, const char *dbname)
{
	Gathered	g;
	S3Error		err;
	char	   *prefix = ab_repo_db_prefix(dbname);
	List	   *ids;

	gathered_init(&g);
	g.prefix_len = strlen(prefix);
	if (!s3_list_objects(c, prefix, "/", collect_id, &g, &err))
		gathered_fail(&g, &err);
	ids = gathered_list(&g);
	list_sort(ids, cmp_desc);
	return ids;
}

/* collects a manifest into an AbBuf, up to MANIFEST_MAX_BYTES */
typedef struct MemSink
{
	AbBuf		buf;
	bool		too_big;
} MemSink;

static int
mem_sink(void *arg, const void *data, size_t len)
{
	MemSink    *m = arg;

	if (m->buf.len + len > MANIFEST_MAX_BYTES)
	{
		m->too_big = true;
		return 1;
	}
	return abuf_append(&m->buf, data, len) ? 0 : 1;
}

static void
free_manifest_cb(void *arg)
{
	mf_free((Manifest *) arg);
}

Manifest *
ab_repo_read_manifest(S3Client *c, const char *dbname, const char *backup_id)
{
	AbManifestState state;

	return ab_repo_read_manifest_state(c, dbname, backup_id, &state);
}

Manifest *
ab_repo_read_manifest_state(S3Client *c, const char *dbname,
							const char *backup_id, AbManifestState *state)
{
	char	   *key = ab_repo_manifest_key(dbname, backup_id);
	MemSink		ms;
	S3Error		err;
	Manifest   *m;
	char		errbuf[256];
	MemoryContextCallback *cb;

	*state = AB_MANIFEST_UNREADABLE;
	abuf_init(&ms.buf);
	ms.too_big = false;
	if (!s3_get_object(c, key, mem_sink, &ms, NULL, &err))
	{
		abuf_free(&ms.buf);
		if (err.kind == S3ERR_NOT_FOUND)
		{
			*state = AB_MANIFEST_MISSING;
			return NULL;
		}
		if (ms.too_big)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("manifest \"%s\" is larger than %d MB", key,
							MANIFEST_MAX_BYTES / (1024 * 1024))));
		ab_s3_report(&err);
	}
	m = mf_parse(ms.buf.data ? ms.buf.data : "", ms.buf.len, errbuf, sizeof(errbuf));
	abuf_free(&ms.buf);
	if (m == NULL)
	{
		/* one damaged manifest must not hide every other backup */
		ereport(WARNING,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("ignoring manifest \"%s\": it is not valid", key),
				 errdetail("%s", errbuf)));
		return NULL;
	}
	if (m->backup_id == NULL || strcmp(m->backup_id, backup_id) != 0 ||
		m->database == NULL || strcmp(m->database, dbname) != 0)
	{
		/* copied or moved by hand: not trustworthy as this backup */
		ereport(WARNING,
				(errmsg("ignoring manifest \"%s\": it describes backup \"%s\" of database \"%s\"",
						key, m->backup_id ? m->backup_id : "", m->database ? m->database : "")));
		mf_free(m);
		return NULL;
	}
	cb = MemoryContextAlloc(CurrentMemoryContext, sizeof(MemoryContextCallback));
	cb->func = free_manifest_cb;
	cb->arg = m;
	MemoryContextRegisterResetCallback(CurrentMemoryContext, cb);
	*state = AB_MANIFEST_OK;
	return m;
}

void
ab_repo_write_manifest(S3Client *c, const Manifest *m)
{
	char	   *json = mf_to_json(m);
	char	   *key = ab_repo_manifest_key(m->database, m->backup_id);
	S3Error		err;
	bool		ok;

	if (json == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory")));
	ok = s3_put_object(c, key, json, strlen(json), "application/json", &err);
	free(json);
	if (!ok)
		ab_s3_report(&err);
}

static int
collect_key(void *arg, const S3ListEntry *e)
{
	return e->is_prefix ? 0 : gather((Gathered *) arg, e->key);
}

void
ab_repo_delete_backup(S3Client *c, const char *dbname, const char *backup_id)
{
	char	   *manifest = ab_repo_manifest_key(dbname, backup_id);
	char	   *prefix = psprintf("%s%s/", ab_repo_db_prefix(dbname), backup_id);
	Gathered	g;
	List	   *objects;
	S3Error		err;
	const char **keys;
	int			n = 0;
	ListCell   *lc;

	if (!s3_delete_objects(c, (const char *const *) &manifest, 1, &err))
		ab_s3_report(&err);
	gathered_init(&g);
	if (!s3_list_objects(c, prefix, NULL, collect_key, &g, &err))
		gathered_fail(&g, &err);
	objects = gathered_list(&g);
	if (objects == NIL)
		return;
	keys = palloc(sizeof(char *) * list_length(objects));
	foreach(lc, objects)
		keys[n++] = lfirst(lc);
	if (!s3_delete_objects(c, keys, n, &err))
		ab_s3_report(&err);
}

/* three strings per upload: key, upload id, initiated */
static int
collect_upload(void *arg, const S3UploadEntry *e)
{
	Gathered   *g = arg;

	return gather(g, e->key) || gather(g, e->upload_id) || gather(g, e->initiated);
}

/* <prefix>/<db>/<backup_id>/<name>.csv.gz: one of ours */
static bool
is_our_table_key(const char *key, size_t prefix_len)
{
	const char *db = key + prefix_len;
	const char *slash = strchr(db, '/');
	char		id[AB_BACKUP_ID_LEN + 1];
	size_t		n = strlen(key);

	if (slash == NULL || slash == db || strlen(slash + 1) < AB_BACKUP_ID_LEN + 2)
		return false;
	memcpy(id, slash + 1, AB_BACKUP_ID_LEN);
	id[AB_BACKUP_ID_LEN] = '\0';
	return ab_repo_valid_backup_id(id) && slash[1 + AB_BACKUP_ID_LEN] == '/' &&
		strchr(slash + 2 + AB_BACKUP_ID_LEN, '/') == NULL &&
		n > 7 && strcmp(key + n - 7, ".csv.gz") == 0;
}

/* a UTC calendar time as a timestamp; 0 when it is not a valid one */
static TimestampTz
utc_timestamp(struct pg_tm *tm)
{
	TimestampTz ts;

	if (tm2timestamp(tm, 0, NULL, &ts) != 0)
		return 0;
	return ts;
}

/* S3's Initiated (ISO 8601) as a timestamp; 0 when it does not parse */
static TimestampTz
parse_initiated(const char *s)
{
	struct pg_tm tm;
	double		sec = 0;

	memset(&tm, 0, sizeof(tm));
	if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%lf", &tm.tm_year, &tm.tm_mon,
			   &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &sec) != 6)
		return 0;
	tm.tm_sec = (int) sec;
	return utc_timestamp(&tm);
}

int
ab_repo_abort_stale_uploads(S3Client *c, TimestampTz before, List *skip_prefixes)
{
	Gathered	g;
	List	   *all;
	S3Error		err;
	int			n = 0;
	char	   *prefix = ab_s3_prefix && ab_s3_prefix[0] ?
		psprintf("%s/", ab_s3_key(ab_s3_prefix, NULL)) : "";

	gathered_init(&g);
	if (!s3_list_multipart_uploads(c, prefix, collect_upload, &g, &err))
		gathered_fail(&g, &err);
	all = gathered_list(&g);
	for (int i = 0; i + 2 < list_length(all); i += 3)
	{
		const char *key = list_nth(all, i);
		const char *upload_id = list_nth(all, i + 1);
		TimestampTz started = parse_initiated(list_nth(all, i + 2));
		bool		skip = false;
		ListCell   *ls;

		if (!is_our_table_key(key, strlen(prefix)) || started == 0 ||
			started >= before)
			continue;
		foreach(ls, skip_prefixes)
			if (strncmp(key, lfirst(ls), strlen(lfirst(ls))) == 0)
				skip = true;
		if (skip)
			continue;
		if (!s3_abort_upload_id(c, key, upload_id, &err))
			ab_s3_report(&err);
		n++;
	}
	return n;
}

TimestampTz
ab_repo_backup_time(const char *id)
{
	struct pg_tm tm;

	memset(&tm, 0, sizeof(tm));
	if (!ab_repo_valid_backup_id(id) ||
		sscanf(id, "%4d%2d%2dT%2d%2d%2dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
			   &tm.tm_hour, &tm.tm_min, &tm.tm_sec) != 6)
		return 0;
	return utc_timestamp(&tm);
}
