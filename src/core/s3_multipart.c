/*
 * s3_multipart.c
 *		S3 client: multipart uploads (create, upload part, complete, abort,
 *		list in-progress uploads) and the streaming uploader built on them.
 *
 * The streaming uploader (S3Upload) holds one part buffer.  It sends a
 * single PutObject when the whole object fits in one part and switches to
 * multipart only once a second part is needed, so small tables cost one
 * request.  Every part but the last has the same size (R2 demands it), at
 * most S3_MAX_PARTS parts, never zero parts: an object that outgrows
 * S3_MAX_PARTS * part_size fails (S3ERR_LIMIT) as soon as the first byte
 * beyond arrives.  The part size is not grown mid-upload, which AWS S3,
 * MinIO and Swift would accept, because R2 would refuse the whole upload
 * only at CompleteMultipartUpload; the caller sizes parts generously
 * instead (s3_choose_part_size).  Any failure, and freeing an
 * unfinished upload, aborts the multipart upload so no invisible, billed
 * parts are left behind.  Memory: part_size bytes, whatever the object's
 * size.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "s3_internal.h"
#include "xml.h"

#define MiB (1024 * 1024)

struct S3Upload
{
	S3Client   *client;
	char	   *key;
	char	   *content_type;
	size_t		part_size;
	char	   *buf;			/* part_size bytes */
	size_t		len;			/* bytes in buf */
	S3Multipart *mp;			/* NULL until a second part is needed */
	int64_t		sent;			/* bytes acknowledged by S3 */
	char		etag[80];		/* the object's, once finished */
	bool		finished;
	bool		failed;
};

size_t
s3_choose_part_size(int64_t est_bytes, size_t min_part)
{
	int64_t		part;

	if (min_part < S3_MIN_PART_SIZE)
		min_part = S3_MIN_PART_SIZE;
	if (est_bytes <= 0)
		return min_part;

	/*
	 * Leave room for the object to be twice the estimate (statistics lag, the
	 * table grows during the backup): aim at half of the part limit.
	 */
	part = est_bytes / (S3_MAX_PARTS / 2) + 1;
	part = (part + MiB - 1) / MiB * MiB;
	if (part < (int64_t) min_part)
		part = min_part;
	if (part > (int64_t) 5 * 1024 * MiB)
		part = (int64_t) 5 * 1024 * MiB;
	return (size_t) part;
}

void
s3_multipart_free(S3Multipart *mp)
{
	if (mp == NULL)
		return;
	for (int i = 0; i < mp->nparts; i++)
		free(mp->etags[i]);
	free(mp->etags);
	free(mp->key);
	free(mp->upload_id);
	free(mp);
}

bool
s3_multipart_create(S3Client *c, const char *key, const char *content_type,
					S3Multipart **mpp, S3Error *err)
{
	S3Request	req = {0};
	S3Response	resp;
	SigV4Param	q[1] = {{"uploads", ""}};
	SigV4Param	h[4];
	S3Multipart *mp;
	char	   *id = NULL;

	*mpp = NULL;
	req.op = "CreateMultipartUpload";
	req.method = "POST";
	req.key = key;
	req.query = q;
	req.nquery = 1;
	req.headers = h;
	req.nheaders = s3_new_object_headers(c, h);
	req.content_type = content_type;
	s3_response_init(&resp);
	if (!s3_request(c, &req, &resp, err))
	{
		s3_response_free(&resp);
		return false;
	}
	if (resp.body.data)
		id = xml_find_text(xml_span(resp.body.data, resp.body.len), "UploadId");
	s3_response_free(&resp);
	if (id == NULL || id[0] == '\0')
	{
		free(id);
		s3_set_error(err, S3ERR_PROTOCOL, "CreateMultipartUpload", key,
					 "unexpected answer: no UploadId");
		return false;
	}
	mp = calloc(1, sizeof(S3Multipart));
	if (mp == NULL || (mp->key = strdup(key)) == NULL)
	{
		free(id);
		s3_multipart_free(mp);
		s3_set_error(err, S3ERR_OOM, "CreateMultipartUpload", key, "out of memory");
		return false;
	}
	mp->upload_id = id;
	*mpp = mp;
	return true;
}

bool
s3_multipart_upload_part(S3Client *c, S3Multipart *mp, const void *data,
						 size_t len, S3Error *err)
{
	S3Request	req = {0};
	S3Response	resp;
	SigV4Param	q[2];
	char		partno[16];
	char	   *etag;

	if (mp->nparts >= S3_MAX_PARTS)
	{
		s3_set_error(err, S3ERR_LIMIT, "UploadPart", mp->key,
					 "the object needs more than %d parts", S3_MAX_PARTS);
		return false;
	}
	if (mp->nparts == mp->cap)
	{
		int			ncap = mp->cap ? mp->cap * 2 : 64;
		char	  **n = realloc(mp->etags, sizeof(char *) * ncap);

		if (n == NULL)
		{
			s3_set_error(err, S3ERR_OOM, "UploadPart", mp->key, "out of memory");
			return false;
		}
		mp->etags = n;
		mp->cap = ncap;
	}
	snprintf(partno, sizeof(partno), "%d", mp->nparts + 1);
	q[0] = sigv4_param("partNumber", partno);
	q[1] = sigv4_param("uploadId", mp->upload_id);
	req.op = "UploadPart";
	req.method = "PUT";
	req.key = mp->key;
	req.query = q;
	req.nquery = 2;
	req.body = data;
	req.body_len = len;
	req.has_body = true;
	s3_response_init(&resp);
	if (!s3_request(c, &req, &resp, err))
	{
		s3_response_free(&resp);
		return false;
	}
	if (resp.etag[0] == '\0')
	{
		s3_response_free(&resp);
		s3_set_error(err, S3ERR_PROTOCOL, "UploadPart", mp->key,
					 "unexpected answer: part %s has no ETag", partno);
		return false;
	}
	etag = strdup(resp.etag);
	s3_response_free(&resp);
	if (etag == NULL)
	{
		s3_set_error(err, S3ERR_OOM, "UploadPart", mp->key, "out of memory");
		return false;
	}
	mp->etags[mp->nparts++] = etag;
	return true;
}

bool
s3_multipart_complete(S3Client *c, S3Multipart *mp, char *etag_out,
					  size_t etag_len, S3Error *err)
{
	S3Request	req = {0};
	S3Response	resp;
	SigV4Param	q[1];
	AbBuf		body;
	bool		ok;

	if (mp->nparts == 0)
	{
		s3_set_error(err, S3ERR_PROTOCOL, "CompleteMultipartUpload", mp->key,
					 "refusing to complete an upload with no parts");
		return false;
	}
	abuf_init(&body);
	abuf_appends(&body, "<CompleteMultipartUpload>");
	for (int i = 0; i < mp->nparts; i++)
	{
		abuf_appendf(&body, "<Part><PartNumber>%d</PartNumber><ETag>\"", i + 1);
		xml_escape(&body, mp->etags[i]);
		abuf_appends(&body, "\"</ETag></Part>");
	}
	abuf_appends(&body, "</CompleteMultipartUpload>");
	if (body.oom)
	{
		abuf_free(&body);
		s3_set_error(err, S3ERR_OOM, "CompleteMultipartUpload", mp->key,
					 "out of memory");
		return false;
	}
	q[0] = sigv4_param("uploadId", mp->upload_id);
	req.op = "CompleteMultipartUpload";
	req.method = "POST";
	req.key = mp->key;
	req.query = q;
	req.nquery = 1;
	req.body = body.data;
	req.body_len = body.len;
	req.has_body = true;
	req.content_type = "application/xml";
	req.body_may_hold_error = true;
	s3_response_init(&resp);
	ok = s3_request(c, &req, &resp, err);
	if (!ok && err->kind == S3ERR_NOT_FOUND && err->attempts > 1)
	{
		/*
		 * An earlier attempt may have completed it and lost the answer: then
		 * the upload is gone and the object has the multipart ETag "-N".
		 */
		bool		found = false;
		S3ObjectInfo info;
		S3Error		herr;
		char		suffix[16];
		size_t		el,
					sl;

		snprintf(suffix, sizeof(suffix), "-%d", mp->nparts);
		if (s3_head_object(c, mp->key, &found, &info, &herr) && found)
		{
			el = strlen(info.etag);
			sl = strlen(suffix);
			if (el > sl && strcmp(info.etag + el - sl, suffix) == 0)
			{
				ok = true;
				memset(err, 0, sizeof(*err));
				if (etag_out)
					snprintf(etag_out, etag_len, "%s", info.etag);
				etag_out = NULL;
			}
		}
	}
	if (ok && etag_out)
	{
		char	   *etag = NULL;

		if (resp.body.data)
			etag = xml_find_text(xml_span(resp.body.data, resp.body.len), "ETag");
		if (etag)
			s3_copy_header_value(etag_out, etag_len, etag, strlen(etag), true);
		else if (etag_len > 0)
			etag_out[0] = '\0';
		free(etag);
	}
	s3_response_free(&resp);
	abuf_free(&body);
	return ok;
}

bool
s3_abort_upload_id(S3Client *c, const char *key, const char *upload_id,
				   S3Error *err)
{
	S3Request	req = {0};
	S3Response	resp;
	SigV4Param	q[1] = {{"uploadId", upload_id}};
	bool		ok;

	req.op = "AbortMultipartUpload";
	req.method = "DELETE";
	req.key = key;
	req.query = q;
	req.nquery = 1;
	s3_response_init(&resp);
	ok = s3_request(c, &req, &resp, err);
	/* already gone is what we wanted */
	if (!ok && err->kind == S3ERR_NOT_FOUND)
	{
		ok = true;
		memset(err, 0, sizeof(*err));
	}
	s3_response_free(&resp);
	return ok;
}

bool
s3_multipart_abort(S3Client *c, S3Multipart *mp, S3Error *err)
{
	return s3_abort_upload_id(c, mp->key, mp->upload_id, err);
}

bool
s3_list_multipart_uploads(S3Client *c, const char *prefix,
						  S3UploadCallback cb, void *arg, S3Error *err)
{
	char	   *key_marker = NULL;
	char	   *id_marker = NULL;
	bool		ok = true;
	bool		more;

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
		bool		stop = false;

		q[nq++] = sigv4_param("uploads", "");
		q[nq++] = sigv4_param("prefix", prefix ? prefix : "");
		if (key_marker)
			q[nq++] = sigv4_param("key-marker", key_marker);
		if (id_marker)
			q[nq++] = sigv4_param("upload-id-marker", id_marker);
		req.op = "ListMultipartUploads";
		req.method = "GET";
		req.query = q;
		req.nquery = nq;
		s3_response_init(&resp);
		more = false;
		if (!s3_request(c, &req, &resp, err))
		{
			snprintf(err->key, sizeof(err->key), "%s", prefix ? prefix : "");
			s3_response_free(&resp);
			ok = false;
			break;
		}
		doc = xml_span(resp.body.data, resp.body.len);
		if (resp.body.data == NULL ||
			!xml_find(doc, "ListMultipartUploadsResult", &doc))
		{
			s3_response_free(&resp);
			s3_set_error(err, S3ERR_PROTOCOL, "ListMultipartUploads", prefix,
						 "unexpected answer: no ListMultipartUploadsResult");
			ok = false;
			break;
		}
		it = doc;
		while (!stop && xml_next(&it, "Upload", &item))
		{
			S3UploadEntry e;
			char	   *k = xml_find_text(item, "Key");
			char	   *id = xml_find_text(item, "UploadId");
			char	   *ini = xml_find_text(item, "Initiated");

			e.key = k ? k : "";
			e.upload_id = id ? id : "";
			e.initiated = ini ? ini : "";
			if (k && id && cb(arg, &e) != 0)
				stop = true;
			free(k);
			free(id);
			free(ini);
		}
		truncated = xml_find_text(doc, "IsTruncated");
		free(key_marker);
		free(id_marker);
		key_marker = id_marker = NULL;
		if (!stop && truncated && strcmp(truncated, "true") == 0)
		{
			key_marker = xml_find_text(doc, "NextKeyMarker");
			id_marker = xml_find_text(doc, "NextUploadIdMarker");
			more = key_marker != NULL && key_marker[0] != '\0';
		}
		free(truncated);
		s3_response_free(&resp);
	} while (more);

	free(key_marker);
	free(id_marker);
	return ok;
}

/* --- streaming upload --- */

S3Upload *
s3_upload_begin(S3Client *c, const char *key, const char *content_type,
				size_t part_size, S3Error *err)
{
	S3Upload   *u = calloc(1, sizeof(S3Upload));

	if (part_size < S3_MIN_PART_SIZE)
		part_size = S3_MIN_PART_SIZE;
	if (u == NULL ||
		(u->key = strdup(key)) == NULL ||
		(content_type && (u->content_type = strdup(content_type)) == NULL) ||
		(u->buf = malloc(part_size)) == NULL)
	{
		if (u)
		{
			free(u->key);
			free(u->content_type);
			free(u);
		}
		s3_set_error(err, S3ERR_OOM, "PutObject", key, "out of memory");
		return NULL;
	}
	u->client = c;
	u->part_size = part_size;
	return u;
}

/* send the full buffer as the next part, starting multipart if needed */
static bool
s3_upload_flush_part(S3Upload *u, S3Error *err)
{
	if (u->mp == NULL &&
		!s3_multipart_create(u->client, u->key, u->content_type, &u->mp, err))
		return false;
	if (!s3_multipart_upload_part(u->client, u->mp, u->buf, u->len, err))
		return false;
	u->sent += u->len;
	u->len = 0;
	return true;
}

static void
s3_upload_fail(S3Upload *u)
{
	S3Error		ignore;

	u->failed = true;
	if (u->mp)
	{
		/*
		 * Best effort, even when the failure was a cancel: the original error
		 * is what the caller reports.
		 */
		u->client->cleanup = true;
		s3_multipart_abort(u->client, u->mp, &ignore);
		u->client->cleanup = false;
		s3_multipart_free(u->mp);
		u->mp = NULL;
	}
}

bool
s3_upload_write(S3Upload *u, const void *data, size_t len, S3Error *err)
{
	const char *p = data;

	if (u->failed || u->finished)
	{
		s3_set_error(err, S3ERR_PROTOCOL, "UploadPart", u->key,
					 "write to a finished upload");
		return false;
	}

	/*
	 * Parts are all of one size, so the object cannot grow beyond
	 * S3_MAX_PARTS of them: fail at the first byte that would not fit, rather
	 * than after sending one more part's worth.
	 */
	if (len > (uint64_t) S3_MAX_PARTS * u->part_size -
		((uint64_t) u->sent + u->len))
	{
		s3_set_error(err, S3ERR_LIMIT, "UploadPart", u->key,
					 "the object outgrew the upload: more than %d parts of %zu MiB",
					 S3_MAX_PARTS, u->part_size / MiB);
		s3_upload_fail(u);
		return false;
	}
	while (len > 0)
	{
		size_t		n;

		/* flush lazily, so the last part is never empty */
		if (u->len == u->part_size && !s3_upload_flush_part(u, err))
		{
			s3_upload_fail(u);
			return false;
		}
		n = u->part_size - u->len;
		if (n > len)
			n = len;
		memcpy(u->buf + u->len, p, n);
		u->len += n;
		p += n;
		len -= n;
	}
	return true;
}

bool
s3_upload_finish(S3Upload *u, S3Error *err)
{
	if (u->failed || u->finished)
	{
		s3_set_error(err, S3ERR_PROTOCOL, "PutObject", u->key,
					 "finish of a finished upload");
		return false;
	}
	if (u->mp == NULL)
	{
		if (!s3_put_object_etag(u->client, u->key, u->buf, u->len,
								u->content_type, u->etag, sizeof(u->etag),
								err))
		{
			u->failed = true;
			return false;
		}
		u->sent += u->len;
		u->len = 0;
	}
	else
	{
		if (u->len > 0 && !s3_upload_flush_part(u, err))
		{
			s3_upload_fail(u);
			return false;
		}
		if (!s3_multipart_complete(u->client, u->mp, u->etag,
								   sizeof(u->etag), err))
		{
			s3_upload_fail(u);
			return false;
		}
	}
	u->finished = true;
	return true;
}

int64_t
s3_upload_bytes_sent(const S3Upload *u)
{
	return u->sent;
}

const char *
s3_upload_etag(const S3Upload *u)
{
	return u->etag;
}

int
s3_upload_parts(const S3Upload *u)
{
	if (u->mp)
		return u->mp->nparts;
	return u->finished ? 1 : 0;
}

void
s3_upload_free(S3Upload *u)
{
	if (u == NULL)
		return;
	if (!u->finished)
		s3_upload_fail(u);
	s3_multipart_free(u->mp);
	free(u->buf);
	free(u->key);
	free(u->content_type);
	free(u);
}
