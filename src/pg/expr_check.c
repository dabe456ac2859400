/*
 * expr_check.c
 *		Is a statement read from a backup harmless to run with rights it
 *		was not written under?
 *
 * A restore recreates a table from text in the bucket.  When the new
 * table's owner is not the role that owned it at backup time, or is a
 * superuser, its defaults, CHECKs, generated columns, index expressions and
 * policies would run someone else's text with that owner's rights: a
 * tenant's, or whoever could write to the bucket.  Then every expression
 * must call only functions of pg_catalog that every role may execute
 * (what any role could have run itself) and that change nothing: not
 * volatile (but for a few that only make a value, as gen_random_uuid()),
 * and none that runs SQL given as text (query_to_xml(), ts_stat()); use
 * only pg_catalog's operators; and hold no subquery.  Statements are raw parse trees (raw_parser()), so
 * nothing has been looked up or run yet.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_proc.h"
#include "nodes/nodeFuncs.h"
#include "nodes/parsenodes.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/catcache.h"
#include "utils/syscache.h"

#include "pg/compat.h"
#include "pg/expr_check.h"

typedef struct CheckCtx
{
	const char *why;			/* the first thing found not harmless */
} CheckCtx;

/* volatile functions a default commonly calls, which change nothing */
static const char *const volatile_ok[] = {
	"gen_random_uuid", "random", "clock_timestamp", "timeofday", NULL
};

/* stable ones that run SQL given as text, as the caller */
static bool
runs_sql_text(const char *name)
{
	size_t		n = strlen(name);

	return strcmp(name, "ts_stat") == 0 || strcmp(name, "ts_rewrite") == 0 ||
		(n > 7 && strcmp(name + n - 7, "_to_xml") == 0) ||
		(n > 13 && strcmp(name + n - 13, "_to_xmlschema") == 0) ||
		strstr(name, "_to_xml_and_xmlschema") != NULL;
}

/*
 * Is every pg_catalog function of this name one PUBLIC may execute, that
 * changes nothing (not volatile, or a volatile one that only makes a
 * value), and runs no SQL text?
 */
static bool
harmless_catalog_function(const char *name)
{
	CatCList   *list;
	bool		ok = false;
	bool		volatile_allowed = false;

	if (runs_sql_text(name))
		return false;
	for (int i = 0; volatile_ok[i]; i++)
		volatile_allowed |= strcmp(name, volatile_ok[i]) == 0;
	list = SearchSysCacheList1(PROCNAMEARGSNSP, CStringGetDatum(name));
	for (int i = 0; i < list->n_members; i++)
	{
		Form_pg_proc proc = (Form_pg_proc) GETSTRUCT(&list->members[i]->tuple);

		if (proc->pronamespace != PG_CATALOG_NAMESPACE)
			continue;
		ok = true;
		if (!ab_function_executable(proc->oid, ACL_ID_PUBLIC) ||
			(proc->provolatile == PROVOLATILE_VOLATILE && !volatile_allowed))
		{
			ok = false;
			break;
		}
	}
	ReleaseSysCacheList(list);
	return ok;
}

/* a name list unqualified, or qualified by pg_catalog */
static bool
catalog_name(List *names)
{
	return list_length(names) == 1 ||
		(list_length(names) == 2 &&
		 strcmp(strVal(linitial(names)), "pg_catalog") == 0);
}

static bool
check_walker(Node *node, void *arg)
{
	CheckCtx   *c = arg;

	if (node == NULL || c->why != NULL)
		return false;
	if (IsA(node, FuncCall))
	{
		List	   *names = ((FuncCall *) node)->funcname;

		if (!catalog_name(names) ||
			!harmless_catalog_function(strVal(llast(names))))
		{
			c->why = psprintf("function %s", NameListToString(names));
			return true;
		}
	}
	else if (IsA(node, A_Expr))
	{
		List	   *names = ((A_Expr *) node)->name;

		if (names != NIL && !catalog_name(names))
		{
			c->why = psprintf("operator %s", NameListToString(names));
			return true;
		}
	}
	else if (IsA(node, SubLink))
	{
		c->why = "a subquery";
		return true;
	}
	return raw_expression_tree_walker(node, check_walker, arg);
}

static void
check_expr(CheckCtx *c, Node *expr)
{
	(void) check_walker(expr, c);
}

static void
check_constraint(CheckCtx *c, Constraint *con)
{
	ListCell   *lc;

	check_expr(c, con->raw_expr);
	check_expr(c, con->where_clause);
	foreach(lc, con->exclusions)
	{
		List	   *pair = lfirst(lc);	/* (IndexElem, operator name) */

		check_expr(c, ((IndexElem *) linitial(pair))->expr);
		if (!catalog_name(lsecond(pair)) && c->why == NULL)
			c->why = psprintf("operator %s", NameListToString(lsecond(pair)));
	}
}

const char *
ab_stmt_not_harmless(Node *stmt)
{
	CheckCtx	c = {NULL};
	ListCell   *lc;

	switch (nodeTag(stmt))
	{
		case T_CreateStmt:
			foreach(lc, ((CreateStmt *) stmt)->tableElts)
			{
				ColumnDef  *col = lfirst(lc);
				ListCell   *lc2;

				check_expr(&c, col->raw_default);
				foreach(lc2, col->constraints)
					check_constraint(&c, lfirst(lc2));
			}
			break;
		case T_AlterTableStmt:
			foreach(lc, ((AlterTableStmt *) stmt)->cmds)
			{
				AlterTableCmd *cmd = lfirst(lc);

				if (cmd->def && IsA(cmd->def, Constraint))
					check_constraint(&c, (Constraint *) cmd->def);
			}
			break;
		case T_IndexStmt:
			foreach(lc, ((IndexStmt *) stmt)->indexParams)
				check_expr(&c, ((IndexElem *) lfirst(lc))->expr);
			check_expr(&c, ((IndexStmt *) stmt)->whereClause);
			break;
		case T_CreatePolicyStmt:
			check_expr(&c, ((CreatePolicyStmt *) stmt)->qual);
			check_expr(&c, ((CreatePolicyStmt *) stmt)->with_check);
			break;
		case T_CreateSeqStmt:
			break;				/* options are numbers and a type */
		default:
			c.why = "a statement of an unexpected kind";
			break;
	}
	return c.why;
}
