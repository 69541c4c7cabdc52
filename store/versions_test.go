package store

import (
	"os"
	"strings"
	"testing"

	sqlite3 "github.com/mattn/go-sqlite3"
)

// TestVersions: the versions `pipeline version` prints are the SQLite that
// go-sqlite3 compiled in and the sqlite-vec module go.mod pins.
func TestVersions(t *testing.T) {
	lib, vecV, err := Versions()
	if err != nil {
		t.Fatal(err)
	}
	if want, _, _ := sqlite3.Version(); lib != want {
		t.Errorf("sqlite %q, go-sqlite3 says %q", lib, want)
	}
	mod, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	pinned := ""
	for _, line := range strings.Split(string(mod), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "github.com/asg017/sqlite-vec-go-bindings" {
			pinned = f[1]
		}
	}
	if pinned == "" || vecV != pinned {
		t.Errorf("sqlite-vec %q, go.mod pins %q", vecV, pinned)
	}
}
