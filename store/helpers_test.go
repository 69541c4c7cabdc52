package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestMain lets the tests re-execute the test binary as a child process
// (lock holders, writers that get SIGKILLed): STORE_TEST_CHILD names what
// the child does.
func TestMain(m *testing.M) {
	if mode := os.Getenv("STORE_TEST_CHILD"); mode != "" {
		os.Exit(runChild(mode))
	}
	os.Exit(m.Run())
}

// newDB opens a fresh database in a temporary directory.
func newDB(t *testing.T) *DB {
	t.Helper()
	db, err := Open(filepath.Join(t.TempDir(), "features.db"), Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// rawDB opens the file with plain database/sql and no pragmas, for planting
// rows the store would refuse.
func rawDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	raw, err := sql.Open("sqlite3", "file:"+path+"?_foreign_keys=0")
	if err != nil {
		t.Fatal(err)
	}
	raw.SetMaxOpenConns(1)
	t.Cleanup(func() { raw.Close() })
	return raw
}

func mustExec(t *testing.T, q interface {
	Exec(string, ...any) (sql.Result, error)
}, query string, args ...any) {
	t.Helper()
	if _, err := q.Exec(query, args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

func queryInt(t *testing.T, db *DB, query string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := db.reader().QueryRow(query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

func shaOf(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// testSet creates a feature set of the given dim, distinguished by layer.
func testSet(t *testing.T, db *DB, layer string, dim int) FeatureSet {
	t.Helper()
	fs, err := db.EnsureFeatureSet(context.Background(), FeatureSet{
		ModelSHA256: shaOf("model"), ModelName: "vgg16", Layer: layer, Alias: strings.ToUpper(layer[:1]) + layer[1:],
		Pooling: PoolAvg, Preprocess: `{"size":224}`, Shape: fmt.Sprint(dim), Dim: dim,
	})
	if err != nil {
		t.Fatalf("EnsureFeatureSet: %v", err)
	}
	return fs
}

// vecOf is a deterministic vector for (seed, set).
func vecOf(seed int, set int64, dim int) []float32 {
	v := make([]float32, dim)
	for i := range v {
		v[i] = float32(math.Sin(float64(seed*7919+int(set)*104729+i) * 0.001))
	}
	return v
}

// item builds an Item for content "content" at the given paths (label taken
// from the path's parent folder) with vectors for sets.
func item(content string, paths []string, sets ...FeatureSet) Item {
	it := Item{Image: ImageRecord{SHA256: shaOf(content), Width: 640, Height: 480, Bytes: int64(len(content)), Format: "jpeg"}}
	for _, p := range paths {
		it.Paths = append(it.Paths, PathRecord{Path: p, RelPath: strings.TrimPrefix(p, "/data/"),
			Label: filepath.Base(filepath.Dir(p)), Size: int64(len(content)), MtimeNS: 1})
	}
	seed := seedOf(content)
	for _, fs := range sets {
		it.Vectors = append(it.Vectors, Vector{FeatureSetID: fs.ID, Data: vecOf(seed, fs.ID, fs.Dim)})
	}
	return it
}

// seedOf derives a vector seed from the content.
func seedOf(content string) int {
	n, _ := strconv.ParseInt(shaOf(content)[:6], 16, 64)
	return int(n)
}

// wantErr fails unless err is non-nil and its message has every part.
func wantErr(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got nil error, want one containing %q", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not contain %q", err, p)
		}
	}
}
