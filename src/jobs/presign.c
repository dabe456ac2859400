/*-------------------------------------------------------------------------
 *
 * presign.c
 *		Presigned GET URLs for what a customer takes away: one table's
 *		objects, or a whole backup's, or the part of it in some schemas.
 *
 * The URLs need no keys and no aibackup: curl, a browser or any HTTP client
 * downloads them.  Whoever may read a table's rows may sign its objects:
 * the same check as a restore (SELECT on the table, or pg_read_all_data for
 * one that is gone).  The manifest and restore.sql name every table of the
 * backup (with its definition) and every sequence's value: they are signed
 * for a whole backup, whose every table the caller may read, and with one
 * table only for roles that may read everything.  A call limited to
 * schemas signs each schema's own script (restore/<schema>.sql) instead.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_authid.h"
#include "catalog/pg_largeobject.h"
#include "commands/dbcommands.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/timestamp.h"

#include "jobs/presign.h"
#include "jobs/restore.h"
#include "jobs/restore_int.h"
#include "pg/repo.h"
#include "pg/repo_index.h"
#include "pg/s3_session.h"

typedef struct Signer
{
	const char *folder;			/* the backup's, "<prefix>/<db>/<id>/" */
	long		seconds;
	TimestampTz now;
	List	   *rows;
} Signer;

/* sign key (inside the folder) as the object named by its path there */
static void
sign(Signer *s, const char *key)
{
	AbSignedObject *o = palloc(sizeof(AbSignedObject));
	size_t		n = strlen(s->folder);

	Assert(strncmp(key, s->folder, n) == 0);
	o->object = pstrdup(key + n);
	o->url = ab_presign_key(key, s->seconds, s->now);
	s->rows = lappend(s->rows, o);
}

/* a table's data and, when the backup recorded it, its definition */
static void
sign_table(Signer *s, const Manifest *m, const MfTable *t)
{
	size_t		n = strlen(t->object_key);

	ab_restore_check_read(m, t, "sign the objects of");
	ab_repo_check_table_object(m, t);
	sign(s, t->object_key);
	if (t->ddl != NULL && n > 7 && strcmp(t->object_key + n - 7, ".csv.gz") == 0)
		sign(s, psprintf("%.*s.sql", (int) (n - 7), t->object_key));
}

static void
signer_init(Signer *s, const Manifest *m, long seconds)
{
	s->folder = ab_repo_backup_folder(get_database_name(MyDatabaseId), m->backup_id);
	s->seconds = seconds;
	s->now = GetCurrentTimestamp();
	s->rows = NIL;
}

List *
ab_presign_table(const char *source, const char *backup_id, long seconds)
{
	char	   *dbname = get_database_name(MyDatabaseId);
	Manifest   *m = NULL;
	const MfTable *t;
	Signer		s;

	t = ab_restore_find_table(source, backup_id, &m);
	signer_init(&s, m, seconds);
	if (ab_repo_is_partitioned(m, t))
	{
		/* a partitioned table: the objects of every partition below it */
		List	   *parents;
		List	   *leaves;
		ListCell   *lc;

		ab_repo_partition_tree(m, t, &parents, &leaves);
		foreach(lc, leaves)
		{
			if (ab_restore_entry_ok(lfirst(lc)))
				sign_table(&s, m, lfirst(lc));
		}
	}
	else
		sign_table(&s, m, t);
	if (superuser() || has_privs_of_role(GetUserId(), ROLE_PG_READ_ALL_DATA))
		sign(&s, ab_repo_manifest_key(dbname, m->backup_id));
	return s.rows;
}

/* the newest backup with a table in it */
static Manifest *
newest_backup(S3Client *c, const char *dbname)
{
	AbBackupWalk *w = ab_walk_begin(c, dbname, AB_WALK_MANIFEST);
	AbBackup	b;
	Manifest   *m = NULL;

	while (m == NULL && ab_walk_next(w, &b))
	{
		if (strcmp(b.manifest->status, "failed") != 0)
			m = b.manifest;
	}
	ab_walk_end(w);
	if (m == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("database \"%s\" has no backup", dbname),
				 errhint("aibackup_backup_now() makes one.")));
	return m;
}

static bool
has_schema(const Manifest *m, const char *schema)
{
	for (int i = 0; i < m->ntables; i++)
	{
		if (strcmp(m->tables[i].schema, schema) == 0)
			return true;
	}
	return false;
}

static bool
in_schemas(List *schemas, const char *schema)
{
	ListCell   *lc;

	foreach(lc, schemas)
	{
		if (strcmp(lfirst(lc), schema) == 0)
			return true;
	}
	return false;
}

List *
ab_presign_backup(const char *backup_id, long seconds, List *schemas)
{
	char	   *dbname = get_database_name(MyDatabaseId);
	S3Client   *client;
	Manifest   *m;
	Signer		s;
	ListCell   *lc;

	ab_repo_check_backup_id(backup_id);
	ab_repo_check_folder_unique();
	client = ab_s3_client();
	m = backup_id ? ab_restore_read_backup(client, dbname, backup_id) :
		newest_backup(client, dbname);
	foreach(lc, schemas)
	{
		if (!has_schema(m, lfirst(lc)))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_SCHEMA),
					 errmsg("backup \"%s\" has no table in schema \"%s\"",
							m->backup_id, (char *) lfirst(lc)),
					 errhint("aibackup_list_tables('%s') lists its tables.", m->backup_id)));
	}

	signer_init(&s, m, seconds);
	for (int i = 0; i < m->ntables; i++)
	{
		const MfTable *t = &m->tables[i];

		CHECK_FOR_INTERRUPTS();
		if (strcmp(t->status, "ok") != 0 ||
			(schemas != NIL && !in_schemas(schemas, t->schema)))
			continue;
		/* the large objects, for those who may read them all */
		if (mf_system_schema(t->schema) &&
			pg_class_aclcheck(LargeObjectRelationId, GetUserId(), ACL_SELECT) != ACLCHECK_OK)
			continue;
		sign_table(&s, m, t);
	}
	if (schemas == NIL)
	{
		if (m->restore_scripts)
			sign(&s, ab_repo_script_key(dbname, m->backup_id, NULL));
		sign(&s, ab_repo_manifest_key(dbname, m->backup_id));
	}
	else if (m->restore_scripts)
	{
		/*
		 * a schema whose every table failed has no script; nor has
		 * pg_catalog, whose tables hold the large objects
		 */
		foreach(lc, schemas)
		{
			bool		any_ok = false;

			for (int i = 0; i < m->ntables && !any_ok; i++)
				any_ok = strcmp(m->tables[i].status, "ok") == 0 &&
					strcmp(m->tables[i].schema, lfirst(lc)) == 0 &&
					!mf_system_schema(m->tables[i].schema);
			if (any_ok)
				sign(&s, ab_repo_script_key(dbname, m->backup_id, lfirst(lc)));
		}
	}
	return s.rows;
}
