/*
 * s3.h
 *		S3 client over libcurl.  Pure C: no PostgreSQL headers, never longjmps,
 *		never palloc/ereport.  Every call returns true on success, or false
 *		with *err filled in (operation, key, HTTP status, S3 code/message).
 *
 * All requests go through one path (s3_request.c): sign with SigV4 (fresh
 * x-amz-date every attempt) -> send -> classify -> retry with exponential
 * backoff and jitter inside a time budget.  Only connect/TLS/timeout errors,
 * 5xx, 408, 429 and S3's 400 RequestTimeout are retried.
 *
 * Interrupts: the caller supplies an abort callback that is polled from
 * libcurl's progress callback; it must only read a flag (in PostgreSQL:
 * INTERRUPTS_PENDING_CONDITION()).  When it fires, the call fails with
 * S3ERR_INTERRUPTED and the caller processes the interrupt afterwards.
 *
 * Keys are full object keys (prefix included), unencoded.  Error messages
 * never contain a secret, a signature or a session token.
 *
 * Limits: a key has at most S3_MAX_KEY_LEN bytes as stored (UTF-8, before
 * the URL's percent-encoding); a longer one fails with S3ERR_LIMIT before
 * any request.  An upload has at most S3_MAX_PARTS parts.
 */
#ifndef AIBACKUP_S3_H
#define AIBACKUP_S3_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* longest object key S3 accepts, in bytes of its UTF-8 spelling */
#define S3_MAX_KEY_LEN		1024

/* how a failed call failed */
typedef enum S3ErrorKind
{
	S3ERR_NONE = 0,
	S3ERR_CONFIG,				/* bad or missing settings */
	S3ERR_NETWORK,				/* connect, TLS, timeout, reset (after
								 * retries) */
	S3ERR_HTTP,					/* S3 answered with an error status/body */
	S3ERR_NOT_FOUND,			/* 404 NoSuchKey / NoSuchBucket / NoSuchUpload */
	S3ERR_PROTOCOL,				/* unparsable or unexpected answer */
	S3ERR_INTERRUPTED,			/* the abort callback asked to stop */
	S3ERR_CALLBACK,				/* a caller's data callback failed */
	S3ERR_OOM,
	S3ERR_LIMIT					/* the object breaks one of S3's limits (key
								 * length, part count): refused before sending */
} S3ErrorKind;

typedef struct S3Error
{
	S3ErrorKind kind;
	long		http_status;	/* 0 when no answer */
	char		op[32];			/* "PutObject", "UploadPart", ... */
	char		key[512];		/* object key or prefix involved */
	char		code[64];		/* S3 error code, e.g. SignatureDoesNotMatch */
	char		message[512];	/* one line, human readable, no secrets */
	int			attempts;		/* how many attempts were made */
} S3Error;

/* 0 = go on, non-zero = stop now; must not longjmp or allocate */
typedef int (*S3AbortCallback) (void *arg);

/*
 * Where the client's credentials come from (s3_creds.c).  AUTO takes the
 * keys of S3Config when set, else the first of the sources below that is
 * configured, in this order, as AWS's SDKs do.  Any other value pins one
 * source.  Sources that hand out temporary credentials are asked again
 * before the credentials expire.
 */
typedef enum S3CredSource
{
	S3CRED_AUTO = 0,
	S3CRED_STATIC,				/* access_key/secret_key/session_token below */
	S3CRED_ENV,					/* AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
								 * AWS_SESSION_TOKEN */
	S3CRED_WEB_IDENTITY,		/* AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN
								 * through STS AssumeRoleWithWebIdentity */
	S3CRED_PROFILE,				/* shared credentials and config files */
	S3CRED_CONTAINER,			/* AWS_CONTAINER_CREDENTIALS_FULL_URI or
								 * _RELATIVE_URI (ECS, EKS Pod Identity) */
	S3CRED_IMDS					/* EC2 instance metadata, IMDSv2 */
} S3CredSource;

/* the integrity check sent with request bodies */
typedef enum S3Checksum
{
	S3CHECKSUM_AUTO = 0,		/* Content-MD5, or SHA256 when MD5 is
								 * unavailable (a FIPS-mode OpenSSL) */
	S3CHECKSUM_MD5,
	S3CHECKSUM_SHA256			/* no MD5: the signed payload hash, and
								 * x-amz-checksum-sha256 where S3 wants a
								 * checksum header */
} S3Checksum;

typedef struct S3Config
{
	const char *endpoint;		/* "https://host[:port]" or "" for AWS */
	const char *region;
	const char *bucket;
	bool		path_style;		/* true: endpoint/bucket/key; false:
								 * bucket.host/key */
	const char *access_key;
	const char *secret_key;
	const char *session_token;	/* NULL or "" when none */
	const char *ca_file;		/* NULL or "" = system CAs */
	bool		verify_tls;
	long		connect_timeout_ms; /* 0 = 10 s */
	long		stall_seconds;	/* abort when < stall_bytes/s for this long; 0
								 * = 60 */
	long		stall_bytes;	/* 0 = 1 */
	long		retry_budget_ms;	/* total time for retries; 0 = 60000 */
	int			max_attempts;	/* 0 = 6 */
	S3AbortCallback abort_cb;	/* may be NULL */
	void	   *abort_arg;

	S3CredSource cred_source;
	bool		imds_v1;		/* IMDS without a token when v2 is refused */
	const char *proxy;			/* "" = libcurl's *_proxy environment */
	const char *sse;			/* "", "AES256" or "aws:kms" */
	const char *sse_kms_key_id; /* with aws:kms; "" = the bucket's default */
	const char *storage_class;	/* "" = the bucket's default (STANDARD) */
	S3Checksum	checksum;
} S3Config;

/* "environment", "web identity", ...: for messages */
extern const char *s3_cred_source_name(S3CredSource source);

typedef struct S3Client S3Client;

/* Copies the config (strings included).  NULL with *err on failure. */
extern S3Client *s3_client_new(const S3Config *cfg, S3Error *err);
extern void s3_client_free(S3Client *c);

/* Format "op key: message (HTTP status, code)" into buf. */
extern void s3_error_format(const S3Error *err, char *buf, size_t len);

/*
 * Whether a failed attempt is worth another try: curl_code is a CURLcode
 * (0 when an answer came), http_status and s3_code describe the answer.
 */
extern bool s3_is_retryable(int curl_code, long http_status,
							const char *s3_code);

/*
 * Whether a failure belongs to the one object the call was about and will
 * recur for it on every try, while other objects are unaffected (a key too
 * long, too many parts, a part S3 refused): a caller writing many objects
 * gives up on this one and goes on.  Every other failure (S3 unreachable or
 * failing after retries, credentials, signature, clock, bucket,
 * permissions, a cancel, out of memory, an answer that makes no sense) is
 * not the object's: it would fail the next object too.
 */
extern bool s3_error_is_per_object(const S3Error *err);

/* Check an endpoint setting; false with a message when unusable. */
extern bool s3_endpoint_valid(const char *endpoint, char *msg, size_t len);

/* --- single objects --- */

extern bool s3_put_object(S3Client *c, const char *key,
						  const void *data, size_t len,
						  const char *content_type, S3Error *err);

/* the same, giving the new object's ETag (without quotes) */
extern bool s3_put_object_etag(S3Client *c, const char *key,
							   const void *data, size_t len,
							   const char *content_type,
							   char *etag_out, size_t etag_len,
							   S3Error *err);

/*
 * CopyObject of src_key (up to 5 GiB) to dst_key inside the bucket, made
 * only while the source's ETag is still src_etag (else HTTP 412 in the
 * error's http_status, or 404 when it is gone); the copy's ETag into
 * etag_out.  A multipart ETag is checked by HEADs before and after the
 * copy (Swift's s3api refuses the condition on such objects).
 */
extern bool s3_copy_object(S3Client *c, const char *src_key,
						   const char *src_etag, const char *dst_key,
						   char *etag_out, size_t etag_len, S3Error *err);

#define S3_MAX_COPY_SIZE	((int64_t) 5 * 1024 * 1024 * 1024)

typedef struct S3ObjectInfo
{
	int64_t		size;
	char		etag[80];		/* without quotes */
	char		last_modified[40];
} S3ObjectInfo;

/* *found=false (and true return) when there is no such object */
extern bool s3_head_object(S3Client *c, const char *key, bool *found,
						   S3ObjectInfo *info, S3Error *err);

/*
 * Stream an object into sink (return non-zero to stop: S3ERR_CALLBACK).
 * After a dropped connection the download resumes with a Range header from
 * the last byte delivered, checking the ETag did not change.
 */
typedef int (*S3DataSink) (void *arg, const void *data, size_t len);
extern bool s3_get_object(S3Client *c, const char *key,
						  S3DataSink sink, void *arg,
						  S3ObjectInfo *info, S3Error *err);

/*
 * Pull-style reading of one object, in ranged GETs of chunk bytes each
 * (for consumers that ask for data, like COPY FROM).  Every range carries
 * If-Match on the ETag seen when the reader was opened, so a changed object
 * fails instead of splicing two versions.
 *
 * Prefetch: while the caller consumes one range, a background thread
 * downloads the next (started once an object turns out to have a second
 * range; without one, or when prefetch is off, each call fetches its range
 * itself).  The thread uses a client of its own (curl handle, a copy of the
 * credentials, the reader's own abort flag) and never calls the abort
 * callback, which the caller's thread polls every 100 ms while it waits.
 * So the caller may go on using c for other requests while a reader is
 * open, from its own thread only, as always; c must outlive the reader.
 * A range's error is reported by the call that asks for that range, with
 * the same S3Error as without prefetch, and the next call tries it again.
 * s3_reader_free() stops and joins the thread, also mid-stream.
 *
 * Memory: two chunks (one without the thread), and with the thread a
 * second connection to S3.
 */
typedef struct S3Reader S3Reader;

/* HEADs the object; *found=false (true return) when there is none */
extern S3Reader *s3_reader_open(S3Client *c, const char *key, size_t chunk,
								bool *found, S3Error *err);

/* the same, prefetching only if prefetch (s3_reader_open: always) */
extern S3Reader *s3_reader_open_opt(S3Client *c, const char *key,
									size_t chunk, bool prefetch,
									bool *found, S3Error *err);
extern int64_t s3_reader_size(const S3Reader *r);

/* whether the prefetch thread was started */
extern bool s3_reader_prefetching(const S3Reader *r);

/* next piece: *len == 0 at the end; data valid until the next call */
extern bool s3_reader_next(S3Reader *r, const void **data, size_t *len,
						   S3Error *err);
extern void s3_reader_free(S3Reader *r);

/*
 * Stop and join the thread of every reader not yet freed, leaving the
 * readers themselves (a later call fetches its ranges itself).  For a
 * process about to exit without freeing them (PostgreSQL's FATAL): no
 * thread may still run libcurl or OpenSSL while exit() runs their atexit
 * handlers.
 */
extern void s3_reader_stop_all(void);

/* --- listing and deleting --- */

typedef struct S3ListEntry
{
	const char *key;			/* object key, or common prefix */
	bool		is_prefix;		/* a CommonPrefixes entry (with delimiter) */
	int64_t		size;
	const char *etag;
	const char *last_modified;
} S3ListEntry;

/* return non-zero to stop listing (not an error) */
typedef int (*S3ListCallback) (void *arg, const S3ListEntry *entry);

/* ListObjectsV2 over all pages; delimiter may be NULL */
extern bool s3_list_objects(S3Client *c, const char *prefix,
							const char *delimiter,
							S3ListCallback cb, void *arg, S3Error *err);

/* DeleteObjects in batches of at most 1000, with Content-MD5 */
extern bool s3_delete_objects(S3Client *c, const char *const *keys, int nkeys,
							  S3Error *err);

/* --- multipart --- */

typedef struct S3Multipart
{
	char	   *key;
	char	   *upload_id;
	int			nparts;
	int			cap;
	char	  **etags;			/* etags[i] is part i+1's ETag */
} S3Multipart;

extern bool s3_multipart_create(S3Client *c, const char *key,
								const char *content_type,
								S3Multipart **mp, S3Error *err);
extern bool s3_multipart_upload_part(S3Client *c, S3Multipart *mp,
									 const void *data, size_t len,
									 S3Error *err);

/* refuses zero parts; parses an <Error> inside a 200 answer */
extern bool s3_multipart_complete(S3Client *c, S3Multipart *mp,
								  char *etag_out, size_t etag_len,
								  S3Error *err);
extern bool s3_multipart_abort(S3Client *c, S3Multipart *mp, S3Error *err);
extern void s3_multipart_free(S3Multipart *mp);

typedef struct S3UploadEntry
{
	const char *key;
	const char *upload_id;
	const char *initiated;
} S3UploadEntry;
typedef int (*S3UploadCallback) (void *arg, const S3UploadEntry *entry);

/* ListMultipartUploads under prefix, all pages */
extern bool s3_list_multipart_uploads(S3Client *c, const char *prefix,
									  S3UploadCallback cb, void *arg,
									  S3Error *err);
extern bool s3_abort_upload_id(S3Client *c, const char *key,
							   const char *upload_id, S3Error *err);

/* --- streaming upload: one PUT if it fits in one part, else multipart --- */

#define S3_MIN_PART_SIZE	(5 * 1024 * 1024)

/*
 * Parts per multipart upload.  Only a test binary compiles the core with a
 * smaller value (test/s3/test_s3_limits.c, so that the limit can be reached
 * with megabytes); the extension never defines it.
 */
#ifndef S3_MAX_PARTS
#define S3_MAX_PARTS		10000
#endif

/*
 * Part size for an object of about est_bytes: >= min_part, whole MiB, and
 * room for twice est_bytes in S3_MAX_PARTS parts (up to 5 GiB parts).
 */
extern size_t s3_choose_part_size(int64_t est_bytes, size_t min_part);

typedef struct S3Upload S3Upload;

/*
 * Memory held: one part buffer of part_size bytes.  Every part but the last
 * has part_size bytes (R2 refuses anything else), so an upload holds at
 * most S3_MAX_PARTS * part_size bytes: a write beyond that fails with
 * S3ERR_LIMIT at once and aborts the upload.
 */
extern S3Upload *s3_upload_begin(S3Client *c, const char *key,
								 const char *content_type, size_t part_size,
								 S3Error *err);
extern bool s3_upload_write(S3Upload *u, const void *data, size_t len,
							S3Error *err);

/* sends what is left and completes; bytes/parts for reporting */
extern bool s3_upload_finish(S3Upload *u, S3Error *err);
extern int64_t s3_upload_bytes_sent(const S3Upload *u);

/* the finished object's ETag, without quotes ("" before the finish) */
extern const char *s3_upload_etag(const S3Upload *u);
extern int	s3_upload_parts(const S3Upload *u);

/* aborts any multipart upload in progress and frees everything */
extern void s3_upload_free(S3Upload *u);

/* --- presigned URLs --- */

/* malloc'd URL for GET of key, valid expires seconds from signed_at */
extern char *s3_presign_get(const S3Config *cfg, const char *key,
							long expires, time_t signed_at, S3Error *err);

/*
 * The same with the client's credentials, fetched first if need be.
 * *creds_expire is when they stop working (0 = not temporary): a URL
 * signed with temporary credentials fails from then on.
 */
extern char *s3_client_presign_get(S3Client *c, const char *key,
								   long expires, time_t signed_at,
								   time_t *creds_expire, S3Error *err);

#endif							/* AIBACKUP_S3_H */
