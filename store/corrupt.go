package store

import (
	"pipeline/errclass"

	"context"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/mattn/go-sqlite3"
)

// Corruption: SQLite reports a damaged b-tree page as SQLITE_CORRUPT
// ("database disk image is malformed") from whatever statement first reads
// it, which names nothing. PRAGMA quick_check walks every b-tree page and
// names the page and cell; it is what Check runs first and what a writing
// Open runs before it writes anything.

// quickCheckLimit bounds the lines quick_check reports at a writing open.
const quickCheckLimit = 5

// isCorrupt reports whether err is SQLite's "the file is damaged".
func isCorrupt(err error) bool {
	c := sqliteCode(err)
	return c == sqlite3.ErrCorrupt || c == sqlite3.ErrNotADB
}

// corruptError is an ErrCorrupt naming the file and what is wrong with it.
type corruptError struct {
	path, detail string
	err          error // SQLite's error, if any
}

func (e *corruptError) Error() string {
	return fmt.Sprintf("open %s: %v: %s", e.path, ErrCorrupt, e.detail)
}

func (e *corruptError) Unwrap() error { return e.err }

// Is makes errors.Is(err, ErrCorrupt) true.
func (e *corruptError) Is(target error) bool { return target == ErrCorrupt }

// Class is ErrCorrupt's, whatever SQLite error it wraps.
func (e *corruptError) Class() errclass.Class { return errclass.Integrity }

// corruptionAdvice ends the message of a refused database.
const corruptionAdvice = "; nothing was written. `pipeline check` lists every problem; restore the database from a backup (or re-extract into a new one)"

// newCorruptError describes a SQLITE_CORRUPT error, adding what the
// header says about the file's size when that explains it.
func newCorruptError(path string, err error) error {
	detail := err.Error()
	if h := headerDiagnosis(path); h != "" {
		detail += " (" + h + ")"
	}
	return &corruptError{path: path, detail: detail, err: err}
}

// headerDiagnosis compares the file's size with the size its header
// declares: "" when they agree or the header cannot tell.
func headerDiagnosis(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	var h [100]byte
	if _, err := io.ReadFull(f, h[:]); err != nil {
		return ""
	}
	fi, err := f.Stat()
	if err != nil {
		return ""
	}
	pageSize := int64(binary.BigEndian.Uint16(h[16:18]))
	if pageSize == 1 {
		pageSize = 65536
	}
	if pageSize < 512 || pageSize&(pageSize-1) != 0 {
		return fmt.Sprintf("the header's page size %d is invalid", pageSize)
	}
	pages := int64(binary.BigEndian.Uint32(h[28:32]))
	// The in-header size is valid when the change counter matches
	// version-valid-for (SQLite 3.7.0+ writers keep them equal).
	valid := binary.BigEndian.Uint32(h[24:28]) == binary.BigEndian.Uint32(h[92:96]) && pages > 0
	size := fi.Size()
	switch {
	case valid && size < pages*pageSize:
		return fmt.Sprintf("the file is truncated: it has %d bytes, its header says %d pages of %d bytes (%d bytes); pages %d to %d are missing",
			size, pages, pageSize, pages*pageSize, size/pageSize+1, pages)
	case size%pageSize != 0:
		return fmt.Sprintf("the file's size %d is not a multiple of its page size %d", size, pageSize)
	}
	return ""
}

// quickCheck runs pragma (quick_check or integrity_check) and returns its
// findings, one per line (nil when "ok"), with the rows read before an
// error.
func quickCheck(ctx context.Context, q queryer, pragma string) ([]string, error) {
	rows, err := q.QueryContext(ctx, pragma)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var msg string
		if err := rows.Scan(&msg); err != nil {
			return out, err
		}
		if msg == "ok" {
			continue
		}
		// The first row holds several lines, the first of which is
		// "*** in database main ***": one finding per line.
		for _, line := range strings.Split(msg, "\n") {
			if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "*** in database ") {
				out = append(out, line)
			}
		}
	}
	return out, rows.Err()
}

// refuseCorrupt runs quick_check on the writer connection: a damaged file
// is ErrCorrupt naming the first problems, before anything is written.
func (db *DB) refuseCorrupt(ctx context.Context) error {
	found, err := quickCheck(ctx, db.rw, fmt.Sprintf("PRAGMA quick_check(%d)", quickCheckLimit))
	switch {
	case len(found) > 0 && (err == nil || isCorrupt(err)):
		// quick_check may stop with SQLITE_CORRUPT after its findings.
		found = firstN(found, 3)
		return &corruptError{path: db.path, detail: "quick_check found: " + strings.Join(found, "; ") + corruptionAdvice, err: err}
	case err != nil && isCorrupt(err):
		e := newCorruptError(db.path, err).(*corruptError)
		e.detail += corruptionAdvice
		return e
	case err != nil:
		return wrapOpenErr(db.path, err)
	}
	return nil
}
