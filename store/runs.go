package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"pipeline/errclass"
)

// Run statuses (runs.status).
const (
	RunRunning     = "running"
	RunOK          = "ok"
	RunPartial     = "partial"     // finished, some files failed
	RunInterrupted = "interrupted" // stopped by SIGINT/SIGTERM
	RunFailed      = "failed"      // stopped by an error
	RunAbandoned   = "abandoned"   // the process died without finishing
)

// ErrUnknownRun: no run with that id.
var ErrUnknownRun = errclass.New(errclass.NotFound, "unknown run")

// Counts are a run's file counters (runs.seen ... runs.failed).
type Counts struct {
	Seen       int64 `json:"seen"`
	Extracted  int64 `json:"extracted"`
	Present    int64 `json:"present"`
	Duplicates int64 `json:"duplicates"`
	Failed     int64 `json:"failed"`
}

// Add returns c + d.
func (c Counts) Add(d Counts) Counts {
	return Counts{c.Seen + d.Seen, c.Extracted + d.Extracted, c.Present + d.Present, c.Duplicates + d.Duplicates, c.Failed + d.Failed}
}

// Run is a row of runs.
type Run struct {
	ID        int64     `json:"id"`
	Command   string    `json:"command"`
	Args      []string  `json:"args"`
	StartedAt time.Time `json:"started_at"`
	EndedAt   time.Time `json:"ended_at"` // zero while running (or killed)
	Status    string    `json:"status"`
	ExitCode  *int      `json:"exit_code"` // nil while running
	PID       int       `json:"pid"`
	Host      string    `json:"host"`
	Counts
	Message string `json:"message,omitempty"`
	// Shard is "I/N" for a run over one shard of its inputs, "" otherwise.
	Shard string `json:"shard,omitempty"`
	// Merged: the run was copied from another database by `pipeline merge`.
	Merged bool   `json:"merged,omitempty"`
	Engine string `json:"engine,omitempty"` // opencv or onednn (extract, predict); "" otherwise
}

// StartRun records a new run with status 'running'. Only the holder of the
// writer lock starts runs (that is what makes AbandonStaleRuns sound); the
// lock file's holder gets the run id.
func (db *DB) StartRun(ctx context.Context, command string, args []string) (int64, error) {
	w, err := db.writer("start run")
	if err != nil {
		return 0, err
	}
	if !db.holds() {
		return 0, fmt.Errorf("start run: %w (call Lock first)", ErrNotLocked)
	}
	if args == nil {
		args = []string{}
	}
	a, err := json.Marshal(args)
	if err != nil {
		return 0, fmt.Errorf("start run: %w", err)
	}
	host, _ := os.Hostname()
	res, err := w.ExecContext(ctx, `INSERT INTO runs (command, args, started_at, status, pid, host)
		VALUES (?, ?, ?, ?, ?, ?)`, command, string(a), now(), RunRunning, os.Getpid(), host)
	if err != nil {
		return 0, fmt.Errorf("start run: %w", err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return 0, fmt.Errorf("start run: %w", err)
	}
	db.mu.Lock()
	db.started[id] = struct{}{}
	db.mu.Unlock()
	if err := db.UpdateLockHolder(func(h *Holder) { h.RunID = id }); err != nil {
		return id, err
	}
	return id, nil
}

// SetRunEngine records the engine a running run computes its vectors on.
func (db *DB) SetRunEngine(ctx context.Context, id int64, engine string) error {
	w, err := db.writer("run engine")
	if err != nil {
		return err
	}
	res, err := w.ExecContext(ctx, `UPDATE runs SET engine = ? WHERE id = ?`, engine, id)
	return checkRunUpdate("run engine", id, res, err)
}

// UpdateRun sets a running run's counters (absolute values).
func (db *DB) UpdateRun(ctx context.Context, id int64, c Counts) error {
	w, err := db.writer("update run")
	if err != nil {
		return err
	}
	res, err := w.ExecContext(ctx, `UPDATE runs SET seen = ?, extracted = ?, present = ?, duplicates = ?, failed = ?
		WHERE id = ?`, c.Seen, c.Extracted, c.Present, c.Duplicates, c.Failed, id)
	return checkRunUpdate("update run", id, res, err)
}

// FinishRun ends a run: status (one of the Run* constants but running),
// exit code, final counters (absolute) and the error message, if any.
func (db *DB) FinishRun(ctx context.Context, id int64, status string, exitCode int, c Counts, message string) error {
	w, err := db.writer("finish run")
	if err != nil {
		return err
	}
	switch status {
	case RunOK, RunPartial, RunInterrupted, RunFailed, RunAbandoned:
	default:
		return fmt.Errorf("finish run %d: invalid status %q", id, status)
	}
	res, err := w.ExecContext(ctx, `UPDATE runs SET status = ?, exit_code = ?, ended_at = ?, message = ?,
		seen = ?, extracted = ?, present = ?, duplicates = ?, failed = ? WHERE id = ?`,
		status, exitCode, now(), nullString(message), c.Seen, c.Extracted, c.Present, c.Duplicates, c.Failed, id)
	if err := checkRunUpdate("finish run", id, res, err); err != nil {
		return err
	}
	db.mu.Lock()
	delete(db.started, id)
	db.mu.Unlock()
	return nil
}

func checkRunUpdate(op string, id int64, res sql.Result, err error) error {
	if err != nil {
		return fmt.Errorf("%s %d: %w", op, id, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return fmt.Errorf("%s %d: %w", op, id, ErrUnknownRun)
	}
	return nil
}

// AbandonStaleRuns marks every run still 'running' that this DB did not
// start as 'abandoned' and returns how many. Runs copied from another
// database by a merge are left alone: their status is that database's. Only the writer-lock holder may
// call it: runs are only started under the lock, so while we hold it any
// other running run belongs to a process that died without finishing.
func (db *DB) AbandonStaleRuns(ctx context.Context) (int64, error) {
	w, err := db.writer("abandon stale runs")
	if err != nil {
		return 0, err
	}
	if !db.holds() {
		return 0, fmt.Errorf("abandon stale runs: %w", ErrNotLocked)
	}
	db.mu.Lock()
	mine := make([]any, 0, len(db.started))
	for id := range db.started {
		mine = append(mine, id)
	}
	db.mu.Unlock()
	q := `UPDATE runs SET status = ?, ended_at = ?,
		message = COALESCE(message, 'the process ended without finishing the run (killed?)')
		WHERE status = ? AND source_db IS NULL`
	args := []any{RunAbandoned, now(), RunRunning}
	if len(mine) > 0 {
		q += ` AND id NOT IN (SELECT value FROM json_each(?))`
		b, _ := json.Marshal(mine)
		args = append(args, string(b))
	}
	res, err := w.ExecContext(ctx, q, args...)
	if err != nil {
		return 0, fmt.Errorf("abandon stale runs: %w", err)
	}
	return res.RowsAffected()
}

// Runs returns the latest runs, newest first; limit <= 0 means all.
func (db *DB) Runs(ctx context.Context, limit int) ([]Run, error) {
	if limit <= 0 {
		limit = -1
	}
	return db.queryRuns(ctx, `ORDER BY id DESC LIMIT ?`, limit)
}

// Run returns one run.
func (db *DB) Run(ctx context.Context, id int64) (Run, error) {
	runs, err := db.queryRuns(ctx, `WHERE id = ?`, id)
	if err != nil {
		return Run{}, err
	}
	if len(runs) == 0 {
		return Run{}, fmt.Errorf("run %d: %w", id, ErrUnknownRun)
	}
	return runs[0], nil
}

func (db *DB) queryRuns(ctx context.Context, tail string, args ...any) ([]Run, error) {
	rows, err := db.reader().QueryContext(ctx, `SELECT id, command, args, started_at, ended_at, status, exit_code,
		pid, host, seen, extracted, present, duplicates, failed, message, shard, source_db IS NOT NULL, engine FROM runs `+tail, args...)
	if err != nil {
		return nil, fmt.Errorf("runs: %w", err)
	}
	defer rows.Close()
	var runs []Run
	for rows.Next() {
		var r Run
		var args string
		var started, ended, host, msg, shard, engine sql.NullString
		var exit, pid sql.NullInt64
		if err := rows.Scan(&r.ID, &r.Command, &args, &started, &ended, &r.Status, &exit, &pid, &host,
			&r.Seen, &r.Extracted, &r.Present, &r.Duplicates, &r.Failed, &msg, &shard, &r.Merged, &engine); err != nil {
			return nil, fmt.Errorf("runs: %w", err)
		}
		if err := json.Unmarshal([]byte(args), &r.Args); err != nil {
			r.Args = []string{args} // hand-written row: show it as is
		}
		r.StartedAt, r.EndedAt = parseTime(started), parseTime(ended)
		if exit.Valid {
			e := int(exit.Int64)
			r.ExitCode = &e
		}
		r.PID, r.Host, r.Message, r.Shard, r.Engine = int(pid.Int64), host.String, msg.String, shard.String, engine.String
		runs = append(runs, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("runs: %w", err)
	}
	return runs, nil
}
