/*
 * settings.h
 *		The aibackup.* configuration parameters (GUCs): their variables and
 *		the function that defines them.  Everything else reads them here.
 */
#ifndef AIBACKUP_SETTINGS_H
#define AIBACKUP_SETTINGS_H

#define AB_URI_STYLE_VIRTUAL	0
#define AB_URI_STYLE_PATH		1

extern char *ab_s3_endpoint;
extern char *ab_s3_region;
extern char *ab_s3_bucket;
extern char *ab_s3_prefix;
extern int	ab_s3_uri_style;
extern char *ab_s3_access_key_id;
extern char *ab_s3_secret_access_key;
extern char *ab_s3_session_token;
extern char *ab_s3_ca_file;
extern int	ab_s3_credential_source;	/* an S3CredSource */
extern bool ab_s3_imds_v1;
extern char *ab_s3_proxy;
extern char *ab_s3_sse;
extern char *ab_s3_sse_kms_key_id;
extern char *ab_s3_storage_class;
extern int	ab_s3_checksum;		/* an S3Checksum */
extern bool ab_s3_verify_tls;
extern int	ab_compression_level;
extern char *ab_exclude;
extern int	ab_lock_timeout_ms;
extern bool ab_incremental;
extern int	ab_full_every_s;
extern int	ab_max_rate_mb;
extern int	ab_max_parallel_tables;

/* aibackup.max_parallel_tables at most (progress slots are few: state.h) */
#define AB_MAX_PARALLEL_TABLES	16
extern bool ab_enabled;
extern bool ab_backup_from_standby;
extern int	ab_interval_s;
extern char *ab_databases;
extern int	ab_max_workers;
extern int	ab_max_databases;
extern int	ab_retention_days;

#include "nodes/pg_list.h"

/* aibackup.exclude parsed: list of (schema, table) lists; table may be "*" */
extern bool ab_exclude_parse(const char *value, List **patterns, char **bad);

/* defines every aibackup.* setting; call from _PG_init */
extern void ab_define_settings(void);

#endif							/* AIBACKUP_SETTINGS_H */
