--
-- aibackup_presign_url against AWS's published SigV4 query-string example
-- (S3 documentation, "Authenticating Requests: Using Query Parameters"):
-- GET examplebucket/test.txt, us-east-1, signed 20130524T000000Z for 86400
-- seconds, signature aeeed9bb...f604d404.  Needs a server configured with
-- test/regress/private.conf (scripts/installcheck.sh does it).
--
CREATE EXTENSION aibackup;
SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_aibackup_user;
RESET client_min_messages;
CREATE ROLE regress_aibackup_user;

-- the configuration this test needs, secrets masked
SELECT name, setting FROM pg_settings
WHERE name IN ('aibackup.s3_endpoint', 'aibackup.s3_uri_style',
               'aibackup.s3_bucket', 'aibackup.s3_region')
ORDER BY name;
SHOW aibackup.s3_access_key_id;
SHOW aibackup.s3_secret_access_key;

-- the example, whole
SELECT aibackup_presign_url('test.txt', '24 hours', '2013-05-24 00:00:00+00')
  = 'https://examplebucket.s3.amazonaws.com/test.txt'
    '?X-Amz-Algorithm=AWS4-HMAC-SHA256'
    '&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request'
    '&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host'
    '&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404'
  AS matches_aws_example;
-- and as text, so that a difference shows
SELECT regexp_split_to_table(
         aibackup_presign_url('test.txt', '1 day', '2013-05-24 00:00:00+00'),
         '[?&]') AS part;

-- the signing time is taken in UTC whatever the session's time zone
SET timezone = 'America/New_York';
SELECT aibackup_presign_url('test.txt', '86400 seconds', '2013-05-23 20:00:00-04')
       LIKE '%&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404'
  AS same_signature;
RESET timezone;

-- another expiry or time signs differently
SELECT aibackup_presign_url('test.txt', '86401 seconds', '2013-05-24 00:00:00+00')
       LIKE '%aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404'
  AS same_signature_other_expiry,
       aibackup_presign_url('test.txt', '86400 seconds', '2013-05-24 00:00:01+00')
       LIKE '%aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404'
  AS same_signature_other_time;

-- checks still come first
SELECT aibackup_presign_url('test.txt', '8 days', '2013-05-24 00:00:00+00');

-- a granted role signs keys of this database's folder only; the bucket's
-- own example key is not one of them
GRANT EXECUTE ON FUNCTION aibackup_presign_url(text, interval, timestamptz)
  TO regress_aibackup_user;
SET ROLE regress_aibackup_user;
SELECT aibackup_presign_url('test.txt', '1 day', '2013-05-24 00:00:00+00');
SELECT aibackup_presign_url(current_database() || '/20130524T000000Z/public.t.csv.gz',
                            '1 day', '2013-05-24 00:00:00+00')
       LIKE 'https://examplebucket.s3.amazonaws.com/' || current_database()
            || '/20130524T000000Z/public.t.csv.gz?X-Amz-Algorithm=AWS4-HMAC-SHA256&%'
  AS signed;
RESET ROLE;

DROP EXTENSION aibackup;
DROP ROLE regress_aibackup_user;
