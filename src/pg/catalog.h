/*
 * catalog.h
 *		Which tables and sequences a backup holds, read from the catalogs.
 */
#ifndef AIBACKUP_CATALOG_H
#define AIBACKUP_CATALOG_H

#include "nodes/pg_list.h"

/* one table to back up */
typedef struct AbTable
{
	Oid			relid;
	char	   *schema;
	char	   *name;
	char	   *parent;			/* qualified partitioned parent, or NULL */
	char	   *extension;		/* the extension it belongs to, or NULL */
	int64		est_bytes;		/* for part sizing; refined once locked */
	int			partitions;		/* a partitioned table's partitions with data
								 * (all levels below it) */
} AbTable;

/* one sequence's state */
typedef struct AbSequence
{
	char	   *schema;
	char	   *name;
	char	   *extension;		/* the extension it belongs to, or NULL */
	int64		last_value;
	bool		is_called;
} AbSequence;

/*
 * Tables of the current database to back up: ordinary tables and leaf
 * partitions in non-system schemas, not members of an extension (but its
 * configuration tables, pg_extension_config_dump's), not other sessions'
 * temporary tables, minus aibackup.exclude when apply_exclude.  When relids is not
 * NIL, exactly those tables, and the partitions with data below a
 * partitioned one (exclusions do not apply; a relation that is not a table
 * is an error).  Sorted by schema, name.  Columns are not
 * read here: they are taken from the relation once it is locked.
 */
extern List *ab_catalog_tables(List *relids, bool apply_exclude);

/*
 * The partitioned tables above tables (AbTable, leaf partitions among
 * them), and every partitioned table below those (one with no partitions
 * is part of its parent's definition too).  Sorted root first (by depth),
 * then schema, name; each one's parent and count of partitions with data
 * set.  Nothing is locked here.
 */
extern List *ab_catalog_partitioned(List *tables);

/* sequences in the same schemas, with their current values */
extern List *ab_catalog_sequences(void);

/* a role that owns large objects */
typedef struct AbRole
{
	Oid			oid;
	char	   *name;
} AbRole;

/* the owners of the large objects the active snapshot sees */
extern List *ab_catalog_lo_owners(void);

#endif							/* AIBACKUP_CATALOG_H */
