package store

import (
	"errors"

	"github.com/mattn/go-sqlite3"

	"pipeline/errclass"
)

// QueryFault reports whether a query error is the query's own fault (bad
// syntax, an unknown table, column or function, a constraint or type
// violation, malformed JSON, bad parameters, a write on a read-only query)
// rather than the environment's (an I/O error, a full disk, a corrupt or
// busy database, no memory). `pipeline sql` exits with the usage code for
// the first kind and the error code for the second.
func QueryFault(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, ErrParams) || errors.Is(err, ErrReadOnly) {
		return true
	}
	var se sqlite3.Error
	if !errors.As(err, &se) {
		return false
	}
	switch se.Code {
	case sqlite3.ErrError, // SQL error: syntax, no such table/column/function, runtime errors of functions
		sqlite3.ErrConstraint, sqlite3.ErrMismatch, sqlite3.ErrRange, sqlite3.ErrTooBig, sqlite3.ErrAuth:
		return true
	}
	return false
}

// Class is a query error's class: usage when it is the query's own fault
// (QueryFault), else the class of what it wraps (an I/O error is fatal).
func (e *QueryError) Class() errclass.Class {
	if QueryFault(e) {
		return errclass.Usage
	}
	return errclass.Of(e.Err)
}
