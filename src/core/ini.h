/*
 * ini.h
 *		Reading the AWS shared credentials and config files: INI text as
 *		Python's configparser (which AWS's CLI and SDKs use) reads it.
 */
#ifndef AIBACKUP_INI_H
#define AIBACKUP_INI_H

#include <stdbool.h>

/*
 * The value of key in section [section] of text, malloc'd, or NULL when
 * absent (or out of memory).  Lines are "key = value" or "key: value";
 * keys match in any case; a line starting with '#' or ';' is a comment;
 * an indented line continues the one before and is skipped (the config
 * file's nested "s3 =" blocks); CR before LF and a UTF-8 BOM are ignored.
 * Of a key given twice, the last counts.
 */
extern char *ini_get(const char *text, const char *section, const char *key);

/* whether text has a section [section] */
extern bool ini_has_section(const char *text, const char *section);

#endif							/* AIBACKUP_INI_H */
