/*
 * restore.h
 *		Restore one table from a backup into the current database.
 */
#ifndef AIBACKUP_RESTORE_H
#define AIBACKUP_RESTORE_H

/*
 * source: the table's name as it was in the backup (qualified or not,
 * quoted or not); backup_id NULL = newest backup that holds it; target
 * NULL = the source's name.  Returns the rows loaded.
 */
extern int64 ab_restore_table(const char *source, const char *backup_id,
							  const char *target);

/*
 * The definition of a table as its backup recorded it: a SQL script (the
 * same text as the backup's <schema>.<table>.sql).  Same lookup and read
 * rights as a restore.
 */
extern char *ab_restore_table_ddl(const char *source, const char *backup_id);

#endif							/* AIBACKUP_RESTORE_H */
