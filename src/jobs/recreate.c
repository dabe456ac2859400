/*
 * recreate.c
 *		Recreating a table from the definition pieces of its backup.
 *
 * The pieces are PostgreSQL's own deparsed text (ddl.c), so they are SQL
 * again only here, and the manifest is data from outside: every statement
 * built from a piece is parsed before it runs and must be exactly one
 * statement of the kind expected, acting on the new table.  Statements run
 * through query.c (search_path pinned), so unqualified names resolve in
 * pg_catalog only, as when they were written.
 *
 * Order, as pg_dump's: sequences, the table (columns, defaults, identity,
 * generated columns, NOT NULL), the data (restore.c), then constraints and
 * indexes (faster than loading into them), comments, row security,
 * policies, and the sequences' values.  Under a new name, names that began
 * with the source table's name begin with the new one; each index or
 * sequence name is then made unique in its schema with a number, as
 * PostgreSQL does.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_type.h"
#include "commands/defrem.h"
#include "mb/pg_wchar.h"
#include "nodes/parsenodes.h"
#include "parser/parse_type.h"
#include "parser/parser.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/formatting.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"
#include "utils/varlena.h"

#include "jobs/recreate.h"
#include "pg/compat.h"
#include "pg/query.h"

/* a sequence the table owns: its name in the backup and here */
typedef struct AbSeqMap
{
	char	   *column;
	char	   *old_schema;
	char	   *old_name;
	char	   *new_qual;		/* NULL for identity: PostgreSQL names it */
	bool		identity;
} AbSeqMap;

bool
ab_recreate_possible(const MfTable *t)
{
	for (int i = 0; i < t->nddl; i++)
	{
		if (strcmp(t->ddls[i].kind, "column") == 0)
			return true;
	}
	return false;
}

static void
bad_definition(AbRecreate *r, const char *what, const char *sql)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("the definition of table \"%s.%s\" in backup \"%s\" is not valid",
					r->t->schema, r->t->name, r->m->backup_id),
			 errdetail("Its %s does not make one statement of the kind expected: %s",
					   what, sql),
			 errhint("Restore into an existing table, or create the table by hand.")));
}

static bool
is_target(AbRecreate *r, RangeVar *rv)
{
	return rv != NULL && rv->relname != NULL && strcmp(rv->relname, r->name) == 0 &&
		rv->schemaname != NULL && strcmp(rv->schemaname, r->schema) == 0;
}

/* sql parsed: one statement of type tag; returned for further checks */
static Node *
parse_one(AbRecreate *r, const char *what, const char *sql, NodeTag tag)
{
	List	   *raw = raw_parser(sql, RAW_PARSE_DEFAULT);
	Node	   *stmt;

	if (list_length(raw) != 1)
		bad_definition(r, what, sql);
	stmt = ((RawStmt *) linitial(raw))->stmt;
	if (nodeTag(stmt) != tag)
		bad_definition(r, what, sql);
	return stmt;
}

char *
ab_recreate_unique_relname(const char *cand, Oid nsp)
{
	char	   *name = (char *) cand;

	for (int pass = 1; OidIsValid(get_relname_relid(name, nsp)); pass++)
	{
		char		suffix[16];
		int			keep;

		snprintf(suffix, sizeof(suffix), "%d", pass);
		keep = pg_mbcliplen(cand, strlen(cand), NAMEDATALEN - 1 - strlen(suffix));
		name = psprintf("%.*s%s", keep, cand, suffix);
	}
	return name;
}

/*
 * A name for an object of the new table, unique among relations if need
 * be: under a new name, one that began with the table's old name begins
 * with its new one, as PostgreSQL names them.
 */
static char *
object_name(AbRecreate *r, const char *orig, bool relation)
{
	size_t		n = strlen(r->t->name);
	char	   *cand = (char *) orig;

	if (r->renamed && strncmp(orig, r->t->name, n) == 0)
		cand = psprintf("%s%s", r->name, orig + n);
	cand = pnstrdup(cand, pg_mbcliplen(cand, strlen(cand), NAMEDATALEN - 1));
	return relation ? ab_recreate_unique_relname(cand, r->nsp) : cand;
}

/* the new name of old in pairs (old, new, old, new, ...), or NULL */
static const char *
mapped(List *pairs, const char *old)
{
	for (int i = 0; i + 1 < list_length(pairs); i += 2)
	{
		if (strcmp(list_nth(pairs, i), old) == 0)
			return list_nth(pairs, i + 1);
	}
	return NULL;
}

/*
 * A constraint's new name: a partition's copy of a recreated parent's
 * constraint takes the parent's new name; any other, object_name's.
 */
static char *
constraint_name(AbRecreate *r, const char *orig, bool relation)
{
	const char *inherited = mapped(r->parent_names, orig);
	char	   *name = inherited ? pstrdup(inherited) : object_name(r, orig, relation);

	r->names = lappend(lappend(r->names, pstrdup(orig)), name);
	return name;
}

static void
split_qualified(const char *qual, char **schema, char **name)
{
	List	   *parts;

	if (!SplitIdentifierString(pstrdup(qual), '.', &parts) ||
		list_length(parts) != 2)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("\"%s\" is not a qualified sequence name", qual)));
	*schema = linitial(parts);
	*name = lsecond(parts);
}

static char *
comment_sql(AbRecreate *r, const MfDdl *d)
{
	if (d->target == NULL || d->target[0] == '\0')
		return psprintf("COMMENT ON TABLE %s IS %s", r->qualname,
						quote_literal_cstr(d->sql));
	return psprintf("COMMENT ON COLUMN %s.%s IS %s", r->qualname,
					quote_identifier(d->target), quote_literal_cstr(d->sql));
}

/* one more statement for the plan */
static void
plan(List **into, char *sql)
{
	*into = lappend(*into, sql);
}

/* the serial sequences to create (pre), identity ones noted */
static void
plan_sequences(AbRecreate *r)
{
	for (int i = 0; i < r->t->nddl; i++)
	{
		const MfDdl *d = &r->t->ddls[i];
		AbSeqMap   *s;
		CreateSeqStmt *stmt;
		char	   *sql;
		ListCell   *lc;

		if (strcmp(d->kind, "sequence") != 0 && strcmp(d->kind, "identity") != 0)
			continue;
		if (d->name == NULL || d->target == NULL)
			bad_definition(r, "owned sequence", d->sql);
		s = palloc0(sizeof(AbSeqMap));
		s->column = d->target;
		s->identity = strcmp(d->kind, "identity") == 0;
		split_qualified(d->name, &s->old_schema, &s->old_name);
		r->seqs = lappend(r->seqs, s);
		if (s->identity)
			continue;
		s->new_qual = quote_qualified_identifier(r->schema,
												 r->renamed ?
												 ChooseRelationName(r->name, s->column, "seq", r->nsp, false) :
												 ab_recreate_unique_relname(s->old_name, r->nsp));
		sql = psprintf("CREATE SEQUENCE %s %s", s->new_qual, d->sql);
		stmt = (CreateSeqStmt *) parse_one(r, "owned sequence", sql, T_CreateSeqStmt);
		if (stmt->sequence == NULL || stmt->sequence->schemaname == NULL ||
			strcmp(stmt->sequence->schemaname, r->schema) != 0)
			bad_definition(r, "owned sequence", sql);
		/* it will belong to the new table's column, and nothing else */
		foreach(lc, stmt->options)
		{
			if (strcmp(((DefElem *) lfirst(lc))->defname, "owned_by") == 0)
				bad_definition(r, "owned sequence", sql);
		}
		plan(&r->pre, sql);
	}
}

/*
 * A partition to attach takes its identity from its parent (17+), and may
 * not have one of its own: "type GENERATED ... AS IDENTITY[ NOT NULL]"
 * loses the clause (a partition's has no options: the sequence is the
 * parent's).
 */
static char *
without_identity(const char *sql)
{
	const char *forms[] = {" GENERATED ALWAYS AS IDENTITY",
	" GENERATED BY DEFAULT AS IDENTITY"};

	for (size_t i = 0; i < lengthof(forms); i++)
	{
		const char *at = strstr(sql, forms[i]);
		const char *rest;

		if (at == NULL)
			continue;
		rest = at + strlen(forms[i]);
		if (*rest == '\0' || strcmp(rest, " NOT NULL") == 0)
			return psprintf("%.*s%s", (int) (at - sql), sql, rest);
	}
	return (char *) sql;
}

/*
 * A column's text, its serial default pointed at the new sequence: its own,
 * or a recreated parent's (a partition's default is its parent's).
 */
static char *
column_sql(AbRecreate *r, const MfDdl *d)
{
	const char *sql = d->sql;
	ListCell   *lc;

	if (r->as_partition && AB_PARTITION_IDENTITY_INHERITED)
		sql = without_identity(sql);

	foreach(lc, list_concat_copy(r->seqs, r->parent_seqs))
	{
		AbSeqMap   *s = lfirst(lc);
		char	   *old;
		char	   *at;

		if (s->identity || strcmp(s->column, d->name) != 0)
			continue;
		old = psprintf(" DEFAULT nextval(%s::regclass)",
					   quote_literal_cstr(quote_qualified_identifier(s->old_schema,
																	 s->old_name)));
		at = strstr(sql, old);
		if (at == NULL)
			continue;			/* a default of its own: kept */
		return psprintf("%.*s DEFAULT nextval(%s::regclass)%s",
						(int) (at - sql), sql,
						quote_literal_cstr(s->new_qual), at + strlen(old));
	}
	return (char *) sql;
}

/*
 * The columns must be the backup's: each one COPY fills is in the
 * manifest's column list, with the same type, and any other is generated.
 * A column carries no constraint but NOT NULL, DEFAULT, identity and
 * generation (the others come after the data, checked on their own).
 */
static void
check_columns(AbRecreate *r, CreateStmt *stmt, const char *sql)
{
	int			copied = 0;
	ListCell   *lc;

	foreach(lc, stmt->tableElts)
	{
		ColumnDef  *col;
		bool		generated = false;
		const MfColumn *mc = NULL;
		Oid			typid;
		int32		typmod;
		Oid			want_typid;
		int32		want_typmod;
		ListCell   *lc2;

		if (!IsA(lfirst(lc), ColumnDef))
			bad_definition(r, "column list", sql);
		col = lfirst(lc);
		foreach(lc2, col->constraints)
		{
			switch (((Constraint *) lfirst(lc2))->contype)
			{
				case CONSTR_NULL:
				case CONSTR_NOTNULL:
				case CONSTR_DEFAULT:
				case CONSTR_IDENTITY:
					break;
				case CONSTR_GENERATED:
					generated = true;
					break;
				default:
					bad_definition(r, "column list", sql);
			}
		}
		if (generated)
			continue;
		for (int i = 0; i < r->t->ncolumns; i++)
		{
			if (strcmp(r->t->columns[i].name, col->colname) == 0)
				mc = &r->t->columns[i];
		}
		if (mc == NULL)
			bad_definition(r, "column list", sql);
		ab_parse_type_string(mc->type, &want_typid, &want_typmod);
		typenameTypeIdAndMod(NULL, col->typeName, &typid, &typmod);
		if (typid != want_typid || typmod != want_typmod)
			bad_definition(r, "column list", sql);
		copied++;
	}
	if (copied != r->t->ncolumns)
		bad_definition(r, "column list", sql);
}

static void
plan_table(AbRecreate *r)
{
	StringInfoData sql;
	char	   *partkey;
	CreateStmt *stmt;
	int			ncols = 0;
	ListCell   *lc;

	initStringInfo(&sql);
	appendStringInfo(&sql, "CREATE TABLE %s (", r->qualname);
	for (int i = 0; i < r->t->nddl; i++)
	{
		const MfDdl *d = &r->t->ddls[i];

		if (strcmp(d->kind, "column") != 0)
			continue;
		if (d->name == NULL)
			bad_definition(r, "column", d->sql);
		appendStringInfo(&sql, "%s%s %s", ncols++ ? ", " : "",
						 quote_identifier(d->name), column_sql(r, d));
	}
	appendStringInfoChar(&sql, ')');
	partkey = ab_recreate_partition_key(r->t, false);
	if (partkey)
		appendStringInfo(&sql, " PARTITION BY %s", partkey);

	/* exactly the columns (and key): no table constraint or LIKE slipped in */
	stmt = (CreateStmt *) parse_one(r, "column list", sql.data, T_CreateStmt);
	if (!is_target(r, stmt->relation) || list_length(stmt->tableElts) != ncols ||
		stmt->inhRelations != NIL || stmt->partbound != NULL ||
		(stmt->partspec != NULL) != (partkey != NULL) || stmt->ofTypename != NULL)
		bad_definition(r, "column list", sql.data);
	check_columns(r, stmt, sql.data);
	plan(&r->pre, sql.data);

	foreach(lc, r->seqs)
	{
		AbSeqMap   *s = lfirst(lc);

		if (!s->identity)
			r->pre = lappend(r->pre,
							 psprintf("ALTER SEQUENCE %s OWNED BY %s.%s", s->new_qual,
									  r->qualname, quote_identifier(s->column)));
	}
}

/* an ALTER TABLE of the new table adding one constraint, not a foreign key */
static void
plan_constraint(AbRecreate *r, const MfDdl *d)
{
	char	   *sql = psprintf("ALTER TABLE ONLY %s ADD CONSTRAINT %s %s", r->qualname,
							   quote_identifier(constraint_name(r, d->name ? d->name : "", true)),
							   d->sql);
	AlterTableStmt *stmt = (AlterTableStmt *) parse_one(r, "constraint", sql,
														T_AlterTableStmt);
	AlterTableCmd *cmd;

	if (!is_target(r, stmt->relation) || list_length(stmt->cmds) != 1)
		bad_definition(r, "constraint", sql);
	cmd = linitial(stmt->cmds);
	if (cmd->subtype != AT_AddConstraint || cmd->def == NULL ||
		!IsA(cmd->def, Constraint) ||
		((Constraint *) cmd->def)->contype == CONSTR_FOREIGN)
		bad_definition(r, "constraint", sql);
	plan(&r->post, sql);
}

/*
 * A foreign key, asked for: its table must exist (say which, rather than
 * fail on the ALTER).  One into the source table itself goes into the new
 * one.  It runs after the data, as the owner, who needs REFERENCES on the
 * other table; every row is checked.
 */
static void
plan_foreign_key(AbRecreate *r, const MfDdl *d)
{
	char	   *self = psprintf("REFERENCES %s(",
								quote_qualified_identifier(r->t->schema, r->t->name));
	const char *def = d->sql;
	const char *at = strstr(def, self);
	char	   *sql;
	AlterTableStmt *stmt;
	AlterTableCmd *cmd;
	Constraint *con;

	if (r->renamed && at != NULL)
		def = psprintf("%.*sREFERENCES %s(%s", (int) (at - def), def,
					   r->qualname, at + strlen(self));

	/* and one into a recreated ancestor (a partition's copy) follows it */
	for (int i = 0; at == NULL && i + 1 < list_length(r->parent_tables); i += 2)
	{
		char	   *old = psprintf("REFERENCES %s(", (char *) list_nth(r->parent_tables, i));

		at = strstr(def, old);
		if (at != NULL)
			def = psprintf("%.*sREFERENCES %s(%s", (int) (at - def), def,
						   (char *) list_nth(r->parent_tables, i + 1), at + strlen(old));
	}

	/* a partitioned table's key is its partitions' too: no ONLY */
	sql = psprintf("ALTER TABLE %s%s ADD CONSTRAINT %s %s",
				   ab_recreate_partition_key(r->t, false) ? "" : "ONLY ",
				   r->qualname,
				   quote_identifier(constraint_name(r, d->name ? d->name : "", false)),
				   def);
	stmt = (AlterTableStmt *) parse_one(r, "foreign key", sql, T_AlterTableStmt);
	if (!is_target(r, stmt->relation) || list_length(stmt->cmds) != 1)
		bad_definition(r, "foreign key", sql);
	cmd = linitial(stmt->cmds);
	if (cmd->subtype != AT_AddConstraint || cmd->def == NULL ||
		!IsA(cmd->def, Constraint) ||
		((Constraint *) cmd->def)->contype != CONSTR_FOREIGN)
		bad_definition(r, "foreign key", sql);
	con = (Constraint *) cmd->def;
	if (con->pktable == NULL ||
		(!is_target(r, con->pktable) &&
		 !OidIsValid(RangeVarGetRelid(con->pktable, NoLock, true))))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("foreign key %s of table %s references a table that does not exist",
						quote_identifier(d->name ? d->name : ""), r->qualname),
				 errdetail("%s", d->sql),
				 errhint("Restore the referenced table first, or restore this one without foreign_keys.")));
	plan(&r->post, sql);
}

/* the keyword of privilege letter c of an aclitem, or NULL */
static const char *
privilege_name(char c)
{
	switch (c)
	{
		case 'r':
			return "SELECT";
		case 'a':
			return "INSERT";
		case 'w':
			return "UPDATE";
		case 'd':
			return "DELETE";
		case 'D':
			return "TRUNCATE";
		case 'x':
			return "REFERENCES";
		case 't':
			return "TRIGGER";
#if PG_VERSION_NUM >= 170000
		case 'm':
			return "MAINTAIN";
#endif
	}
	return NULL;
}

/*
 * "grantee=privileges/grantor" (grantee "" for PUBLIC, double-quoted when
 * it must be) split; false if it is not that.
 */
static bool
split_aclitem(const char *item, char **grantee, const char **privs)
{
	StringInfoData name;
	const char *p = item;

	initStringInfo(&name);
	if (*p == '"')
	{
		for (p++; *p && !(*p == '"' && p[1] != '"'); p++)
		{
			if (*p == '"')
				p++;			/* "" is one " */
			appendStringInfoChar(&name, *p);
		}
		if (*p++ != '"')
			return false;
	}
	else
	{
		for (; *p && *p != '='; p++)
			appendStringInfoChar(&name, *p);
	}
	if (*p != '=' || strchr(p, '/') == NULL)
		return false;
	*grantee = name.data;
	*privs = p + 1;
	return true;
}

List *
ab_acl_grants(const char *acl, const char *kind, const char *name,
			  const char *owner)
{
	char	   *object = psprintf("%s %s", asc_tolower(kind, strlen(kind)), name);
	ArrayType  *arr = DatumGetArrayTypeP(OidInputFunctionCall(F_ARRAY_IN, (char *) acl,
															  TEXTOID, -1));
	Datum	   *items;
	bool	   *nulls;
	int			n;
	List	   *grants = NIL;

	deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &items, &nulls, &n);
	for (int i = 0; i < n; i++)
	{
		char	   *item = nulls[i] ? "" : TextDatumGetCString(items[i]);
		char	   *grantee;
		const char *privs;
		const char *to;
		StringInfoData plain;
		StringInfoData with_option;

		if (!split_aclitem(item, &grantee, &privs))
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("\"%s\" is not a privilege of %s", item, object)));
		if (owner != NULL && strcmp(grantee, owner) == 0)
			continue;			/* the owner's are implicit */
		if (grantee[0] != '\0' && !OidIsValid(get_role_oid(grantee, true)))
		{
			ereport(WARNING,
					(errmsg("the privileges of role \"%s\" on %s are not restored: the role does not exist",
							grantee, object)));
			continue;
		}
		to = grantee[0] ? quote_identifier(grantee) : "PUBLIC";
		initStringInfo(&plain);
		initStringInfo(&with_option);
		for (const char *p = privs; *p && *p != '/'; p++)
		{
			const char *priv = privilege_name(*p);
			bool		option = p[1] == '*';
			StringInfo	into = option ? &with_option : &plain;

			if (priv == NULL)
				ereport(WARNING,
						(errmsg("privilege \"%c\" of role \"%s\" on %s is not restored: this server does not know it",
								*p, grantee[0] ? grantee : "PUBLIC", object)));
			else
				appendStringInfo(into, "%s%s", into->len ? ", " : "", priv);
			if (option)
				p++;
		}
		if (plain.len > 0)
			grants = lappend(grants, psprintf("GRANT %s ON %s %s TO %s", plain.data,
											  kind, name, to));
		if (with_option.len > 0)
			grants = lappend(grants, psprintf("GRANT %s ON %s %s TO %s WITH GRANT OPTION",
											  with_option.data, kind, name, to));
	}
	return grants;
}

/*
 * GRANTs of the table's recorded privileges (relacl), asked for, to the
 * roles that exist here; the owner's own are its already.
 */
static void
plan_grants(AbRecreate *r, const MfDdl *d)
{
	r->post = list_concat(r->post,
						  ab_acl_grants(d->sql, "TABLE", r->qualname, r->t->owner));
}

/* "CREATE [UNIQUE ]INDEX name ON [ONLY ]source USING ..." under new names */
static void
plan_index(AbRecreate *r, const MfDdl *d)
{
	const char *src = quote_qualified_identifier(r->t->schema, r->t->name);
	const char *heads[] = {"CREATE INDEX ", "CREATE UNIQUE INDEX "};
	const char *tail = NULL;
	bool		unique = false;
	char	   *sql;
	IndexStmt  *stmt;

	for (int u = 0; u < 2 && tail == NULL; u++)
	{
		char	   *head = psprintf("%s%s ON %s USING ", heads[u],
									quote_identifier(d->name), src);
		char	   *only = psprintf("%s%s ON ONLY %s USING ", heads[u],
									quote_identifier(d->name), src);

		if (strncmp(d->sql, head, strlen(head)) == 0)
			tail = d->sql + strlen(head);
		else if (strncmp(d->sql, only, strlen(only)) == 0)
			tail = d->sql + strlen(only);
		unique = (u == 1);
	}
	if (tail == NULL)
		bad_definition(r, "index", d->sql);
	sql = psprintf("CREATE %sINDEX %s ON %s USING %s", unique ? "UNIQUE " : "",
				   quote_identifier(object_name(r, d->name, true)),
				   r->qualname, tail);
	stmt = (IndexStmt *) parse_one(r, "index", sql, T_IndexStmt);
	if (!is_target(r, stmt->relation))
		bad_definition(r, "index", sql);
	plan(&r->post, sql);
}

static void
plan_policy(AbRecreate *r, const MfDdl *d)
{
	char	   *sql = psprintf("CREATE POLICY %s ON %s %s",
							   quote_identifier(d->name ? d->name : ""),
							   r->qualname, d->sql);
	CreatePolicyStmt *stmt = (CreatePolicyStmt *) parse_one(r, "policy", sql,
															T_CreatePolicyStmt);
	ListCell   *lc;

	if (!is_target(r, stmt->table))
		bad_definition(r, "policy", sql);

	/* roles are not in a backup: a policy for one that is gone is said */
	foreach(lc, stmt->roles)
	{
		RoleSpec   *role = lfirst(lc);

		if (role->roletype == ROLESPEC_CSTRING &&
			!OidIsValid(get_role_oid(role->rolename, true)))
		{
			ereport(WARNING,
					(errmsg("policy \"%s\" of table %s is not restored: role \"%s\" does not exist",
							d->name ? d->name : "", r->qualname, role->rolename),
					 errdetail("The backup's definition (aibackup_table_ddl()) has it.")));
			return;
		}
	}
	plan(&r->post, sql);
}

/* a type of pg_catalog's own, not a table's row type */
static bool
builtin_type(Oid typid)
{
	HeapTuple	tup = SearchSysCache1(TYPEOID, ObjectIdGetDatum(typid));
	bool		ok;

	if (!HeapTupleIsValid(tup))
		return false;
	ok = ((Form_pg_type) GETSTRUCT(tup))->typnamespace == PG_CATALOG_NAMESPACE &&
		((Form_pg_type) GETSTRUCT(tup))->typrelid == InvalidOid;
	ReleaseSysCache(tup);
	return ok;
}

/*
 * A key of plain columns of built-in types: "PRIMARY KEY (a, b)" or
 * "UNIQUE (a)", nothing more.  Building its index runs only PostgreSQL's
 * own comparison functions.
 */
static bool
plain_key(AbRecreate *r, const MfDdl *d)
{
	const char *p = d->sql;
	size_t		n = strlen(p);
	List	   *cols;
	ListCell   *lc;

	if (strncmp(p, "PRIMARY KEY (", 13) == 0)
		p += 13;
	else if (strncmp(p, "UNIQUE (", 8) == 0)
		p += 8;
	else
		return false;
	if (n < 2 || d->sql[n - 1] != ')')
		return false;
	if (!SplitIdentifierString(pnstrdup(p, d->sql + n - 1 - p), ',', &cols))
		return false;
	foreach(lc, cols)
	{
		const MfColumn *mc = NULL;
		Oid			typid;
		int32		typmod;

		for (int i = 0; i < r->t->ncolumns; i++)
		{
			if (strcmp(r->t->columns[i].name, lfirst(lc)) == 0)
				mc = &r->t->columns[i];
		}
		if (mc == NULL)
			return false;
		ab_parse_type_string(mc->type, &typid, &typmod);
		if (!builtin_type(typid))
			return false;
	}
	return true;
}

char *
ab_recreate_partition_key(const MfTable *t, bool plain_only)
{
	const MfDdl *key = NULL;
	const char *open;
	size_t		n;
	List	   *cols;
	StringInfoData out;
	ListCell   *lc;

	for (int i = 0; i < t->nddl; i++)
	{
		if (strcmp(t->ddls[i].kind, "partition_by") == 0)
			key = &t->ddls[i];
	}
	if (key == NULL)
		return NULL;
	if (!plain_only)
		return key->sql;

	/* "STRATEGY (col, col)", nothing more */
	open = strchr(key->sql, '(');
	n = strlen(key->sql);
	if (open == NULL || n < 2 || key->sql[n - 1] != ')' ||
		!(strncmp(key->sql, "RANGE (", 7) == 0 || strncmp(key->sql, "LIST (", 6) == 0 ||
		  strncmp(key->sql, "HASH (", 6) == 0) ||
		!SplitIdentifierString(pnstrdup(open + 1, key->sql + n - 2 - open), ',', &cols))
		return NULL;
	initStringInfo(&out);
	appendStringInfo(&out, "%.*s(", (int) (open - key->sql), key->sql);
	foreach(lc, cols)
	{
		const MfColumn *mc = NULL;
		Oid			typid;
		int32		typmod;

		for (int i = 0; i < t->ncolumns; i++)
		{
			if (strcmp(t->columns[i].name, lfirst(lc)) == 0)
				mc = &t->columns[i];
		}
		if (mc == NULL)
			return NULL;
		ab_parse_type_string(mc->type, &typid, &typmod);
		if (!builtin_type(typid))
			return NULL;
		appendStringInfo(&out, "%s%s", foreach_current_index(lc) ? ", " : "",
						 quote_identifier(lfirst(lc)));
	}
	appendStringInfoChar(&out, ')');
	return out.data;
}

/*
 * A bound value as pg_get_expr() writes one: a literal (with no type:
 * even a cast runs code, a domain's CHECK), MINVALUE or MAXVALUE.
 */
static bool
literal_datum(Node *n)
{
	if (IsA(n, A_Const))
		return true;
	if (IsA(n, ColumnRef) && list_length(((ColumnRef *) n)->fields) == 1 &&
		IsA(linitial(((ColumnRef *) n)->fields), String))
	{
		const char *w = strVal(linitial(((ColumnRef *) n)->fields));

		return strcmp(w, "minvalue") == 0 || strcmp(w, "maxvalue") == 0;
	}
	return false;
}

static bool
literal_datums(List *l)
{
	ListCell   *lc;

	foreach(lc, l)
	{
		if (!literal_datum(lfirst(lc)))
			return false;
	}
	return true;
}

char *
ab_recreate_attach_sql(const Manifest *m, const MfTable *t,
					   const char *parent, const char *child)
{
	const MfDdl *bound = NULL;
	AbRecreate	r;
	char	   *sql;
	AlterTableStmt *stmt;
	AlterTableCmd *cmd;
	PartitionCmd *pc;
	List	   *names;
	AbQuery		q;

	for (int i = 0; i < t->nddl; i++)
	{
		if (strcmp(t->ddls[i].kind, "partition_of") == 0)
			bound = &t->ddls[i];
	}
	memset(&r, 0, sizeof(r));
	r.m = m;
	r.t = t;
	if (bound == NULL)
		bad_definition(&r, "partition bound", "(none)");
	sql = psprintf("ALTER TABLE %s ATTACH PARTITION %s %s", parent, child,
				   bound->sql);

	/* parsed with standard strings, as it runs (query.c) */
	ab_query_begin(&q);
	MemoryContextSwitchTo(q.outer); /* no statement runs: it stays current */
	stmt = (AlterTableStmt *) parse_one(&r, "partition bound", sql, T_AlterTableStmt);
	if (list_length(stmt->cmds) != 1)
		bad_definition(&r, "partition bound", sql);
	cmd = linitial(stmt->cmds);
	if (cmd->subtype != AT_AttachPartition || cmd->def == NULL ||
		!IsA(cmd->def, PartitionCmd))
		bad_definition(&r, "partition bound", sql);
	pc = (PartitionCmd *) cmd->def;

	/* the tables named are the two given, as given */
	if (!SplitIdentifierString(pstrdup(parent), '.', &names) ||
		list_length(names) != 2 || stmt->relation->schemaname == NULL ||
		strcmp(stmt->relation->schemaname, linitial(names)) != 0 ||
		strcmp(stmt->relation->relname, lsecond(names)) != 0)
		bad_definition(&r, "partition bound", sql);
	if (!SplitIdentifierString(pstrdup(child), '.', &names) ||
		list_length(names) != 2 || pc->name->schemaname == NULL ||
		strcmp(pc->name->schemaname, linitial(names)) != 0 ||
		strcmp(pc->name->relname, lsecond(names)) != 0)
		bad_definition(&r, "partition bound", sql);
	if (pc->bound == NULL || !literal_datums(pc->bound->listdatums) ||
		!literal_datums(pc->bound->lowerdatums) ||
		!literal_datums(pc->bound->upperdatums))
		bad_definition(&r, "partition bound", sql);
	ab_query_end(&q);
	return sql;
}

bool
ab_recreate_plan(AbRecreate *r)
{
	AbQuery		q;
	int			left_out = 0;
	int			fks_left_out = 0;

	r->qualname = quote_qualified_identifier(r->schema, r->name);

	/* types and functions are looked up under the pinned search_path */
	ab_query_begin(&q);
	MemoryContextSwitchTo(q.outer); /* no statement runs: it stays current */
	if (r->full)
	{
		plan_sequences(r);
		plan_table(r);
	}
	for (int i = 0; i < r->t->nddl; i++)
	{
		const MfDdl *d = &r->t->ddls[i];

		if (strcmp(d->kind, "acl") == 0)
		{
			/*
			 * Privileges run no code: with or without the whole definition.
			 * But only on a table its old owner owns again: TRIGGER granted
			 * on a table a superuser now owns would run the grantee's code as
			 * whoever writes to it.
			 */
			if (r->with_grants && r->owner_kept)
				plan_grants(r, d);
			else if (r->with_grants)
				ereport(WARNING,
						(errmsg("the privileges of table %s are not restored", r->qualname),
						 errdetail("%s.", r->owner_note),
						 errhint("They are in aibackup_table_ddl(); grant them by hand.")));
		}
		else if (strcmp(d->kind, "foreign_key") == 0)
		{
			/*
			 * A partition's copy of its recreated parent's key comes with
			 * ATTACH, checked once the partition's rows are in the parent (a
			 * key into the tree itself may point at them).
			 */
			if (r->as_partition && d->name && mapped(r->parent_names, d->name))
				continue;
			if (r->with_fks && r->full)
				plan_foreign_key(r, d);
			else if (r->with_fks)
				fks_left_out++;
		}
		else if (strcmp(d->kind, "comment") == 0)
			r->post = lappend(r->post, comment_sql(r, d));
		else if (strcmp(d->kind, "constraint") == 0 &&
				 (r->full || plain_key(r, d)))
			plan_constraint(r, d);
		else if (!r->full)
			left_out += strcmp(d->kind, "column") != 0 &&
				strcmp(d->kind, "partition_of") != 0 &&
				strcmp(d->kind, "partition_by") != 0;
		else if (strcmp(d->kind, "index") == 0 && d->name)
			plan_index(r, d);
		else if (strcmp(d->kind, "row_security") == 0)
			r->post = lappend(r->post,
							  psprintf("ALTER TABLE %s %s ROW LEVEL SECURITY", r->qualname,
									   strcmp(d->sql, "force") == 0 ? "FORCE" : "ENABLE"));
		else if (strcmp(d->kind, "policy") == 0)
			plan_policy(r, d);
	}
	ab_query_end(&q);

	if (!r->full)
		ereport(WARNING,
				(errmsg("table %s is recreated with its columns, types, plain keys and comments only",
						r->qualname),
				 errdetail("%s; %d other parts of its definition (defaults, identity and generated columns, other constraints, indexes, policies) are code, which may run only as that role.",
						   r->owner_note, left_out),
				 errhint("The whole definition is in aibackup_table_ddl(); apply the rest by hand.")));
	if (fks_left_out > 0)
		ereport(WARNING,
				(errmsg_plural("%d foreign key of table %s is not restored",
							   "%d foreign keys of table %s are not restored",
							   fks_left_out, fks_left_out, r->qualname),
				 errdetail("%s; a foreign key is checked with code of the types it compares, which may run only as that role.",
						   r->owner_note),
				 errhint("They are in aibackup_table_ddl(); add them by hand.")));
	return r->full;
}

void
ab_recreate_create(AbRecreate *r)
{
	AbQuery		q;
	ListCell   *lc;

	ab_query_begin(&q);
	foreach(lc, r->pre)
		ab_query_exec(lfirst(lc), false, 0);
	ab_query_end(&q);
}

/*
 * Move seq past the data of qualtable.col if it lags: only in the
 * sequence's own direction (a descending one goes below the smallest
 * value), and past the values within its bounds only (rows inserted with
 * OVERRIDING SYSTEM VALUE may hold anything; setval would refuse them).
 */
static void
catch_up_one(const char *seq, const char *qualtable, const char *col)
{
	const char *lit = quote_literal_cstr(seq);

	ab_query_exec(psprintf("SELECT pg_catalog.setval(%s, x.m) "
						   "FROM pg_catalog.pg_sequence q, %s l, LATERAL ("
						   "  SELECT CASE WHEN q.seqincrement > 0 "
						   "    THEN pg_catalog.max(t.c) FILTER (WHERE t.c BETWEEN q.seqmin AND q.seqmax) "
						   "    ELSE pg_catalog.min(t.c) FILTER (WHERE t.c BETWEEN q.seqmin AND q.seqmax) "
						   "    END AS m "
						   "  FROM (SELECT %s::pg_catalog.int8 AS c FROM %s) t) x "
						   "WHERE q.seqrelid = %s::pg_catalog.regclass "
						   "  AND (CASE WHEN q.seqincrement > 0 THEN x.m > l.last_value "
						   "    ELSE x.m < l.last_value END "
						   "    OR (x.m = l.last_value AND NOT l.is_called))",
						   lit, seq, quote_identifier(col), qualtable, lit),
				  false, 0);
}

/*
 * The backed-up value; ab_sequences_catch_up(), which the caller runs next,
 * moves it past the restored data if that is ahead (one scan of the column).
 */
static void
set_sequence(AbRecreate *r, const char *seq, AbSeqMap *s)
{
	for (int i = 0; i < r->m->nsequences; i++)
	{
		const MfSequence *b = &r->m->sequences[i];

		if (strcmp(b->schema, s->old_schema) == 0 &&
			strcmp(b->name, s->old_name) == 0)
		{
			ab_query_exec(psprintf("SELECT pg_catalog.setval(%s, " INT64_FORMAT ", %s)",
								   quote_literal_cstr(seq), b->last_value,
								   b->is_called ? "true" : "false"), false, 0);
			return;
		}
	}
}

void
ab_recreate_finish(AbRecreate *r)
{
	AbQuery		q;
	ListCell   *lc;

	ab_query_begin(&q);
	foreach(lc, r->post)
		ab_query_exec(lfirst(lc), false, 0);
	foreach(lc, r->seqs)
	{
		AbSeqMap   *s = lfirst(lc);
		const char *seq = s->new_qual;

		if (s->identity)
		{
			Oid			types[2] = {TEXTOID, TEXTOID};
			Datum		vals[2] = {CStringGetTextDatum(r->qualname),
			CStringGetTextDatum(s->column)};

			ab_query_exec_args("SELECT pg_catalog.pg_get_serial_sequence($1, $2)",
							   2, types, vals, true, 0);
			seq = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
		}
		if (seq != NULL)
			set_sequence(r, pstrdup(seq), s);
	}
	ab_query_end(&q);
}

void
ab_sequences_catch_up(Oid relid, Oid caller)
{
	AbQuery		q;
	Oid			types[2] = {OIDOID, OIDOID};
	Datum		values[2] = {ObjectIdGetDatum(relid), ObjectIdGetDatum(caller)};
	List	   *pairs = NIL;
	ListCell   *lc;
	char	   *qualtable = quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
													   get_rel_name(relid));

	ab_query_begin(&q);

	/*
	 * A partition's identity column (17+) takes its values from the
	 * partitioned table's sequence: the root's, then, which every partition
	 * shares, so only when the caller could move it themselves.  Not
	 * read-only: a table created in this statement is visible only to a new
	 * snapshot.
	 */
	ab_query_exec_args("SELECT a.attname, COALESCE(s.own, s.root) "
					   "FROM pg_catalog.pg_attribute a, "
					   "LATERAL (SELECT pg_catalog.pg_get_serial_sequence("
					   "    $1::pg_catalog.regclass::pg_catalog.text, a.attname) AS own, "
					   "  pg_catalog.pg_get_serial_sequence("
					   "    pg_catalog.pg_partition_root($1)::pg_catalog.text, a.attname) AS root) s "
					   "WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped "
					   "  AND (s.own IS NOT NULL AND "
					   "       pg_catalog.has_sequence_privilege(s.own, 'SELECT') AND "
					   "       pg_catalog.has_sequence_privilege(s.own, 'UPDATE') "
					   "    OR s.own IS NULL AND s.root IS NOT NULL AND "
					   "       pg_catalog.has_sequence_privilege(s.root, 'SELECT') AND "
					   "       pg_catalog.has_sequence_privilege(s.root, 'UPDATE') AND "
					   "       pg_catalog.has_sequence_privilege($2, s.root, 'UPDATE')) "
	/* a sequence an integer column's default uses, owned or not (cron.job) */
					   "UNION "
					   "SELECT a.attname, s.oid::pg_catalog.regclass::pg_catalog.text "
					   "FROM pg_catalog.pg_attrdef ad "
					   "JOIN pg_catalog.pg_attribute a ON a.attrelid = ad.adrelid AND a.attnum = ad.adnum "
					   "JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_attrdef'::pg_catalog.regclass "
					   "  AND d.objid = ad.oid AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass "
					   "JOIN pg_catalog.pg_class s ON s.oid = d.refobjid AND s.relkind = 'S' "
					   "WHERE ad.adrelid = $1 AND NOT a.attisdropped "
					   "  AND a.atttypid IN ('pg_catalog.int2'::pg_catalog.regtype, "
					   "    'pg_catalog.int4'::pg_catalog.regtype, 'pg_catalog.int8'::pg_catalog.regtype) "
	/* (has_sequence_privilege fails on a table: only once it is a sequence) */
					   "  AND CASE WHEN s.relkind = 'S' THEN "
					   "    pg_catalog.has_sequence_privilege(s.oid, 'SELECT') "
					   "    AND pg_catalog.has_sequence_privilege(s.oid, 'UPDATE') "
					   "    AND pg_catalog.has_sequence_privilege($2, s.oid, 'UPDATE') END",
					   2, types, values, false, 0);
	for (uint64 i = 0; i < SPI_processed; i++)
		pairs = lappend(pairs, list_make2(ab_query_value(&q, i, 1),
										  ab_query_value(&q, i, 2)));
	foreach(lc, pairs)
		catch_up_one(lsecond(lfirst(lc)), qualtable, linitial(lfirst(lc)));
	ab_query_end(&q);
}
