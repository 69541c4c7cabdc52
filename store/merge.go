package store

import (
	"pipeline/errclass"

	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strings"
)

// Merge errors.
var (
	// ErrIncomparable: a database to merge has a feature set that stands
	// where another one stands in the target (same layer and pooling) but
	// differs in its identity (model file, preprocessing, precision,
	// engine, ...): its vectors cannot be compared with the others.
	ErrIncomparable = errclass.New(errclass.Data, "feature sets are not comparable")
	// ErrSameDatabase: a database given to merge is the target itself (or
	// a copy of it: same identity).
	ErrSameDatabase = errclass.New(errclass.Usage, "same database")
)

// setNameColumns name a feature set without being part of what it is: the
// same model file may be called vgg16 or ./vgg16.onnx, and a layer found by
// its OpenCV name has no alias; model_path is where the file was found.
// Every other column of feature_sets but id and created_at is its identity,
// whatever columns later migrations add.
var setNameColumns = map[string]bool{"id": true, "created_at": true, "model_name": true, "alias": true, "model_path": true}

// why says, for the identity columns we know, what a difference means.
var why = map[string]string{
	"model_sha256": "another model file (other weights give vectors in another space)",
	"layer":        "another layer",
	"pooling":      "another pooling",
	"preprocess":   "other preprocessing (other input pixels)",
	"precision":    "other arithmetic",
	"engine":       "another inference engine",
	"shape":        "another output shape",
	"dim":          "another vector length",
	"encoding":     "another vector encoding",
}

// mergeSet is a feature set as read generically: every column.
type mergeSet struct {
	id       int64
	identity string // canonical JSON of the identity columns
	cols     map[string]any
	where    string // the database it was found in, for messages
}

func (s mergeSet) str(c string) string {
	switch v := s.cols[c].(type) {
	case nil:
		return ""
	case []byte:
		return string(v)
	default:
		return fmt.Sprint(v)
	}
}

// name is what a user calls the set: the alias (or layer) and the pooling.
func (s mergeSet) names() []string {
	p := s.str("pooling")
	out := []string{"layer:" + s.str("layer") + "/" + p}
	if a := s.str("alias"); a != "" {
		out = append(out, "alias:"+a+"/"+p)
	}
	return out
}

func (s mergeSet) String() string {
	name := s.str("alias")
	if name == "" {
		name = s.str("layer")
	}
	return fmt.Sprintf("#%d %s %s (%s, %s, %s-d)", s.id, s.str("model_name"), name, s.str("pooling"), s.str("precision"), s.str("dim"))
}

// MergeSource is one database PlanMerge accepted.
type MergeSource struct {
	Path string // absolute
	ID   string // its settings 'database.id'
	sets []mergeSet
}

// MergePlan is what PlanMerge checked: every source's feature sets match a
// set of the target or of an earlier source, or are new; settings agree.
type MergePlan struct {
	Target  string
	Sources []MergeSource
	// NewSets lists the feature sets the merge will add to the target.
	NewSets []string
}

// readSets reads every feature set of q's database, all columns.
func readSets(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, where string) ([]mergeSet, error) {
	rows, err := q.QueryContext(ctx, `SELECT * FROM feature_sets ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("feature sets of %s: %w", where, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	var out []mergeSet
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, fmt.Errorf("feature sets of %s: %w", where, err)
		}
		s := mergeSet{cols: map[string]any{}, where: where}
		var ident [][2]any
		for i, c := range cols {
			if b, ok := vals[i].([]byte); ok {
				vals[i] = string(b)
			}
			s.cols[c] = vals[i]
			if c == "id" {
				s.id, _ = vals[i].(int64)
			}
			if !setNameColumns[c] {
				ident = append(ident, [2]any{c, vals[i]})
			}
		}
		sort.Slice(ident, func(i, j int) bool { return ident[i][0].(string) < ident[j][0].(string) })
		b, _ := json.Marshal(ident)
		s.identity = string(b)
		out = append(out, s)
	}
	return out, rows.Err()
}

// readSettings reads the settings a merge must agree on (all but the
// database's identity).
func readSettings(ctx context.Context, db *DB) (map[string]string, error) {
	rows, err := db.reader().QueryContext(ctx, `SELECT key, value FROM settings WHERE key != ?`, SettingDatabaseID)
	if err != nil {
		return nil, fmt.Errorf("settings of %s: %w", db.path, err)
	}
	defer rows.Close()
	m := map[string]string{}
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return nil, err
		}
		m[k] = v
	}
	return m, rows.Err()
}

// PlanMerge checks, before anything is written, that the databases at paths
// can be merged into db: each is a pipeline database of this schema version
// other than db; its settings (the split's test fraction) agree with db's
// and the earlier sources'; and each of its feature sets either has the
// identity of a set already in db or an earlier source (every column of
// feature_sets but id, created_at, model_name and alias), or is new. A new
// set is refused (ErrIncomparable) when the target or an earlier source has
// a set of the same layer and pooling that this source lacks: the source was
// made with another model file, preprocessing, precision or engine, and its
// vectors would silently stand beside incomparable ones.
func (db *DB) PlanMerge(ctx context.Context, paths []string) (*MergePlan, error) {
	myID, err := db.DatabaseID(ctx)
	if err != nil {
		return nil, err
	}
	plan := &MergePlan{Target: db.path}
	world := map[string]mergeSet{} // identity -> first set seen with it
	byName := map[string][]mergeSet{}
	add := func(s mergeSet) {
		world[s.identity] = s
		for _, n := range s.names() {
			byName[n] = append(byName[n], s)
		}
	}
	mine, err := readSets(ctx, db.reader(), db.path)
	if err != nil {
		return nil, err
	}
	for _, s := range mine {
		add(s)
	}
	settings, err := readSettings(ctx, db)
	if err != nil {
		return nil, err
	}
	settingFrom := map[string]string{}
	for k := range settings {
		settingFrom[k] = db.path
	}
	seen := map[string]string{myID: db.path}
	for _, p := range paths {
		src, err := Open(p, Options{ReadOnly: true})
		if err != nil {
			return nil, fmt.Errorf("merge: %w", err)
		}
		ms, err := planSource(ctx, src, seen, settings, settingFrom)
		if err == nil {
			ms.sets, err = readSets(ctx, src.reader(), src.path)
		}
		src.Close()
		if err != nil {
			return nil, err
		}
		for _, s := range ms.sets {
			if _, ok := world[s.identity]; ok {
				continue
			}
			if err := checkComparable(s, ms.sets, byName); err != nil {
				return nil, err
			}
		}
		for _, s := range ms.sets {
			if _, ok := world[s.identity]; !ok {
				plan.NewSets = append(plan.NewSets, fmt.Sprintf("%s from %s", s, ms.Path))
				add(s)
			}
		}
		plan.Sources = append(plan.Sources, ms)
	}
	return plan, nil
}

func planSource(ctx context.Context, src *DB, seen map[string]string, settings, settingFrom map[string]string) (MergeSource, error) {
	id, err := src.DatabaseID(ctx)
	if err != nil {
		return MergeSource{}, fmt.Errorf("merge: %w", err)
	}
	if prev, ok := seen[id]; ok {
		if prev == src.path {
			return MergeSource{}, fmt.Errorf("merge %s: %w: it is given twice, or is the target", src.path, ErrSameDatabase)
		}
		return MergeSource{}, fmt.Errorf("merge %s: %w: it has the identity of %s (settings %q = %s): one is a copy of the other; merge only one of them",
			src.path, ErrSameDatabase, prev, SettingDatabaseID, id)
	}
	seen[id] = src.path
	theirs, err := readSettings(ctx, src)
	if err != nil {
		return MergeSource{}, err
	}
	for k, v := range theirs {
		have, ok := settings[k]
		if !ok {
			settings[k], settingFrom[k] = v, src.path
			continue
		}
		if have != v {
			err := fmt.Errorf("merge %s: setting %q is %s there and %s in %s", src.path, k, v, have, settingFrom[k])
			if k == SettingTestFraction {
				err = fmt.Errorf("%w: %w (the split of the merged database would mix two fractions)", err, ErrSplitFrac)
			}
			return MergeSource{}, err
		}
	}
	return MergeSource{Path: src.path, ID: id}, nil
}

// checkComparable refuses a new set s of a source (whose sets are all) when
// a known set of the same name is absent from the source.
func checkComparable(s mergeSet, all []mergeSet, byName map[string][]mergeSet) error {
	has := map[string]bool{}
	for _, o := range all {
		has[o.identity] = true
	}
	for _, n := range s.names() {
		for _, w := range byName[n] {
			if has[w.identity] {
				continue
			}
			var diffs []string
			keys := make([]string, 0, len(s.cols))
			for c := range s.cols {
				keys = append(keys, c)
			}
			sort.Strings(keys)
			for _, c := range keys {
				if setNameColumns[c] || s.str(c) == w.str(c) {
					continue
				}
				d := fmt.Sprintf("%s is %q there, %q in %s", c, short(s.str(c)), short(w.str(c)), w.where)
				if m := why[c]; m != "" {
					d += ": " + m
				}
				diffs = append(diffs, d)
			}
			return fmt.Errorf("merge %s: %w: its feature set %s stands where %s's set %s does (same layer and pooling) but %s; "+
				"its vectors cannot be compared with the others', so they are not mixed into one database: extract it again with the same model and flags, or merge it into another database",
				s.where, ErrIncomparable, s, w.where, w, strings.Join(diffs, "; "))
		}
	}
	return nil
}

func short(s string) string {
	if len(s) == 64 && !strings.ContainsAny(s, " {") {
		return s[:12] + "…"
	}
	return s
}

// MergeStats counts what a merge of one source did.
type MergeStats struct {
	Images         int64 `json:"images"`           // image contents looked at
	NewImages      int64 `json:"new_images"`       // contents the target did not have
	Paths          int64 `json:"paths"`            // path rows inserted or updated
	Vectors        int64 `json:"vectors"`          // vectors copied
	VectorsDiffer  int64 `json:"vectors_differ"`   // vectors of a content the target had with other bytes (the target's kept)
	Failures       int64 `json:"failures"`         // failure rows copied
	Runs           int64 `json:"runs"`             // run rows copied or updated
	Splits         int64 `json:"splits"`           // split rows copied
	SplitsDiffer   int64 `json:"splits_differ"`    // contents in the other part of the target's split (the target's kept)
	FeatureSetsNew int64 `json:"feature_sets_new"` // feature sets added
}

// Add returns s + o.
func (s MergeStats) Add(o MergeStats) MergeStats {
	return MergeStats{s.Images + o.Images, s.NewImages + o.NewImages, s.Paths + o.Paths, s.Vectors + o.Vectors,
		s.VectorsDiffer + o.VectorsDiffer, s.Failures + o.Failures, s.Runs + o.Runs, s.Splits + o.Splits,
		s.SplitsDiffer + o.SplitsDiffer, s.FeatureSetsNew + o.FeatureSetsNew}
}

// MergeChunk is how many images of a source one merge transaction copies.
var MergeChunk = 1000

// mergeTables are the tables whose columns must agree between the target
// and a source: the merge copies them column by column, generically, so that
// a column a later migration adds travels too.
var mergeTables = []string{"images", "image_paths", "feature_sets", "features", "runs", "failures", "splits"}

// Merge copies source i of plan into db: feature sets (new ones), runs,
// failures, then images, paths, vectors and split rows, MergeChunk images
// per transaction, in the source's image order. Everything is keyed by
// content, never by row id: images by sha256, paths by path, vectors by
// (image, feature set identity), runs by (source database identity, run id
// there), failures by (run, path, stage, message, time), so copying a
// source again adds nothing and a source that grew adds only what is new.
//
// When a content is in both, the target keeps its vectors and split part
// (differences are counted), its canonical path becomes the one first in
// walk order (names compared byte-wise component by component, as
// `--images` walks), so the merge of shards has the canonical paths one run
// over all the inputs would have; its label follows the canonical path and
// first_seen is the earlier one. A path in both keeps the row read last
// (the larger mtime, then last_seen).
//
// The caller holds the writer lock; runID (the merge's run, may be 0) gets
// the counters: seen = images looked at, present = contents already there,
// extracted = vectors copied. Each transaction is atomic, so a process killed
// at any moment leaves whole chunks, and merging again finishes the job
// with the same rows.
func (db *DB) Merge(ctx context.Context, plan *MergePlan, i int, runID int64, progress func(MergeStats)) (MergeStats, error) {
	var st MergeStats
	w, err := db.writer("merge")
	if err != nil {
		return st, err
	}
	if !db.holds() {
		return st, fmt.Errorf("merge: %w", ErrNotLocked)
	}
	src := plan.Sources[i]
	myID, err := db.DatabaseID(ctx)
	if err != nil {
		return st, err
	}
	conn, err := w.Conn(ctx)
	if err != nil {
		return st, fmt.Errorf("merge %s: %w", src.Path, err)
	}
	defer conn.Close()
	u := url.URL{Path: src.Path}
	if _, err := conn.ExecContext(ctx, `ATTACH DATABASE ? AS src`, "file:"+u.EscapedPath()+"?mode=ro"); err != nil {
		return st, fmt.Errorf("merge %s: attach: %w", src.Path, err)
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), `DETACH DATABASE src`)
	m := &merger{conn: conn, src: src, myID: myID, runID: runID, cols: map[string][]string{}}
	for _, t := range mergeTables {
		if err := m.checkColumns(ctx, t); err != nil {
			return st, err
		}
	}
	for _, q := range []string{
		`CREATE TEMP TABLE IF NOT EXISTS merge_sets (src INTEGER PRIMARY KEY, dst INTEGER NOT NULL)`,
		`CREATE TEMP TABLE IF NOT EXISTS merge_runs (src INTEGER PRIMARY KEY, dst INTEGER NOT NULL)`,
		`CREATE TEMP TABLE IF NOT EXISTS merge_img (src INTEGER PRIMARY KEY, dst INTEGER NOT NULL, existed INTEGER NOT NULL)`,
		`CREATE TEMP TABLE IF NOT EXISTS merge_touched (id INTEGER PRIMARY KEY)`,
		`DELETE FROM merge_sets`, `DELETE FROM merge_runs`, `DELETE FROM merge_img`,
	} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			return st, fmt.Errorf("merge %s: %w", src.Path, err)
		}
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), `DROP TABLE IF EXISTS temp.merge_sets; DROP TABLE IF EXISTS temp.merge_runs; DROP TABLE IF EXISTS temp.merge_img; DROP TABLE IF EXISTS temp.merge_touched`)

	if err := m.tx(ctx, func(tx *sql.Tx) error { return m.head(ctx, tx, &st) }); err != nil {
		return st, fmt.Errorf("merge %s: %w", src.Path, err)
	}
	if progress != nil {
		progress(st)
	}
	var lo int64 = -1 << 62
	for {
		var h sql.NullInt64
		if err := conn.QueryRowContext(ctx, `SELECT max(id) FROM (SELECT id FROM src.images WHERE id > ? ORDER BY id LIMIT ?)`, lo, MergeChunk).Scan(&h); err != nil {
			return st, fmt.Errorf("merge %s: %w", src.Path, err)
		}
		if !h.Valid {
			break
		}
		hi := h.Int64
		var cs MergeStats
		if err := m.tx(ctx, func(tx *sql.Tx) error {
			cs = MergeStats{}
			return m.chunk(ctx, tx, lo, hi, &cs)
		}); err != nil {
			return st, fmt.Errorf("merge %s: images %d..%d: %w", src.Path, lo+1, hi, err)
		}
		st = st.Add(cs)
		if progress != nil {
			progress(st)
		}
		lo = hi
		if err := ctx.Err(); err != nil {
			return st, err
		}
	}
	return st, nil
}

type merger struct {
	conn  *sql.Conn
	src   MergeSource
	myID  string
	runID int64
	cols  map[string][]string // table -> columns (same in both)
}

func (m *merger) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := m.conn.BeginTx(context.WithoutCancel(ctx), nil)
	if err != nil {
		return err
	}
	defer rollback(tx)
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}

func (m *merger) checkColumns(ctx context.Context, table string) error {
	get := func(schema string) ([]string, error) {
		rows, err := m.conn.QueryContext(ctx, `SELECT name FROM pragma_table_info(?, ?) ORDER BY cid`, table, schema)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var n string
			if err := rows.Scan(&n); err != nil {
				return nil, err
			}
			out = append(out, n)
		}
		return out, rows.Err()
	}
	mine, err := get("main")
	if err != nil {
		return fmt.Errorf("merge %s: columns of %s: %w", m.src.Path, table, err)
	}
	theirs, err := get("src")
	if err != nil {
		return fmt.Errorf("merge %s: columns of %s: %w", m.src.Path, table, err)
	}
	a, b := slices.Clone(mine), slices.Clone(theirs)
	sort.Strings(a)
	sort.Strings(b)
	if !slices.Equal(a, b) {
		return fmt.Errorf("merge %s: table %s has columns %v there and %v in the target: the schemas differ", m.src.Path, table, theirs, mine)
	}
	m.cols[table] = mine
	return nil
}

// list builds "col, col, ..." of table's columns but skip, with the
// expression given in repl instead of src alias "s.col".
func (m *merger) list(table string, skip map[string]bool, repl map[string]string) (cols, exprs string) {
	var cs, es []string
	for _, c := range m.cols[table] {
		if skip[c] {
			continue
		}
		cs = append(cs, `"`+c+`"`)
		if e, ok := repl[c]; ok {
			es = append(es, e)
		} else {
			es = append(es, `s."`+c+`"`)
		}
	}
	return strings.Join(cs, ", "), strings.Join(es, ", ")
}

// head copies the feature sets, runs and failures and fills merge_sets and
// merge_runs.
func (m *merger) head(ctx context.Context, tx *sql.Tx, st *MergeStats) error {
	// Feature sets, matched by identity (PlanMerge has checked them).
	mine, err := readSets(ctx, tx, "target")
	if err != nil {
		return err
	}
	byIdent := map[string]int64{}
	for _, s := range mine {
		byIdent[s.identity] = s.id
	}
	cols, exprs := m.list("feature_sets", map[string]bool{"id": true}, nil)
	for _, s := range m.src.sets {
		dst, ok := byIdent[s.identity]
		if !ok {
			res, err := tx.ExecContext(ctx, `INSERT INTO main.feature_sets (`+cols+`) SELECT `+exprs+` FROM src.feature_sets s WHERE s.id = ?`, s.id)
			if err != nil {
				return fmt.Errorf("feature set %s: %w", s, err)
			}
			if dst, err = res.LastInsertId(); err != nil {
				return err
			}
			byIdent[s.identity] = dst
			st.FeatureSetsNew++
		} else if a := s.str("alias"); a != "" {
			if _, err := tx.ExecContext(ctx, `UPDATE main.feature_sets SET alias = ? WHERE id = ? AND alias IS NULL`, a, dst); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO merge_sets (src, dst) VALUES (?, ?)`, s.id, dst); err != nil {
			return err
		}
	}
	// Runs, keyed by where they were first recorded. A run that came from
	// the target itself (merged back) maps to its own row.
	rcols, rexprs := m.list("runs", map[string]bool{"id": true, "source_db": true, "source_run_id": true}, nil)
	var upd []string
	for _, c := range m.cols["runs"] {
		switch c {
		case "id", "source_db", "source_run_id", "command", "args", "started_at", "pid", "host", "shard":
		default:
			upd = append(upd, `"`+c+`" = excluded."`+c+`"`)
		}
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO main.runs (`+rcols+`, source_db, source_run_id)
		SELECT `+rexprs+`, COALESCE(s.source_db, ?1), COALESCE(s.source_run_id, s.id) FROM src.runs s
		WHERE COALESCE(s.source_db, ?1) != ?2 ORDER BY s.id
		ON CONFLICT (source_db, source_run_id) DO UPDATE SET `+strings.Join(upd, ", ")+`
		WHERE runs.status != excluded.status OR runs.ended_at IS NOT excluded.ended_at OR runs.seen != excluded.seen
			OR runs.extracted != excluded.extracted OR runs.failed != excluded.failed`, m.src.ID, m.myID)
	if err != nil {
		return fmt.Errorf("runs: %w", err)
	}
	st.Runs, _ = res.RowsAffected()
	if _, err := tx.ExecContext(ctx, `INSERT INTO merge_runs (src, dst)
		SELECT s.id, r.id FROM src.runs s JOIN main.runs r
			ON r.source_db = COALESCE(s.source_db, ?1) AND r.source_run_id = COALESCE(s.source_run_id, s.id)
		UNION ALL
		SELECT s.id, s.source_run_id FROM src.runs s WHERE s.source_db = ?2
			AND EXISTS (SELECT 1 FROM main.runs r WHERE r.id = s.source_run_id)`, m.src.ID, m.myID); err != nil {
		return fmt.Errorf("runs: %w", err)
	}
	// A copied run must be the same run: two databases made by copying one
	// file share an identity, and their runs would be confused.
	var clash sql.NullInt64
	if err := tx.QueryRowContext(ctx, `SELECT s.id FROM src.runs s JOIN merge_runs mr ON mr.src = s.id
		JOIN main.runs r ON r.id = mr.dst WHERE r.started_at != s.started_at LIMIT 1`).Scan(&clash); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	if clash.Valid {
		return fmt.Errorf("run %d there is not the run the target has under the same origin (started at another time): the two databases were copied from one file (same settings %q); merge one of them only", clash.Int64, SettingDatabaseID)
	}
	// Failures, with their run.
	fcols, fexprs := m.list("failures", map[string]bool{"id": true}, map[string]string{"run_id": "mr.dst"})
	res, err = tx.ExecContext(ctx, `INSERT INTO main.failures (`+fcols+`) SELECT `+fexprs+`
		FROM src.failures s JOIN merge_runs mr ON mr.src = s.run_id
		WHERE NOT EXISTS (SELECT 1 FROM main.failures f WHERE f.run_id = mr.dst AND f.path = s.path
			AND f.stage = s.stage AND f.message = s.message AND f.at = s.at)
		ORDER BY s.id`)
	if err != nil {
		return fmt.Errorf("failures: %w", err)
	}
	st.Failures, _ = res.RowsAffected()
	return nil
}

// chunk copies the source's images with lo < id <= hi, their paths, vectors
// and split rows.
func (m *merger) chunk(ctx context.Context, tx *sql.Tx, lo, hi int64, st *MergeStats) error {
	ex := func(q string, args ...any) (int64, error) {
		res, err := tx.ExecContext(ctx, q, args...)
		if err != nil {
			return 0, err
		}
		return res.RowsAffected()
	}
	if _, err := ex(`DELETE FROM merge_img`); err != nil {
		return err
	}
	// Which contents the target already has.
	if _, err := ex(`INSERT INTO merge_img (src, dst, existed) SELECT s.id, m.id, 1 FROM src.images s
		JOIN main.images m ON m.sha256 = s.sha256 WHERE s.id > ? AND s.id <= ?`, lo, hi); err != nil {
		return fmt.Errorf("images: %w", err)
	}
	icols, iexprs := m.list("images", map[string]bool{"id": true}, nil)
	n, err := ex(`INSERT INTO main.images (`+icols+`) SELECT `+iexprs+` FROM src.images s
		WHERE s.id > ? AND s.id <= ? AND s.id NOT IN (SELECT src FROM merge_img) ORDER BY s.id`, lo, hi)
	if err != nil {
		return fmt.Errorf("images: %w", err)
	}
	st.NewImages = n
	if _, err := ex(`INSERT INTO merge_img (src, dst, existed) SELECT s.id, m.id, 0 FROM src.images s
		JOIN main.images m ON m.sha256 = s.sha256 WHERE s.id > ? AND s.id <= ? AND s.id NOT IN (SELECT src FROM merge_img)`, lo, hi); err != nil {
		return fmt.Errorf("images: %w", err)
	}
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM merge_img`).Scan(&st.Images); err != nil {
		return err
	}
	// Images whose canonical path may change: every image of the chunk,
	// and those a path row moves away from.
	if _, err := ex(`DELETE FROM merge_touched`); err != nil {
		return err
	}
	if _, err := ex(`INSERT OR IGNORE INTO merge_touched (id) SELECT dst FROM merge_img`); err != nil {
		return err
	}
	// Paths: the row read last wins.
	pcols, pexprs := m.list("image_paths", nil, map[string]string{"image_id": "mi.dst", "run_id": "mr.dst"})
	var upd []string
	for _, c := range m.cols["image_paths"] {
		if c != "path" {
			upd = append(upd, `"`+c+`" = excluded."`+c+`"`)
		}
	}
	newer := `(excluded.mtime_ns > image_paths.mtime_ns OR (excluded.mtime_ns = image_paths.mtime_ns AND excluded.last_seen > image_paths.last_seen))`
	if _, err := ex(`INSERT OR IGNORE INTO merge_touched (id) SELECT p.image_id FROM main.image_paths p
		JOIN src.image_paths s ON s.path = p.path JOIN merge_img mi ON mi.src = s.image_id
		WHERE p.image_id != mi.dst`); err != nil {
		return err
	}
	n, err = ex(`INSERT INTO main.image_paths (` + pcols + `) SELECT ` + pexprs + `
		FROM src.image_paths s JOIN merge_img mi ON mi.src = s.image_id LEFT JOIN merge_runs mr ON mr.src = s.run_id
		WHERE true ORDER BY s.rowid
		ON CONFLICT (path) DO UPDATE SET ` + strings.Join(upd, ", ") + ` WHERE ` + newer)
	if err != nil {
		return fmt.Errorf("paths: %w", err)
	}
	st.Paths = n
	// Vectors: the target's stay; count those that differ.
	fcols, fexprs := m.list("features", nil, map[string]string{"image_id": "mi.dst", "feature_set_id": "ms.dst", "run_id": "mr.dst"})
	n, err = ex(`INSERT INTO main.features (` + fcols + `) SELECT ` + fexprs + `
		FROM src.features s JOIN merge_img mi ON mi.src = s.image_id JOIN merge_sets ms ON ms.src = s.feature_set_id
		LEFT JOIN merge_runs mr ON mr.src = s.run_id
		WHERE true ON CONFLICT (image_id, feature_set_id) DO NOTHING`)
	if err != nil {
		return fmt.Errorf("vectors: %w", err)
	}
	st.Vectors = n
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM src.features s JOIN merge_img mi ON mi.src = s.image_id AND mi.existed
		JOIN merge_sets ms ON ms.src = s.feature_set_id
		JOIN main.features f ON f.image_id = mi.dst AND f.feature_set_id = ms.dst WHERE f.vector != s.vector`).Scan(&st.VectorsDiffer); err != nil {
		return fmt.Errorf("vectors: %w", err)
	}
	// Split rows of contents the target has not split.
	scols, sexprs := m.list("splits", nil, map[string]string{"image_id": "mi.dst"})
	n, err = ex(`INSERT INTO main.splits (` + scols + `) SELECT ` + sexprs + ` FROM src.splits s JOIN merge_img mi ON mi.src = s.image_id
		WHERE true ON CONFLICT (image_id) DO NOTHING`)
	if err != nil {
		return fmt.Errorf("splits: %w", err)
	}
	st.Splits = n
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM src.splits s JOIN merge_img mi ON mi.src = s.image_id
		JOIN main.splits t ON t.image_id = mi.dst WHERE t.part != s.part`).Scan(&st.SplitsDiffer); err != nil {
		return err
	}
	if err := m.canonical(ctx, tx); err != nil {
		return err
	}
	if m.runID != 0 {
		if _, err := ex(`UPDATE main.runs SET seen = seen + ?, present = present + ?, extracted = extracted + ? WHERE id = ?`,
			st.Images, st.Images-st.NewImages, st.Vectors, m.runID); err != nil {
			return err
		}
	}
	return nil
}

// canonical fixes images.path, images.label and first_seen of the touched
// images (see Merge).
func (m *merger) canonical(ctx context.Context, tx *sql.Tx) error {
	// The earlier first_seen.
	if _, err := tx.ExecContext(ctx, `UPDATE main.images SET first_seen = (SELECT s.first_seen FROM merge_img mi
			JOIN src.images s ON s.id = mi.src WHERE mi.dst = images.id)
		WHERE id IN (SELECT dst FROM merge_img mi JOIN src.images s ON s.id = mi.src JOIN main.images t ON t.id = mi.dst
			WHERE s.first_seen < t.first_seen)`); err != nil {
		return err
	}
	// Each touched image: the first of its paths in walk order among its
	// current canonical path (if it still shows this image) and the
	// source's canonical path (if it now shows this image).
	type cand struct {
		id          int64
		cur, theirs sql.NullString
		curOK       bool
	}
	rows, err := tx.QueryContext(ctx, `SELECT t.id, t.path, s.path,
			EXISTS (SELECT 1 FROM main.image_paths p WHERE p.path = t.path AND p.image_id = t.id),
			EXISTS (SELECT 1 FROM main.image_paths p WHERE p.path = s.path AND p.image_id = t.id)
		FROM merge_touched mt JOIN main.images t ON t.id = mt.id
		LEFT JOIN merge_img mi ON mi.dst = t.id LEFT JOIN src.images s ON s.id = mi.src ORDER BY t.id`)
	if err != nil {
		return err
	}
	var todo []cand
	for rows.Next() {
		var c cand
		var theirsOK bool
		if err := rows.Scan(&c.id, &c.cur, &c.theirs, &c.curOK, &theirsOK); err != nil {
			rows.Close()
			return err
		}
		if !theirsOK {
			c.theirs = sql.NullString{}
		}
		todo = append(todo, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, c := range todo {
		best := ""
		if c.curOK {
			best = c.cur.String
		}
		if c.theirs.Valid && (best == "" || WalkLess(c.theirs.String, best)) {
			best = c.theirs.String
		}
		if best == "" {
			// The canonical path moved to other bytes: the oldest
			// remaining path takes over (as WriteBatch does).
			if _, err := tx.ExecContext(ctx, `UPDATE main.images SET (path, label) =
				(SELECT path, label FROM main.image_paths WHERE image_id = images.id ORDER BY rowid LIMIT 1)
				WHERE id = ? AND EXISTS (SELECT 1 FROM main.image_paths WHERE image_id = images.id)`, c.id); err != nil {
				return err
			}
			continue
		}
		if _, err := tx.ExecContext(ctx, `UPDATE main.images SET path = ?1,
				label = (SELECT label FROM main.image_paths WHERE path = ?1)
			WHERE id = ?2 AND (path != ?1 OR label IS NOT (SELECT label FROM main.image_paths WHERE path = ?1))`, best, c.id); err != nil {
			return err
		}
	}
	return nil
}

// WalkLess reports whether path a comes before b in the order a directory
// walk visits them: names compared byte-wise, component by component (so
// "a/z" comes before "a.b/c").
func WalkLess(a, b string) bool {
	for i := 0; i < len(a) && i < len(b); i++ {
		x, y := a[i], b[i]
		if x == y {
			continue
		}
		if x == '/' {
			return true
		}
		if y == '/' {
			return false
		}
		return x < y
	}
	return len(a) < len(b)
}
