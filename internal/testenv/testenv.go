// Package testenv decides what a test does when its environment lacks
// something it needs: a reference tool, a dataset, a device.
//
// On a developer's machine such a test skips and says why. Under CI
// (CI=true) the same absence is a failure: .ci/run installs every tool the
// tests need, so a missing one means the set-up is broken, and a skipped
// test would hide that.
package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
)

// CI reports whether the tests run under continuous integration (CI=true),
// where nothing may be skipped for a missing tool or dataset.
func CI() bool {
	v := os.Getenv("CI")
	return v == "true" || v == "1"
}

// Missing skips the test with the reason, or fails it under CI.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if CI() {
		t.Fatalf("missing under CI (scripts/deps.sh --test should have installed it): %s", msg)
	}
	t.Skip(msg)
}

// NeedTools calls Missing for the first of the commands not on PATH; hint
// says how to install them (e.g. "Debian: apt-get install libsvm-tools").
func NeedTools(t testing.TB, hint string, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			Missing(t, "%s not installed (%s): %v", n, hint, err)
		}
	}
}
