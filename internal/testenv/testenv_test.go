package testenv

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// The behaviour under CI is checked in a child process, since a Fatal in
// this process would fail this test.
func TestMissing_FailsUnderCI(t *testing.T) {
	if os.Getenv("TESTENV_CHILD") == "1" {
		Missing(t, "no such tool")
		return
	}
	for _, tc := range []struct {
		ci       string
		wantFail bool
		wantText string
	}{
		{"true", true, "missing under CI"},
		{"", false, "no such tool"},
	} {
		cmd := exec.Command(os.Args[0], "-test.run", "^TestMissing_FailsUnderCI$", "-test.v")
		cmd.Env = append(os.Environ(), "TESTENV_CHILD=1", "CI="+tc.ci)
		out, err := cmd.CombinedOutput()
		if failed := err != nil; failed != tc.wantFail {
			t.Errorf("CI=%q: failed = %v, want %v\n%s", tc.ci, failed, tc.wantFail, out)
		}
		if !strings.Contains(string(out), tc.wantText) {
			t.Errorf("CI=%q: output lacks %q:\n%s", tc.ci, tc.wantText, out)
		}
		if !tc.wantFail && !strings.Contains(string(out), "SKIP") {
			t.Errorf("CI=%q: the test did not skip:\n%s", tc.ci, out)
		}
	}
}

func TestNeedTools(t *testing.T) {
	if os.Getenv("TESTENV_CHILD") == "1" {
		NeedTools(t, "Debian: nothing", "sh", "no-such-tool-xyz")
		t.Log("reached the end")
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run", "^TestNeedTools$", "-test.v")
	cmd.Env = append(os.Environ(), "TESTENV_CHILD=1", "CI=")
	out, _ := cmd.CombinedOutput()
	if !strings.Contains(string(out), "no-such-tool-xyz not installed (Debian: nothing)") || strings.Contains(string(out), "reached the end") {
		t.Errorf("NeedTools did not skip on the missing tool:\n%s", out)
	}
}
