/*
 * s3_object.c
 *		S3 client: the client object and the single-object and listing verbs
 *		(PutObject, HeadObject, GetObject, ListObjectsV2, DeleteObjects),
 *		the pull-style reader with its prefetch thread, and presigned URLs.
 *		Each verb describes its request and hands it to s3_request(); none
 *		talks to libcurl itself (the reader only makes its thread a handle).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "digest.h"
#include "s3_internal.h"
#include "thread.h"
#include "xml.h"

#define S3_DELETE_BATCH		1000

/* keep a private copy of a setting string */
static const char *
s3_keep(S3Client *c, const char *s)
{
	char	   *copy;

	if (s == NULL)
		return NULL;
	if (c->nstrings >= (int) (sizeof(c->strings) / sizeof(c->strings[0])))
		return NULL;
	copy = strdup(s);
	if (copy)
		c->strings[c->nstrings++] = copy;
	return copy;
}

S3Client *
s3_client_new(const S3Config *cfg, S3Error *err)
{
	S3Client   *c;
	char		msg[256];

	if (cfg->bucket == NULL || cfg->bucket[0] == '\0')
	{
		s3_set_error(err, S3ERR_CONFIG, "configure", NULL,
					 "no bucket is configured");
		return NULL;
	}
	c = calloc(1, sizeof(S3Client));
	if (c == NULL)
	{
		s3_set_error(err, S3ERR_OOM, "configure", NULL, "out of memory");
		return NULL;
	}
	c->cfg = *cfg;
	c->cfg.endpoint = s3_keep(c, cfg->endpoint ? cfg->endpoint : "");
	c->cfg.region = s3_keep(c, cfg->region && cfg->region[0] ? cfg->region : "us-east-1");
	c->cfg.bucket = s3_keep(c, cfg->bucket);
	c->cfg.access_key = s3_keep(c, cfg->access_key ? cfg->access_key : "");
	c->cfg.secret_key = s3_keep(c, cfg->secret_key ? cfg->secret_key : "");
	c->cfg.session_token = s3_keep(c, cfg->session_token ? cfg->session_token : "");
	c->cfg.ca_file = s3_keep(c, cfg->ca_file ? cfg->ca_file : "");
	c->cfg.proxy = s3_keep(c, cfg->proxy ? cfg->proxy : "");
	c->cfg.sse = s3_keep(c, cfg->sse ? cfg->sse : "");
	c->cfg.sse_kms_key_id = s3_keep(c, cfg->sse_kms_key_id ? cfg->sse_kms_key_id : "");
	c->cfg.storage_class = s3_keep(c, cfg->storage_class ? cfg->storage_class : "");
	c->rng = (unsigned int) time(NULL) ^ (unsigned int) (uintptr_t) c;

	if (!s3_parse_endpoint(c->cfg.endpoint, c->cfg.region, &c->scheme,
						   &c->hostport, msg, sizeof(msg)))
	{
		s3_set_error(err, S3ERR_CONFIG, "configure", NULL, "%s", msg);
		s3_client_free(c);
		return NULL;
	}
	if (!c->cfg.path_style && strchr(c->cfg.bucket, '.') != NULL &&
		strcmp(c->scheme, "https") == 0)
	{
		/* a dotted bucket name does not match the wildcard certificate */
		s3_set_error(err, S3ERR_CONFIG, "configure", NULL,
					 "bucket name \"%s\" contains a dot and cannot be used with virtual-host addressing over https; use path-style addressing",
					 c->cfg.bucket);
		s3_client_free(c);
		return NULL;
	}
	c->curl = curl_easy_init();
	if (c->cfg.endpoint == NULL || c->cfg.region == NULL ||
		c->cfg.bucket == NULL || c->cfg.access_key == NULL ||
		c->cfg.secret_key == NULL || c->cfg.session_token == NULL ||
		c->cfg.ca_file == NULL || c->cfg.proxy == NULL ||
		c->cfg.sse == NULL || c->cfg.sse_kms_key_id == NULL ||
		c->cfg.storage_class == NULL || c->curl == NULL)
	{
		s3_set_error(err, S3ERR_OOM, "configure", NULL, "out of memory");
		s3_client_free(c);
		return NULL;
	}
	return c;
}

void
s3_client_free(S3Client *c)
{
	if (c == NULL)
		return;
	if (c->curl)
		curl_easy_cleanup(c->curl);
	s3_creds_clear(&c->creds);
	for (int i = 0; i < c->nstrings; i++)
	{
		/* wipe secrets before handing the memory back */
		memset(c->strings[i], 0, strlen(c->strings[i]));
		free(c->strings[i]);
	}
	free(c->scheme);
	free(c->hostport);
	free(c);
}

bool
s3_put_object(S3Client *c, const char *key, const void *data, size_t len,
			  const char *content_type, S3Error *err)
{
	return s3_put_object_etag(c, key, data, len, content_type, NULL, 0, err);
}

bool
s3_put_object_etag(S3Client *c, const char *key, const void *data, size_t len,
				   const char *content_type, char *etag_out, size_t etag_len,
				   S3Error *err)
{
	S3Request	req = {0};
	S3Response	resp;
	bool		ok;

	SigV4Param	h[4];

	req.op = "PutObject";
	req.method = "PUT";
	req.key = key;
	req.headers = h;
	req.nheaders = s3_new_object_headers(c, h);
	req.body = data;
	req.body_len = len;
	req.has_body = true;
	req.content_type = content_type;
	s3_response_init(&resp);
	ok = s3_request(c, &req, &resp, err);
	if (ok && etag_out != NULL)
		snprintf(etag_out, etag_len, "%s", resp.etag);
	s3_response_free(&resp);
	return ok;
}

/*
 * One CopyObject: the copy names its source as /bucket/key, percent-encoded
 * as a path, and with if_match is made only while the source has that
 * ETag.  The answer can be an <Error> inside a 200; the new object's ETag
 * is in <CopyObjectResult>.
 */
static bool
copy_request(S3Client *c, const char *src_key, const char *if_match,
			 const char *dst_key, char *etag_out, size_t etag_len,
			 S3Error *err)
{
	S3Request	req = {0};
	S3Response	resp;
	AbBuf		source;
	char		match[96];
	bool		ok;
	char	   *etag = NULL;

	SigV4Param	h[6];
	int			n;

	abuf_init(&source);
	abuf_appendc(&source, '/');
	(void) sigv4_uri_encode(&source, c->cfg.bucket, strlen(c->cfg.bucket), false);
	abuf_appendc(&source, '/');
	(void) sigv4_uri_encode(&source, src_key, strlen(src_key), true);
	if (if_match)
		snprintf(match, sizeof(match), "\"%s\"", if_match);
	if (source.oom)
	{
		abuf_free(&source);
		s3_set_error(err, S3ERR_OOM, "CopyObject", dst_key, "out of memory");
		return false;
	}
	n = s3_new_object_headers(c, h);
	h[n++] = sigv4_param("x-amz-copy-source", source.data);
	if (if_match)
		h[n++] = sigv4_param("x-amz-copy-source-if-match", match);

	req.op = "CopyObject";
	req.method = "PUT";
	req.key = dst_key;
	req.headers = h;
	req.nheaders = n;
	req.body_may_hold_error = true;
	s3_response_init(&resp);
	ok = s3_request(c, &req, &resp, err);
	if (ok && resp.body.data)
		etag = xml_find_text(xml_span(resp.body.data, resp.body.len), "ETag");
	if (ok && etag == NULL)
	{
		s3_set_error(err, S3ERR_PROTOCOL, "CopyObject", dst_key,
					 "unexpected answer: no ETag in CopyObjectResult");
		ok = false;
	}
	if (ok && etag_out != NULL)
		s3_copy_header_value(etag_out, etag_len, etag, strlen(etag), true);
	free(etag);
	s3_response_free(&resp);
	abuf_free(&source);
	return ok;
}

/* is key there with this ETag?  If not, err says so as S3 would (404, 412) */
static bool
source_matches(S3Client *c, const char *key, const char *etag, S3Error *err)
{
	S3ObjectInfo info;
	bool		found = false;

	if (!s3_head_object(c, key, &found, &info, err))
		return false;
	if (!found)
	{
		s3_set_error(err, S3ERR_NOT_FOUND, "CopyObject", key,
					 "the source object does not exist");
		err->http_status = 404;
		return false;
	}
	if (strcmp(info.etag, etag) != 0)
	{
		s3_set_error(err, S3ERR_HTTP, "CopyObject", key,
					 "the source object's ETag is no longer %s", etag);
		err->http_status = 412;
		snprintf(err->code, sizeof(err->code), "PreconditionFailed");
		return false;
	}
	return true;
}

bool
s3_copy_object(S3Client *c, const char *src_key, const char *src_etag,
			   const char *dst_key, char *etag_out, size_t etag_len,
			   S3Error *err)
{
	if (strchr(src_etag, '-') == NULL)
		return copy_request(c, src_key, src_etag, dst_key, etag_out, etag_len,
							err);

	/*
	 * A multipart object's ETag ("...-N"): Swift's s3api checks the condition
	 * against an ETag of its own and refuses every such copy.  The source is
	 * compared before and after an unconditional copy instead: a change in
	 * between shows after, and a multipart ETag changes with the bytes.
	 */
	return source_matches(c, src_key, src_etag, err) &&
		copy_request(c, src_key, NULL, dst_key, etag_out, etag_len, err) &&
		source_matches(c, src_key, src_etag, err);
}

bool
s3_head_object(S3Client *c, const char *key, bool *found, S3ObjectInfo *info,
			   S3Error *err)
{
	S3Request	req = {0};
	S3Response	resp;
	bool		ok;

	req.op = "HeadObject";
	req.method = "HEAD";
	req.key = key;
	req.head = true;
	s3_response_init(&resp);
	ok = s3_request(c, &req, &resp, err);
	*found = ok;
	if (!ok && err->kind == S3ERR_NOT_FOUND)
	{
		ok = true;
		memset(err, 0, sizeof(*err));
	}
	if (ok && *found && info)
	{
		info->size = resp.content_length;
		snprintf(info->etag, sizeof(info->etag), "%s", resp.etag);
		snprintf(info->last_modified, sizeof(info->last_modified), "%s",
				 resp.last_modified);
	}
	s3_response_free(&resp);
	return ok;
}

bool
s3_get_object(S3Client *c, const char *key, S3DataSink sink, void *arg,
			  S3ObjectInfo *info, S3Error *err)
{
	S3Request	req = {0};
	S3Response	resp;
	bool		ok;

	req.op = "GetObject";
	req.method = "GET";
	req.key = key;
	req.sink = sink;
	req.sink_arg = arg;
	s3_response_init(&resp);
	ok = s3_request(c, &req, &resp, err);
	if (ok && info)
	{
		info->size = resp.delivered;
		snprintf(info->etag, sizeof(info->etag), "%s", resp.etag);
		snprintf(info->last_modified, sizeof(info->last_modified), "%s",
				 resp.last_modified);
	}
	s3_response_free(&resp);
	return ok;
}

/*
 * The reader.  Each range is one GET with Range and If-Match, fetched into
 * one of two responses: the one handed out last, and the next.
 *
 * Prefetch.  After handing out a range, the caller's thread asks a
 * background thread for the next one, which it downloads while the caller
 * consumes this one (COPY parses it); the next call waits for it.  So
 * download and COPY overlap, and at most one range is in flight.  The
 * thread is started when a range is followed by more, so an object of one
 * range never starts one, and joined by s3_reader_free().  If it cannot be
 * started, the caller fetches each range itself, as when prefetch is off.
 *
 * The thread calls nothing but libcurl, the S3 request path and the
 * pthread primitives, and runs with every signal blocked, so signals keep
 * reaching the caller's thread (the process's PostgreSQL handlers).  It has
 * a client of its own (tclient): its own curl handle, a copy of the
 * caller's credentials made before each range, and as abort callback the
 * reader's own flag, never the caller's (which reads PostgreSQL's state).
 * It shares only the settings strings of the caller's client, which never
 * change; the caller's client stays free for other requests meanwhile.
 * tclient never fetches credentials (that touches process-wide state): a
 * range that needs new ones is fetched again by the caller, on its client.
 *
 * The caller waits for the thread polling its abort callback every
 * READER_POLL_MS; when it fires, the flag stops the thread's transfer and
 * the call fails with S3ERR_INTERRUPTED.  A range the thread failed on is
 * reported, with the thread's S3Error, by the call that asks for it; after
 * either, the next call fetches that range itself, as a failed call would
 * have been retried before.
 */
#define READER_POLL_MS		100

struct S3Reader
{
	S3Client   *client;
	char	   *key;
	size_t		chunk;
	int64_t		size;
	int64_t		offset;			/* next byte to hand out */
	char		etag[80];
	S3Response	resp[2];		/* resp[cur]: the range handed out last */
	int			cur;

	bool		prefetch;		/* may start the thread */
	bool		thread_started;
	S3Client   *tclient;		/* the thread's client */
	pthread_t	thread;
	pthread_mutex_t mutex;
	pthread_cond_t work;		/* the thread waits here */
	pthread_cond_t done;		/* the caller waits here */

	/* under mutex; queued is written by the caller only */
	bool		queued;			/* the range at offset is asked for */
	bool		fetched;		/* ... and the thread is done with it */
	bool		quit;			/* tells the thread to end */
	bool		abort;			/* stops the thread's transfer */
	bool		job_ok;
	bool		job_redo;		/* it needed new credentials */
	S3Error		job_err;

	struct S3Reader *next_live; /* live_readers: readers with a thread */
};

/*
 * Readers whose thread runs, for s3_reader_stop_all().  Touched only by the
 * thread that opens and frees readers (the caller's), so without a lock.
 */
static S3Reader *live_readers;

S3Reader *
s3_reader_open_opt(S3Client *c, const char *key, size_t chunk, bool prefetch,
				   bool *found, S3Error *err)
{
	S3ObjectInfo info;
	S3Reader   *r;

	if (!s3_head_object(c, key, found, &info, err))
		return NULL;
	if (!*found)
		return NULL;
	r = calloc(1, sizeof(S3Reader));
	if (r == NULL || (r->key = strdup(key)) == NULL)
	{
		free(r);
		s3_set_error(err, S3ERR_OOM, "GetObject", key, "out of memory");
		return NULL;
	}
	r->client = c;
	r->chunk = chunk > 0 ? chunk : 8 * 1024 * 1024;
	r->size = info.size;
	r->prefetch = prefetch;
	snprintf(r->etag, sizeof(r->etag), "%s", info.etag);
	s3_response_init(&r->resp[0]);
	s3_response_init(&r->resp[1]);
	return r;
}

S3Reader *
s3_reader_open(S3Client *c, const char *key, size_t chunk, bool *found,
			   S3Error *err)
{
	return s3_reader_open_opt(c, key, chunk, true, found, err);
}

int64_t
s3_reader_size(const S3Reader *r)
{
	return r->size;
}

bool
s3_reader_prefetching(const S3Reader *r)
{
	return r != NULL && r->thread_started;
}

/* the range at from, with client c (the caller's or the thread's), in resp */
static bool
fetch_range(S3Reader *r, S3Client *c, int64_t from, S3Response *resp,
			S3Error *err)
{
	S3Request	req = {0};
	SigV4Param	h[2];
	char		range[64];
	char		match[96];
	int64_t		last;
	int			nh = 0;

	last = from + (int64_t) r->chunk - 1;
	if (last >= r->size)
		last = r->size - 1;
	snprintf(range, sizeof(range), "bytes=%lld-%lld",
			 (long long) from, (long long) last);
	h[nh++] = sigv4_param("range", range);
	if (r->etag[0])
	{
		snprintf(match, sizeof(match), "\"%s\"", r->etag);
		h[nh++] = sigv4_param("if-match", match);
	}
	req.op = "GetObject";
	req.method = "GET";
	req.key = r->key;
	req.headers = h;
	req.nheaders = nh;
	req.max_body = (size_t) (last - from + 1);
	s3_response_free(resp);
	s3_response_init(resp);
	if (!s3_request(c, &req, resp, err))
		return false;
	if (resp->status != 206 && !(resp->status == 200 && from == 0 &&
								 (int64_t) resp->body.len == r->size))
	{
		s3_set_error(err, S3ERR_PROTOCOL, "GetObject", r->key,
					 "the server did not answer the range request with 206");
		err->http_status = resp->status;
		return false;
	}
	if ((int64_t) resp->body.len != last - from + 1)
	{
		s3_set_error(err, S3ERR_PROTOCOL, "GetObject", r->key,
					 "short read: asked for %lld bytes at %lld, got %zu",
					 (long long) (last - from + 1), (long long) from,
					 resp->body.len);
		return false;
	}
	return true;
}

/* the thread's abort callback: the reader's flag */
static int
reader_stopping(void *arg)
{
	S3Reader   *r = arg;
	bool		stop;

	pthread_mutex_lock(&r->mutex);
	stop = r->abort;
	pthread_mutex_unlock(&r->mutex);
	return stop ? 1 : 0;
}

static void *
prefetch_thread(void *arg)
{
	S3Reader   *r = arg;

	pthread_mutex_lock(&r->mutex);
	for (;;)
	{
		S3Response *resp;
		int64_t		from;
		S3Error		err;
		bool		ok;

		while (!r->quit && !(r->queued && !r->fetched))
			pthread_cond_wait(&r->work, &r->mutex);
		if (r->quit)
			break;
		resp = &r->resp[1 - r->cur];
		from = r->offset;
		pthread_mutex_unlock(&r->mutex);

		memset(&err, 0, sizeof(err));
		r->tclient->creds_wanted = false;
		ok = fetch_range(r, r->tclient, from, resp, &err);

		pthread_mutex_lock(&r->mutex);
		r->job_ok = ok;
		r->job_redo = !ok && r->tclient->creds_wanted;
		r->job_err = err;
		r->fetched = true;
		pthread_cond_signal(&r->done);
	}
	pthread_mutex_unlock(&r->mutex);
	return NULL;
}

/*
 * The thread's client: a copy of the caller's settings, strings included,
 * and a curl handle of its own.  Nothing of it points into the caller's
 * client, which may be freed while the thread still runs (a PostgreSQL
 * FATAL exit frees it from the transaction's abort, before the process
 * ends and without s3_reader_free()).
 */
static S3Client *
thread_client(S3Reader *r)
{
	S3Client   *c = r->client;
	S3Client   *t;
	S3Error		ignore;

	t = s3_client_new(&c->cfg, &ignore);
	if (t == NULL)
		return NULL;
	t->cfg.abort_cb = reader_stopping;
	t->cfg.abort_arg = r;
	t->rng = c->rng ^ (unsigned int) (uintptr_t) t;
	t->creds_fixed = true;
	return t;
}

static void
thread_client_free(S3Client *t)
{
	s3_client_free(t);
}

/* the thread and what it syncs with; false (all undone) leaves work here */
static bool
start_thread(S3Reader *r)
{
	pthread_condattr_t attr;
	bool		attr_ok = false,
				mutex = false,
				work = false,
				done = false;

	if ((r->tclient = thread_client(r)) != NULL &&
		(attr_ok = pthread_condattr_init(&attr) == 0) &&
		pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) == 0 &&
		(mutex = pthread_mutex_init(&r->mutex, NULL) == 0) &&
		(work = pthread_cond_init(&r->work, NULL) == 0) &&
		(done = pthread_cond_init(&r->done, &attr) == 0) &&
		ab_thread_create(&r->thread, prefetch_thread, r))
	{
		pthread_condattr_destroy(&attr);
		r->next_live = live_readers;
		live_readers = r;
		return true;
	}
	if (done)
		pthread_cond_destroy(&r->done);
	if (work)
		pthread_cond_destroy(&r->work);
	if (mutex)
		pthread_mutex_destroy(&r->mutex);
	if (attr_ok)
		pthread_condattr_destroy(&attr);
	if (r->tclient)
		thread_client_free(r->tclient);
	r->tclient = NULL;
	return false;
}

/*
 * Ask the thread for the range at r->offset, starting it if need be; if it
 * cannot be asked, the next call fetches the range itself.
 */
static void
prefetch_next(S3Reader *r)
{
	const S3Credentials *cr = &r->client->creds;
	S3Error		ignore;

	if (!r->prefetch)
		return;
	if (!r->thread_started)
	{
		r->thread_started = start_thread(r);
		r->prefetch = r->thread_started;
		if (!r->thread_started)
			return;
	}

	/* the caller's current credentials (the thread is idle) */
	s3_creds_clear(&r->tclient->creds);
	if (cr->access_key == NULL ||
		s3_creds_keep(&r->tclient->creds, cr->source, cr->access_key,
					  cr->secret_key, cr->session_token, cr->expires,
					  &ignore) != S3CRED_FOUND)
		return;

	pthread_mutex_lock(&r->mutex);
	r->queued = true;
	r->fetched = false;
	pthread_cond_signal(&r->work);
	pthread_mutex_unlock(&r->mutex);
}

/*
 * Wait for the range the thread was asked for.  True with *got when it has
 * it; true without when the caller must fetch it itself; false when the
 * caller's abort callback fired meanwhile or the thread failed.
 */
static bool
prefetch_wait(S3Reader *r, bool *got, S3Error *err)
{
	const S3Config *cfg = &r->client->cfg;
	bool		stop = false;

	*got = false;
	pthread_mutex_lock(&r->mutex);
	while (!r->fetched)
	{
		struct timespec ts;

		if (!stop && cfg->abort_cb && cfg->abort_cb(cfg->abort_arg) != 0)
		{
			/* the thread's transfer sees this at its next progress call */
			stop = true;
			r->abort = true;
		}
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += READER_POLL_MS * 1000000L;
		if (ts.tv_nsec >= 1000000000L)
		{
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&r->done, &r->mutex, &ts);
	}
	r->queued = false;
	r->fetched = false;
	r->abort = false;
	if (stop)
		s3_set_error(err, S3ERR_INTERRUPTED, "GetObject", r->key,
					 "canceled on request");
	else if (r->job_ok)
		*got = true;
	else if (!r->job_redo)
	{
		*err = r->job_err;
		stop = true;
	}
	pthread_mutex_unlock(&r->mutex);
	return !stop;
}

bool
s3_reader_next(S3Reader *r, const void **data, size_t *len, S3Error *err)
{
	bool		got = false;

	*data = NULL;
	*len = 0;
	if (r->offset >= r->size)
		return true;
	if (r->queued)
	{
		if (!prefetch_wait(r, &got, err))
			return false;
		if (got)
			r->cur = 1 - r->cur;
	}
	if (!got && !fetch_range(r, r->client, r->offset, &r->resp[r->cur], err))
		return false;
	*data = r->resp[r->cur].body.data;
	*len = r->resp[r->cur].body.len;
	r->offset += (int64_t) *len;
	if (r->offset < r->size)
		prefetch_next(r);
	return true;
}

/* stop and join r's thread, and forget it; its buffers stay */
static void
stop_thread(S3Reader *r)
{
	S3Reader  **p;

	if (!r->thread_started)
		return;
	/* a range in flight is abandoned: its transfer stops soon */
	pthread_mutex_lock(&r->mutex);
	r->quit = true;
	r->abort = true;
	pthread_cond_signal(&r->work);
	pthread_mutex_unlock(&r->mutex);
	pthread_join(r->thread, NULL);
	pthread_cond_destroy(&r->work);
	pthread_cond_destroy(&r->done);
	pthread_mutex_destroy(&r->mutex);
	thread_client_free(r->tclient);
	r->tclient = NULL;
	r->thread_started = false;
	r->prefetch = false;
	r->queued = false;
	for (p = &live_readers; *p != NULL; p = &(*p)->next_live)
	{
		if (*p == r)
		{
			*p = r->next_live;
			break;
		}
	}
}

void
s3_reader_free(S3Reader *r)
{
	if (r == NULL)
		return;
	stop_thread(r);
	s3_response_free(&r->resp[0]);
	s3_response_free(&r->resp[1]);
	free(r->key);
	free(r);
}

void
s3_reader_stop_all(void)
{
	while (live_readers != NULL)
		stop_thread(live_readers);
}

static bool
s3_bad_answer(S3Error *err, const char *op, const char *key, const char *what)
{
	s3_set_error(err, S3ERR_PROTOCOL, op, key, "unexpected answer: %s", what);
	return false;
}

bool
s3_list_objects(S3Client *c, const char *prefix, const char *delimiter,
				S3ListCallback cb, void *arg, S3Error *err)
{
	char	   *token = NULL;
	bool		ok = true;
	bool		stop = false;

	do
	{
		S3Request	req = {0};
		S3Response	resp;
		SigV4Param	q[4];
		int			nq = 0;
		XmlSpan		doc,
					it,
					item;
		char	   *truncated;

		q[nq++] = sigv4_param("list-type", "2");
		q[nq++] = sigv4_param("prefix", prefix ? prefix : "");
		if (delimiter && delimiter[0])
			q[nq++] = sigv4_param("delimiter", delimiter);
		if (token)
			q[nq++] = sigv4_param("continuation-token", token);
		req.op = "ListObjectsV2";
		req.method = "GET";
		req.key = NULL;
		req.query = q;
		req.nquery = nq;

		s3_response_init(&resp);
		if (!s3_request(c, &req, &resp, err))
		{
			snprintf(err->key, sizeof(err->key), "%s", prefix ? prefix : "");
			s3_response_free(&resp);
			ok = false;
			break;
		}
		doc = xml_span(resp.body.data, resp.body.len);
		if (resp.body.data == NULL || !xml_find(doc, "ListBucketResult", &doc))
		{
			s3_response_free(&resp);
			ok = s3_bad_answer(err, "ListObjectsV2", prefix, "no ListBucketResult");
			break;
		}

		it = doc;
		while (!stop && xml_next(&it, "Contents", &item))
		{
			S3ListEntry e = {0};
			char	   *k = xml_find_text(item, "Key");
			char	   *size = xml_find_text(item, "Size");
			char	   *etag = xml_find_text(item, "ETag");
			char	   *lm = xml_find_text(item, "LastModified");

			if (etag && etag[0] == '"')
			{
				size_t		n = strlen(etag);

				memmove(etag, etag + 1, n);
				if (n >= 2 && etag[n - 2] == '"')
					etag[n - 2] = '\0';
			}
			e.key = k ? k : "";
			e.size = size ? strtoll(size, NULL, 10) : 0;
			e.etag = etag ? etag : "";
			e.last_modified = lm ? lm : "";
			if (k && cb(arg, &e) != 0)
				stop = true;
			free(k);
			free(size);
			free(etag);
			free(lm);
		}
		it = doc;
		while (!stop && xml_next(&it, "CommonPrefixes", &item))
		{
			S3ListEntry e = {0};
			char	   *p = xml_find_text(item, "Prefix");

			e.key = p ? p : "";
			e.is_prefix = true;
			e.etag = "";
			e.last_modified = "";
			if (p && cb(arg, &e) != 0)
				stop = true;
			free(p);
		}

		truncated = xml_find_text(doc, "IsTruncated");
		free(token);
		token = NULL;
		if (truncated && strcmp(truncated, "true") == 0)
		{
			token = xml_find_text(doc, "NextContinuationToken");
			if (token == NULL || token[0] == '\0')
			{
				free(truncated);
				s3_response_free(&resp);
				ok = s3_bad_answer(err, "ListObjectsV2", prefix,
								   "truncated listing without a continuation token");
				break;
			}
		}
		free(truncated);
		s3_response_free(&resp);
	} while (token != NULL && !stop);

	free(token);
	return ok;
}

/*
 * DeleteObject for each of keys[0..n-1]: for stores that refuse
 * DeleteObjects without Content-MD5 when MD5 is not used.  A missing key
 * is no error (S3 answers 204 for it too).
 */
static bool
s3_delete_each(S3Client *c, const char *const *keys, int n, S3Error *err)
{
	for (int i = 0; i < n; i++)
	{
		S3Request	req = {0};
		S3Response	resp;
		bool		ok;

		req.op = "DeleteObject";
		req.method = "DELETE";
		req.key = keys[i];
		s3_response_init(&resp);
		ok = s3_request(c, &req, &resp, err);
		s3_response_free(&resp);
		if (!ok && err->kind != S3ERR_NOT_FOUND)
			return false;
	}
	memset(err, 0, sizeof(*err));
	return true;
}

/* one DeleteObjects request for keys[0..n-1] */
static bool
s3_delete_batch(S3Client *c, const char *const *keys, int n, S3Error *err)
{
	S3Request	req = {0};
	S3Response	resp;
	SigV4Param	q[1] = {{"delete", ""}};
	AbBuf		body;
	bool		ok;
	XmlSpan		doc,
				it,
				item;

	if (c->batch_delete_refused)
		return s3_delete_each(c, keys, n, err);
	abuf_init(&body);
	abuf_appends(&body, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
				 "<Delete><Quiet>true</Quiet>");
	for (int i = 0; i < n; i++)
	{
		abuf_appends(&body, "<Object><Key>");
		xml_escape(&body, keys[i]);
		abuf_appends(&body, "</Key></Object>");
	}
	abuf_appends(&body, "</Delete>");
	if (body.oom)
	{
		abuf_free(&body);
		s3_set_error(err, S3ERR_OOM, "DeleteObjects", keys[0], "out of memory");
		return false;
	}

	req.op = "DeleteObjects";
	req.method = "POST";
	req.query = q;
	req.nquery = 1;
	req.body = body.data;
	req.body_len = body.len;
	req.has_body = true;
	req.content_type = "application/xml";
	req.body_may_hold_error = true;
	req.checksum_required = true;
	s3_response_init(&resp);
	ok = s3_request(c, &req, &resp, err);
	if (!ok && !s3_uses_md5(c) && err->http_status == 400 &&
		strcmp(err->code, "InvalidRequest") == 0)
	{
		/* a store that insists on Content-MD5 (Swift): key by key instead */
		c->batch_delete_refused = true;
		s3_response_free(&resp);
		abuf_free(&body);
		return s3_delete_each(c, keys, n, err);
	}
	if (ok && resp.body.data)
	{
		/* Quiet mode lists only the keys that could not be deleted */
		doc = xml_span(resp.body.data, resp.body.len);
		it = doc;
		if (xml_next(&it, "Error", &item))
		{
			char	   *k = xml_find_text(item, "Key");
			char	   *code = xml_find_text(item, "Code");
			char	   *msg = xml_find_text(item, "Message");

			s3_set_error(err, S3ERR_HTTP, "DeleteObjects", k ? k : "",
						 "%s", msg ? msg : "could not delete object");
			snprintf(err->code, sizeof(err->code), "%s", code ? code : "");
			err->http_status = resp.status;
			free(k);
			free(code);
			free(msg);
			ok = false;
		}
	}
	s3_response_free(&resp);
	abuf_free(&body);
	return ok;
}

bool
s3_delete_objects(S3Client *c, const char *const *keys, int nkeys, S3Error *err)
{
	for (int i = 0; i < nkeys; i += S3_DELETE_BATCH)
	{
		int			n = nkeys - i < S3_DELETE_BATCH ? nkeys - i : S3_DELETE_BATCH;

		if (!s3_delete_batch(c, keys + i, n, err))
			return false;
	}
	return true;
}

char *
s3_presign_get(const S3Config *cfg, const char *key, long expires,
			   time_t signed_at, S3Error *err)
{
	char	   *scheme = NULL;
	char	   *hostport = NULL;
	char		msg[256];
	char		amz_date[17];
	AbBuf		host,
				path,
				query,
				url;
	SigV4Presign p = {0};
	char	   *result = NULL;

	if (expires < 1 || expires > 604800)
	{
		s3_set_error(err, S3ERR_CONFIG, "presign", key,
					 "expiry must be between 1 second and 7 days");
		return NULL;
	}
	if (cfg->bucket == NULL || cfg->bucket[0] == '\0')
	{
		s3_set_error(err, S3ERR_CONFIG, "presign", key, "no bucket is configured");
		return NULL;
	}
	if (cfg->access_key == NULL || cfg->access_key[0] == '\0' ||
		cfg->secret_key == NULL || cfg->secret_key[0] == '\0')
	{
		s3_set_error(err, S3ERR_CONFIG, "presign", key,
					 "no S3 credentials are configured");
		return NULL;
	}
	if (!s3_parse_endpoint(cfg->endpoint, cfg->region, &scheme, &hostport,
						   msg, sizeof(msg)))
	{
		s3_set_error(err, S3ERR_CONFIG, "presign", key, "%s", msg);
		return NULL;
	}
	abuf_init(&host);
	abuf_init(&path);
	abuf_init(&query);
	abuf_init(&url);
	s3_url_parts(cfg, scheme, hostport, key, &host, &path);
	sigv4_amz_date(signed_at, amz_date);
	p.method = "GET";
	p.host = host.data;
	p.encoded_path = path.data;
	p.region = cfg->region && cfg->region[0] ? cfg->region : "us-east-1";
	p.service = "s3";
	p.amz_date = amz_date;
	p.expires = expires;
	p.access_key = cfg->access_key;
	p.secret_key = cfg->secret_key;
	p.session_token = cfg->session_token;
	if (!host.oom && !path.oom && sigv4_presign_query(&p, &query))
	{
		abuf_appendf(&url, "%s://%s%s?%s", scheme, host.data, path.data,
					 query.data);
		result = abuf_steal(&url);
	}
	if (result == NULL)
		s3_set_error(err, S3ERR_OOM, "presign", key, "out of memory");
	abuf_free(&host);
	abuf_free(&path);
	abuf_free(&query);
	abuf_free(&url);
	free(scheme);
	free(hostport);
	return result;
}
