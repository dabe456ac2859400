/*
 * expr_check.h
 *		Whether a statement read from a backup may run with rights it was
 *		not written under (see expr_check.c).
 */
#ifndef AIBACKUP_EXPR_CHECK_H
#define AIBACKUP_EXPR_CHECK_H

#include "nodes/nodes.h"

/*
 * NULL when every expression in stmt (a raw parse tree of CREATE TABLE,
 * ALTER TABLE ... ADD CONSTRAINT, CREATE INDEX, CREATE POLICY or CREATE
 * SEQUENCE) calls only pg_catalog functions that PUBLIC may execute and
 * pg_catalog operators, with no subquery; else what is not ("function
 * public.evil").
 */
extern const char *ab_stmt_not_harmless(Node *stmt);

#endif							/* AIBACKUP_EXPR_CHECK_H */
