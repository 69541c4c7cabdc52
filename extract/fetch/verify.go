package fetch

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// sidecarExt names the file beside a verified download that records what
// was verified, so that the next run need not hash it again.
const sidecarExt = ".sha256"

// sidecar is the content of NAME.sha256: the digest, and the size and
// modification time the file had when it was hashed.
type sidecar struct {
	SHA256  string `json:"sha256"`
	Size    int64  `json:"size"`
	ModTime int64  `json:"mtime_ns"`
}

// HashFile returns the hex SHA-256 and the size of the file at path.
func HashFile(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	sum, n, err := hashReader(f)
	if err != nil {
		return "", 0, fmt.Errorf("hash %s: %w", path, err)
	}
	return sum, n, nil
}

func hashReader(r io.Reader) (string, int64, error) {
	h := sha256.New()
	n, err := io.CopyBuffer(h, r, make([]byte, 1<<20))
	if err != nil {
		return "", n, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// VerifyFile hashes the file at path and returns nil when it has the given
// size and SHA-256, a *MismatchError (errors.Is ErrMismatch) when it has
// not, or the error that prevented reading it (errors.Is fs.ErrNotExist
// when it is missing).
func VerifyFile(path string, size int64, sha string) error {
	got, n, err := HashFile(path)
	if err != nil {
		return err
	}
	if n != size || got != strings.ToLower(sha) {
		return &MismatchError{Path: path, WantSize: size, GotSize: n, WantSHA256: strings.ToLower(sha), GotSHA256: got}
	}
	return nil
}

// VerifyCached is VerifyFile with a fast path: when PATH.sha256, written by
// an earlier successful check, records the same digest and the file still
// has the size and modification time recorded there, the file is trusted
// without reading it. Otherwise the file is hashed, and on success the
// sidecar is (re)written, best effort (a read-only cache still works).
func VerifyCached(path string, size int64, sha string) error {
	sha = strings.ToLower(sha)
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	if sc, ok := readSidecar(path); ok && sc.SHA256 == sha && sc.Size == size &&
		st.Size() == size && st.ModTime().UnixNano() == sc.ModTime {
		return nil
	}
	if err := VerifyFile(path, size, sha); err != nil {
		return err
	}
	writeSidecar(path, sha)
	return nil
}

func readSidecar(path string) (sidecar, bool) {
	var sc sidecar
	b, err := os.ReadFile(path + sidecarExt)
	if err != nil || json.Unmarshal(b, &sc) != nil {
		return sc, false
	}
	return sc, true
}

// writeSidecar records the current size and mtime of path with its digest.
// Errors are ignored: the sidecar only saves time.
func writeSidecar(path, sha string) {
	st, err := os.Stat(path)
	if err != nil {
		return
	}
	b, _ := json.Marshal(sidecar{SHA256: sha, Size: st.Size(), ModTime: st.ModTime().UnixNano()})
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+sidecarExt+".*.tmp")
	if err != nil {
		return
	}
	_, err = tmp.Write(append(b, '\n'))
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path+sidecarExt)
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
}

// HashFileCached is HashFile with the sidecar's fast path: a file whose size
// and modification time match its PATH.sha256 is not read again. Use it for
// files the program wrote or verified itself (generated models).
func HashFileCached(path string) (string, int64, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", 0, err
	}
	if sc, ok := readSidecar(path); ok && isSHA256(sc.SHA256) && sc.Size == st.Size() && st.ModTime().UnixNano() == sc.ModTime {
		return sc.SHA256, sc.Size, nil
	}
	sha, n, err := HashFile(path)
	if err != nil {
		return "", 0, err
	}
	writeSidecar(path, sha)
	return sha, n, nil
}
