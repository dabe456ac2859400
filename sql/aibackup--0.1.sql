/* aibackup--0.1.sql: objects of the aibackup extension */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION aibackup" to load this file. \quit

CREATE FUNCTION aibackup_presign_url(object_key text,
                                     expires interval DEFAULT '1 hour',
                                     signed_at timestamptz DEFAULT now())
RETURNS text
AS 'MODULE_PATHNAME', 'aibackup_presign_url'
LANGUAGE C STRICT VOLATILE;

COMMENT ON FUNCTION aibackup_presign_url(text, interval, timestamptz) IS
'presigned GET URL for an object key in aibackup.s3_bucket';

-- superuser only unless granted
REVOKE ALL ON FUNCTION aibackup_presign_url(text, interval, timestamptz) FROM PUBLIC;
