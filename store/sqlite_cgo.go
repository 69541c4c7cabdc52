package store

/*
#include <stdlib.h>
#include <string.h>
#include <sqlite3.h>

// The symbols resolve to the SQLite that mattn/go-sqlite3 compiles into the
// binary (the same way sqlite-vec's do); the header only declares them.

static int pl_complete(const char *sql) { return sqlite3_complete(sql); }

// pl_error_offset prepares sql on a fresh read-only connection to the URI
// filename and reports where SQLite says the error is: the byte offset
// (-1 if none) and, in *msg (malloc'd, caller frees), the error message.
static int pl_error_offset(const char *filename, const char *sql, int n, char **msg) {
	sqlite3 *db = 0;
	sqlite3_stmt *st = 0;
	int off = -1;
	*msg = 0;
	if (sqlite3_open_v2(filename, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, 0) != SQLITE_OK) {
		sqlite3_close_v2(db);
		return -1;
	}
	sqlite3_busy_timeout(db, 2000);
	if (sqlite3_prepare_v2(db, sql, n, &st, 0) != SQLITE_OK) {
		const char *m = sqlite3_errmsg(db);
		off = sqlite3_error_offset(db);
		if (m) {
			size_t len = strlen(m);
			*msg = malloc(len + 1);
			if (*msg) memcpy(*msg, m, len + 1);
		}
	}
	sqlite3_finalize(st);
	sqlite3_close_v2(db);
	return off;
}
*/
import "C"

import (
	"unsafe"
)

// sqliteComplete reports whether sql ends a complete statement
// (sqlite3_complete).
func sqliteComplete(sql string) bool {
	cs := C.CString(sql)
	defer C.free(unsafe.Pointer(cs))
	return C.pl_complete(cs) != 0
}

// errorOffset re-prepares a statement that failed on a fresh read-only
// connection to the URI filename uri and returns SQLite's byte offset of the error
// (sqlite3_error_offset, SQLite >= 3.38) and the message it came with.
// mattn/go-sqlite3 does not expose that function, and a prepare error is a
// function of the statement and the committed schema, so a second
// connection reproduces it. -1 when SQLite gives no offset.
func errorOffset(uri, sql string) (int, string) {
	cf := C.CString(uri)
	defer C.free(unsafe.Pointer(cf))
	cs := C.CString(sql)
	defer C.free(unsafe.Pointer(cs))
	var msg *C.char
	off := C.pl_error_offset(cf, cs, C.int(len(sql)), &msg)
	var m string
	if msg != nil {
		m = C.GoString(msg)
		C.free(unsafe.Pointer(msg))
	}
	return int(off), m
}
