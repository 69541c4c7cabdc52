package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"strings"
	"sync"

	"github.com/mattn/go-sqlite3"
)

// Read-only connections (the read pool and every `pipeline sql` connection
// without write) carry three independent guards, so that no SQL text can
// change a file:
//
//  1. the main database is opened mode=ro (SQLite refuses every write to it
//     with SQLITE_READONLY, whatever the statement);
//  2. an authorizer (sqlite3_set_authorizer) denies, at prepare time, every
//     action that is not a read: ATTACH/DETACH (so no other file is opened or
//     created, VACUUM INTO included: it attaches its target), writes to any
//     schema (main, temp, attached), CREATE/DROP/ALTER of anything (temp
//     tables, views and triggers included), ANALYZE, REINDEX, and every
//     PRAGMA except a list of informational ones;
//  3. query_only=1 (a PRAGMA can no longer switch it off: the authorizer
//     denies the setting form).
//
// The authorizer is an allow list: an action code it does not know is
// denied.

// infoPragmas take an argument that names an object or a limit, never a
// setting, and change nothing: allowed with or without one.
var infoPragmas = map[string]bool{
	"table_info": true, "table_xinfo": true, "table_list": true,
	"index_list": true, "index_info": true, "index_xinfo": true,
	"foreign_key_list": true, "foreign_key_check": true,
	"integrity_check": true, "quick_check": true,
	"collation_list": true, "database_list": true, "function_list": true,
	"module_list": true, "pragma_list": true, "compile_options": true,
}

// readPragmas have a setting form (PRAGMA x = v) that changes the file or
// the connection; only the reading form (no argument) is allowed.
var readPragmas = map[string]bool{
	"user_version": true, "application_id": true, "schema_version": true,
	"data_version": true, "page_count": true, "page_size": true,
	"freelist_count": true, "encoding": true, "journal_mode": true,
	"auto_vacuum": true, "foreign_keys": true, "query_only": true,
	"busy_timeout": true, "cache_size": true, "synchronous": true,
	"max_page_count": true,
}

// deniedFunctions are SQL functions that reach outside the database.
var deniedFunctions = map[string]bool{"load_extension": true, "fts3_tokenizer": true}

// authorizer decides what a read-only connection may prepare. It remembers
// the last action it denied, for the error message.
type authorizer struct {
	mu     sync.Mutex
	denied string
}

func (a *authorizer) deny(format string, args ...any) int {
	a.mu.Lock()
	a.denied = fmt.Sprintf(format, args...)
	a.mu.Unlock()
	return sqlite3.SQLITE_DENY
}

// lastDenied returns and clears what the authorizer last denied.
func (a *authorizer) lastDenied() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	d := a.denied
	a.denied = ""
	return d
}

// sqliteRecursive is SQLITE_RECURSIVE (a recursive CTE), which mattn does
// not export.
const sqliteRecursive = 33

// check is the sqlite3_set_authorizer callback. arg3 is the schema name
// for table and pragma actions. mattn passes NULL arguments as "", so a
// pragma's empty-string argument (”) looks like none: the statement-level
// check in readOnlyStatement refuses that form before SQLite sees it.
func (a *authorizer) check(op int, arg1, arg2, arg3 string) int {
	switch op {
	case sqlite3.SQLITE_READ, sqlite3.SQLITE_SELECT, sqliteRecursive,
		sqlite3.SQLITE_TRANSACTION, sqlite3.SQLITE_SAVEPOINT:
		return sqlite3.SQLITE_OK
	case sqlite3.SQLITE_FUNCTION:
		// arg2 is the function name.
		if deniedFunctions[strings.ToLower(arg2)] {
			return a.deny("the function %s", arg2)
		}
		return sqlite3.SQLITE_OK
	case sqlite3.SQLITE_PRAGMA:
		name := strings.ToLower(arg1)
		switch {
		case infoPragmas[name]:
			return sqlite3.SQLITE_OK
		case readPragmas[name] && arg2 == "":
			return sqlite3.SQLITE_OK
		case readPragmas[name]:
			return a.deny("PRAGMA %s = %s (reading it, PRAGMA %s, is allowed)", name, arg2, name)
		}
		return a.deny("PRAGMA %s", name)
	case sqlite3.SQLITE_ATTACH:
		if arg1 == "" {
			return a.deny("VACUUM (or ATTACH): it writes a new database file")
		}
		return a.deny("ATTACH of %q", arg1)
	case sqlite3.SQLITE_DETACH:
		return a.deny("DETACH")
	case sqlite3.SQLITE_INSERT, sqlite3.SQLITE_UPDATE, sqlite3.SQLITE_DELETE:
		verb := map[int]string{sqlite3.SQLITE_INSERT: "INSERT into", sqlite3.SQLITE_UPDATE: "UPDATE of", sqlite3.SQLITE_DELETE: "DELETE from"}[op]
		return a.deny("%s %s", verb, qualified(arg3, arg1))
	}
	if what, ok := ddlActions[op]; ok {
		if arg1 != "" {
			return a.deny("%s %s", what, qualified(arg3, arg1))
		}
		return a.deny("%s", what)
	}
	return a.deny("SQLite action %d", op)
}

func qualified(schema, name string) string {
	if schema == "" {
		return name
	}
	return schema + "." + name
}

// ddlActions name the schema-changing actions for messages.
var ddlActions = map[int]string{
	sqlite3.SQLITE_CREATE_INDEX: "CREATE INDEX", sqlite3.SQLITE_CREATE_TABLE: "CREATE TABLE",
	sqlite3.SQLITE_CREATE_TEMP_INDEX: "CREATE TEMP INDEX", sqlite3.SQLITE_CREATE_TEMP_TABLE: "CREATE TEMP TABLE",
	sqlite3.SQLITE_CREATE_TEMP_TRIGGER: "CREATE TEMP TRIGGER", sqlite3.SQLITE_CREATE_TEMP_VIEW: "CREATE TEMP VIEW",
	sqlite3.SQLITE_CREATE_TRIGGER: "CREATE TRIGGER", sqlite3.SQLITE_CREATE_VIEW: "CREATE VIEW",
	sqlite3.SQLITE_CREATE_VTABLE: "CREATE VIRTUAL TABLE", sqlite3.SQLITE_DROP_INDEX: "DROP INDEX",
	sqlite3.SQLITE_DROP_TABLE: "DROP TABLE", sqlite3.SQLITE_DROP_TEMP_INDEX: "DROP INDEX",
	sqlite3.SQLITE_DROP_TEMP_TABLE: "DROP TABLE", sqlite3.SQLITE_DROP_TEMP_TRIGGER: "DROP TRIGGER",
	sqlite3.SQLITE_DROP_TEMP_VIEW: "DROP VIEW", sqlite3.SQLITE_DROP_TRIGGER: "DROP TRIGGER",
	sqlite3.SQLITE_DROP_VIEW: "DROP VIEW", sqlite3.SQLITE_DROP_VTABLE: "DROP VIRTUAL TABLE",
	sqlite3.SQLITE_ALTER_TABLE: "ALTER TABLE", sqlite3.SQLITE_REINDEX: "REINDEX",
	sqlite3.SQLITE_ANALYZE: "ANALYZE", sqlite3.SQLITE_COPY: "COPY",
}

// roConnector opens read-only connections with the authorizer installed
// (after mattn has applied the DSN's pragmas, so those are not subject to
// it).
type roConnector struct {
	dsn  string
	auth *authorizer
	drv  *sqlite3.SQLiteDriver
}

func newROConnector(dsn string) *roConnector {
	c := &roConnector{dsn: dsn, auth: &authorizer{}}
	c.drv = &sqlite3.SQLiteDriver{ConnectHook: func(conn *sqlite3.SQLiteConn) error {
		conn.RegisterAuthorizer(c.auth.check)
		return nil
	}}
	return c
}

func (c *roConnector) Connect(context.Context) (driver.Conn, error) { return c.drv.Open(c.dsn) }
func (c *roConnector) Driver() driver.Driver                        { return c.drv }

// openRO opens a pool of read-only, authorized connections.
func openRO(dsn string) (*sql.DB, *authorizer) {
	c := newROConnector(dsn)
	return sql.OpenDB(c), c.auth
}

// readOnlyStatement refuses, before SQLite prepares it, what the authorizer
// cannot tell apart: a PRAGMA given any argument (including ”, which the
// authorizer sees as no argument) unless it is an informational one, and
// VACUUM (whose ATTACH the authorizer denies anyway, with a less clear
// message). It returns "" when the statement may run.
func readOnlyStatement(stmt string) string {
	toks := leadingTokens(stmt, 6)
	for len(toks) > 0 && (toks[0] == "explain" || toks[0] == "query" || toks[0] == "plan") {
		toks = toks[1:]
	}
	if len(toks) == 0 {
		return ""
	}
	switch toks[0] {
	case "vacuum":
		return "VACUUM: it rewrites the database or writes a new file"
	case "pragma":
		rest := toks[1:]
		if len(rest) >= 2 && rest[1] == "." {
			rest = rest[2:] // schema.name
		}
		if len(rest) == 0 {
			return ""
		}
		name := rest[0]
		if len(rest) > 1 && (rest[1] == "=" || rest[1] == "(") && !infoPragmas[name] {
			return "PRAGMA " + name + " with an argument: it changes a setting (reading it, PRAGMA " + name + ", is allowed)"
		}
	}
	return ""
}

// leadingTokens returns up to n lower-cased tokens of stmt, skipping
// comments: words (identifiers and keywords, quotes removed) and single
// punctuation characters.
func leadingTokens(stmt string, n int) []string {
	var out []string
	i := 0
	for i < len(stmt) && len(out) < n {
		c := stmt[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f':
			i++
		case c == '-' && i+1 < len(stmt) && stmt[i+1] == '-':
			if j := strings.IndexByte(stmt[i:], '\n'); j >= 0 {
				i += j + 1
			} else {
				i = len(stmt)
			}
		case c == '/' && i+1 < len(stmt) && stmt[i+1] == '*':
			if j := strings.Index(stmt[i+2:], "*/"); j >= 0 {
				i += j + 4
			} else {
				i = len(stmt)
			}
		case c == '"' || c == '`' || c == '\'':
			j := skipQuoted(stmt, i, c)
			tok := stmt[i:j]
			if len(tok) >= 2 {
				tok = strings.ReplaceAll(tok[1:len(tok)-1], string([]byte{c, c}), string(c))
			}
			out = append(out, strings.ToLower(tok))
			i = j
		case c == '[':
			j := strings.IndexByte(stmt[i:], ']')
			if j < 0 { // unterminated: the rest is the identifier
				out = append(out, strings.ToLower(stmt[i+1:]))
				i = len(stmt)
				continue
			}
			out = append(out, strings.ToLower(stmt[i+1:i+j]))
			i += j + 1
		case isIdentStart(c):
			j := i
			for j < len(stmt) && (isIdentChar(stmt[j]) || stmt[j] == '$') {
				j++
			}
			out = append(out, strings.ToLower(stmt[i:j]))
			i = j
		default:
			out = append(out, string(c))
			i++
		}
	}
	return out
}
