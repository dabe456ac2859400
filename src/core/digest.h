/*
 * digest.h
 *		SHA-256, HMAC-SHA256, MD5 and the encodings S3 wants (hex, base64),
 *		on OpenSSL's EVP interface.  Pure C: no PostgreSQL headers.
 */
#ifndef AIBACKUP_DIGEST_H
#define AIBACKUP_DIGEST_H

#include <stdbool.h>
#include <stddef.h>

#define DIGEST_SHA256_LEN	32
#define DIGEST_SHA256_HEX	65	/* 64 hex digits + NUL */
#define DIGEST_MD5_LEN		16
#define DIGEST_MD5_B64		25	/* 24 base64 chars + NUL */

/* lower-case hex of n bytes into out (2n+1 bytes) */
extern void digest_hex(const unsigned char *in, size_t n, char *out);

/* standard base64 (with padding) of n bytes into out (4*ceil(n/3)+1 bytes) */
extern void digest_base64(const unsigned char *in, size_t n, char *out);

extern bool digest_sha256(const void *data, size_t len,
						  unsigned char out[DIGEST_SHA256_LEN]);
extern bool digest_sha256_hex(const void *data, size_t len,
							  char out[DIGEST_SHA256_HEX]);
extern bool digest_hmac_sha256(const void *key, size_t keylen,
							   const void *data, size_t len,
							   unsigned char out[DIGEST_SHA256_LEN]);

/* base64 of the MD5, as the Content-MD5 header wants it */
extern bool digest_md5_base64(const void *data, size_t len,
							  char out[DIGEST_MD5_B64]);

/* streaming SHA-256 (over a whole object written piece by piece) */
typedef struct DigestSha256 DigestSha256;
extern DigestSha256 *digest_sha256_new(void);
extern bool digest_sha256_update(DigestSha256 *d, const void *data, size_t len);

/* writes the hex digest; the context may not be updated afterwards */
extern bool digest_sha256_final(DigestSha256 *d, char out[DIGEST_SHA256_HEX]);
extern void digest_sha256_free(DigestSha256 *d);

#endif							/* AIBACKUP_DIGEST_H */
