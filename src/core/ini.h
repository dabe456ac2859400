/*
 * ini.h
 *		Reading the AWS shared credentials and config files: INI text as
 *		Python's configparser (RawConfigParser, which the AWS CLI and
 *		botocore use) reads it.
 */
#ifndef AIBACKUP_INI_H
#define AIBACKUP_INI_H

#include <stdbool.h>

/*
 * The value of key in section [section] of doc, malloc'd, or NULL when
 * absent (or out of memory).  As configparser:
 *	- lines end in LF, CRLF or CR; a UTF-8 BOM is skipped;
 *	- a line whose first non-blank is '#' or ';' is a comment;
 *	- "[name]" (the line trimmed; name up to the last ']', not trimmed)
 *	  starts a section;
 *	- "key = value" or "key: value": keys match in any case, key and value
 *	  trimmed, a key given twice counts last;
 *	- a line indented deeper than the key line before it continues that
 *	  key's value and is skipped (the config file's nested "s3 =" blocks);
 *	- a key missing from an existing section is taken from [DEFAULT].
 */
extern char *ini_get(const char *doc, const char *section, const char *key);

/* whether doc has a section [section] */
extern bool ini_has_section(const char *doc, const char *section);

/*
 * The same for a profile of the config file: "[profile NAME]" however
 * spaced or quoted (botocore splits the header with shlex), and for the
 * default profile, if there is no "[profile default]", "[default]".
 */
extern char *ini_config_get(const char *doc, const char *profile,
							const char *key);
extern bool ini_config_has_profile(const char *doc, const char *profile);

#endif							/* AIBACKUP_INI_H */
