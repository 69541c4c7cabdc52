package fetch

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestVerifyCachedID: an MD5-only identity (Keras's get_file) verifies,
// returns the SHA-256 and records both digests in the sidecar; a wrong MD5
// is a mismatch naming both MD5s; an identity without digest is refused.
func TestVerifyCachedID(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.h5")
	data := []byte("keras weights, say")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	m, s := md5.Sum(data), sha256.Sum256(data)
	md, sh := hex.EncodeToString(m[:]), hex.EncodeToString(s[:])

	got, err := VerifyCachedID(path, ID{Size: int64(len(data)), MD5: strings.ToUpper(md)})
	if err != nil || got != sh {
		t.Fatalf("VerifyCachedID = %q, %v; want %s", got, err, sh)
	}
	sc, ok := readSidecar(path)
	if !ok || sc.SHA256 != sh || sc.MD5 != md {
		t.Errorf("sidecar %+v, want sha256 %s and md5 %s", sc, sh, md)
	}
	if rec := RecordedSHA256(path); rec != sh {
		t.Errorf("RecordedSHA256 = %q", rec)
	}
	// The fast path still checks the recorded MD5 against the identity.
	wrong := strings.Repeat("0", 32)
	_, err = VerifyCachedID(path, ID{MD5: wrong})
	var me *MismatchError
	if !errors.As(err, &me) || !strings.Contains(err.Error(), "md5 "+wrong) || !strings.Contains(err.Error(), "md5 "+md) {
		t.Errorf("wrong md5: %v, want a mismatch naming both", err)
	}
	if _, err := VerifyCachedID(path, ID{Size: 3}); err == nil || !strings.Contains(err.Error(), "neither a sha256 nor an md5") {
		t.Errorf("no digest: %v", err)
	}
	if _, err := VerifyCachedID(path, ID{MD5: "xyz"}); err == nil || !strings.Contains(err.Error(), "not 32 hex digits") {
		t.Errorf("bad md5: %v", err)
	}
}
