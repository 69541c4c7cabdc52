package extract

import (
	"bytes"
	"fmt"
	"os"
	"testing"
)

// TestMain fails the package when a test leaves a gocv Mat open. The count
// is only kept when built with -tags matprofile (scripts/test.sh does).
//
// OpenCL is configured first: OpenCV decides once per process which
// backends exist, so a CPU-only OpenCL platform (pocl) must be set up
// before any test asks.
func TestMain(m *testing.M) {
	if note, err := ConfigureOpenCL(); err == nil && note != "" {
		fmt.Fprintln(os.Stderr, note)
	}
	code := m.Run()
	if n, profile := openMats(); n > 0 {
		var b bytes.Buffer
		profile(&b)
		fmt.Fprintf(os.Stderr, "FAIL: %d gocv Mats left open:\n%s", n, b.String())
		code = 1
	}
	os.Exit(code)
}
