/*
 * digest.c
 *		SHA-256, HMAC-SHA256 and MD5 on OpenSSL 3's EVP interface, plus the
 *		hex and base64 encodings S3 wants.  See digest.h.
 *
 * This file owns every call into libcrypto made by the core.  Only
 * non-deprecated OpenSSL 3 interfaces are used (EVP_Digest*, EVP_MAC); the
 * encodings are done here rather than through BIO chains, so nothing
 * allocates except the streaming context.
 *
 * Every function accepts NULL data with a zero length (the empty input) and
 * returns false, never crashes, on any other NULL argument.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "digest.h"

struct DigestSha256
{
	EVP_MD_CTX *ctx;
	bool		finished;		/* final has been called */
	bool		failed;			/* an update failed: final must fail too */
};

static const char hex_digits[] = "0123456789abcdef";
static const char b64_digits[] =
"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* a non-NULL pointer for empty input; OpenSSL wants one in places */
static const unsigned char empty_input[1] = {0};

void
digest_hex(const unsigned char *in, size_t n, char *out)
{
	size_t		i;

	if (out == NULL)
		return;
	if (in == NULL)
		n = 0;
	for (i = 0; i < n; i++)
	{
		out[2 * i] = hex_digits[in[i] >> 4];
		out[2 * i + 1] = hex_digits[in[i] & 0x0f];
	}
	out[2 * n] = '\0';
}

void
digest_base64(const unsigned char *in, size_t n, char *out)
{
	size_t		i;
	char	   *o = out;

	if (out == NULL)
		return;
	if (in == NULL)
		n = 0;
	for (i = 0; i + 2 < n; i += 3)
	{
		unsigned long v = ((unsigned long) in[i] << 16) |
		((unsigned long) in[i + 1] << 8) | in[i + 2];

		*o++ = b64_digits[(v >> 18) & 0x3f];
		*o++ = b64_digits[(v >> 12) & 0x3f];
		*o++ = b64_digits[(v >> 6) & 0x3f];
		*o++ = b64_digits[v & 0x3f];
	}
	if (n - i == 1)
	{
		unsigned long v = (unsigned long) in[i] << 16;

		*o++ = b64_digits[(v >> 18) & 0x3f];
		*o++ = b64_digits[(v >> 12) & 0x3f];
		*o++ = '=';
		*o++ = '=';
	}
	else if (n - i == 2)
	{
		unsigned long v = ((unsigned long) in[i] << 16) |
		((unsigned long) in[i + 1] << 8);

		*o++ = b64_digits[(v >> 18) & 0x3f];
		*o++ = b64_digits[(v >> 12) & 0x3f];
		*o++ = b64_digits[(v >> 6) & 0x3f];
		*o++ = '=';
	}
	*o = '\0';
}

/* One-shot digest of len bytes with md into out (of the digest's size). */
static bool
digest_oneshot(const EVP_MD *md, const void *data, size_t len,
			   unsigned char *out, unsigned int want)
{
	unsigned int outlen = 0;

	if (md == NULL || out == NULL)
		return false;
	if (data == NULL)
	{
		if (len != 0)
			return false;
		data = empty_input;
	}
	if (EVP_Digest(data, len, out, &outlen, md, NULL) != 1)
		return false;
	return outlen == want;
}

bool
digest_sha256(const void *data, size_t len,
			  unsigned char out[DIGEST_SHA256_LEN])
{
	return digest_oneshot(EVP_sha256(), data, len, out, DIGEST_SHA256_LEN);
}

bool
digest_sha256_hex(const void *data, size_t len, char out[DIGEST_SHA256_HEX])
{
	unsigned char md[DIGEST_SHA256_LEN];

	if (out == NULL)
		return false;
	if (!digest_sha256(data, len, md))
	{
		out[0] = '\0';
		return false;
	}
	digest_hex(md, sizeof(md), out);
	return true;
}

bool
digest_hmac_sha256(const void *key, size_t keylen,
				   const void *data, size_t len,
				   unsigned char out[DIGEST_SHA256_LEN])
{
	EVP_MAC    *mac;
	EVP_MAC_CTX *ctx = NULL;
	OSSL_PARAM	params[2];
	size_t		outlen = 0;
	bool		ok = false;

	if (out == NULL)
		return false;
	if (key == NULL)
	{
		if (keylen != 0)
			return false;
		key = empty_input;
	}
	if (data == NULL)
	{
		if (len != 0)
			return false;
		data = empty_input;
	}

	mac = EVP_MAC_fetch(NULL, OSSL_MAC_NAME_HMAC, NULL);
	if (mac == NULL)
		return false;
	ctx = EVP_MAC_CTX_new(mac);
	if (ctx == NULL)
		goto done;
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
												 (char *) "SHA256", 0);
	params[1] = OSSL_PARAM_construct_end();
	if (EVP_MAC_init(ctx, key, keylen, params) != 1)
		goto done;
	if (EVP_MAC_update(ctx, data, len) != 1)
		goto done;
	if (EVP_MAC_final(ctx, out, &outlen, DIGEST_SHA256_LEN) != 1)
		goto done;
	ok = (outlen == DIGEST_SHA256_LEN);

done:
	EVP_MAC_CTX_free(ctx);		/* also cleanses the keyed state */
	EVP_MAC_free(mac);
	return ok;
}

bool
digest_md5_base64(const void *data, size_t len, char out[DIGEST_MD5_B64])
{
	unsigned char md[DIGEST_MD5_LEN];

	if (out == NULL)
		return false;
	/* with a FIPS-only default provider MD5 is unavailable: false */
	if (!digest_oneshot(EVP_md5(), data, len, md, DIGEST_MD5_LEN))
	{
		out[0] = '\0';
		return false;
	}
	digest_base64(md, sizeof(md), out);
	return true;
}

DigestSha256 *
digest_sha256_new(void)
{
	DigestSha256 *d = malloc(sizeof(DigestSha256));

	if (d == NULL)
		return NULL;
	d->finished = false;
	d->failed = false;
	d->ctx = EVP_MD_CTX_new();
	if (d->ctx == NULL)
	{
		free(d);
		return NULL;
	}
	if (EVP_DigestInit_ex(d->ctx, EVP_sha256(), NULL) != 1)
	{
		EVP_MD_CTX_free(d->ctx);
		free(d);
		return NULL;
	}
	return d;
}

bool
digest_sha256_update(DigestSha256 *d, const void *data, size_t len)
{
	if (d == NULL || d->finished || d->failed)
		return false;
	if (len == 0)
		return true;
	if (data == NULL)
	{
		d->failed = true;
		return false;
	}
	if (EVP_DigestUpdate(d->ctx, data, len) != 1)
	{
		d->failed = true;
		return false;
	}
	return true;
}

bool
digest_sha256_final(DigestSha256 *d, char out[DIGEST_SHA256_HEX])
{
	unsigned char md[DIGEST_SHA256_LEN];
	unsigned int outlen = 0;

	if (out == NULL)
		return false;
	out[0] = '\0';
	if (d == NULL || d->finished)
		return false;
	d->finished = true;
	if (d->failed)
		return false;
	if (EVP_DigestFinal_ex(d->ctx, md, &outlen) != 1 ||
		outlen != DIGEST_SHA256_LEN)
		return false;
	digest_hex(md, sizeof(md), out);
	return true;
}

void
digest_sha256_free(DigestSha256 *d)
{
	if (d == NULL)
		return;
	EVP_MD_CTX_free(d->ctx);
	free(d);
}
