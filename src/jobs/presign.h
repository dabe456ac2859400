/*
 * presign.h
 *		Presigned URLs for a table's or a backup's objects (see presign.c).
 */
#ifndef AIBACKUP_PRESIGN_H
#define AIBACKUP_PRESIGN_H

#include "nodes/pg_list.h"

/* one row: the object's path in its backup's folder, and its URL */
typedef struct AbSignedObject
{
	char	   *object;
	char	   *url;
} AbSignedObject;

/*
 * The data and definition of table source (named as a restore names it) in
 * backup_id (NULL: the newest that holds it), and, for a role that may read
 * everything, the backup's manifest, signed for seconds.  A list of
 * AbSignedObject.
 */
extern List *ab_presign_table(const char *source, const char *backup_id,
							  long seconds);

/*
 * Every table's data and definition in backup_id (NULL: the newest with a
 * table in it), with its manifest and restore.sql; or, with schemas (a list
 * of names), those schemas' tables and restore scripts only.
 */
extern List *ab_presign_backup(const char *backup_id, long seconds,
							   List *schemas);

#endif							/* AIBACKUP_PRESIGN_H */
