package fetch

import (
	"crypto/md5"
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
	MD5     string `json:"md5,omitempty"` // written when an MD5 identity was checked
	Size    int64  `json:"size"`
	ModTime int64  `json:"mtime_ns"`
}

// ID is what identifies a file: its size (0: unknown) and digests. A
// SHA-256 is the project's identity; some upstreams publish only an MD5
// (Keras's get_file), which is then checked instead, and the SHA-256 of
// the file that passed is recorded in the sidecar.
type ID struct {
	Size   int64
	SHA256 string // hex, either case; "" when only the MD5 is known
	MD5    string // hex, either case; optional
}

func (id ID) normal() ID {
	id.SHA256, id.MD5 = strings.ToLower(id.SHA256), strings.ToLower(id.MD5)
	return id
}

// Validate checks that there is a digest to verify against.
func (id ID) Validate() error {
	switch {
	case id.Size < 0:
		return fmt.Errorf("size %d must not be negative", id.Size)
	case id.SHA256 != "" && !isSHA256(id.SHA256):
		return fmt.Errorf("sha256 %q is not 64 hex digits", id.SHA256)
	case id.MD5 != "" && !isHex(id.MD5, 32):
		return fmt.Errorf("md5 %q is not 32 hex digits", id.MD5)
	case id.SHA256 == "" && id.MD5 == "":
		return fmt.Errorf("neither a sha256 nor an md5 to verify the file against")
	}
	return nil
}

// Digests are a file's size, SHA-256 and MD5.
type Digests struct {
	Size        int64
	SHA256, MD5 string
}

// matches reports whether d has the identity id (after normal()).
func (d Digests) matches(id ID) bool {
	return (id.Size == 0 || d.Size == id.Size) && (id.SHA256 == "" || d.SHA256 == id.SHA256) && (id.MD5 == "" || d.MD5 == id.MD5)
}

func (d Digests) mismatch(path string, id ID) *MismatchError {
	return &MismatchError{Path: path, WantSize: id.Size, GotSize: d.Size, WantSHA256: id.SHA256, GotSHA256: d.SHA256,
		WantMD5: id.MD5, GotMD5: d.MD5}
}

// HashFileDigests reads the file once for its SHA-256 and MD5.
func HashFileDigests(path string) (Digests, error) {
	f, err := os.Open(path)
	if err != nil {
		return Digests{}, err
	}
	defer f.Close()
	d, err := digestReader(f)
	if err != nil {
		return Digests{}, fmt.Errorf("hash %s: %w", path, err)
	}
	return d, nil
}

func digestReader(r io.Reader) (Digests, error) {
	s, m := sha256.New(), md5.New()
	n, err := io.CopyBuffer(io.MultiWriter(s, m), r, make([]byte, 1<<20))
	if err != nil {
		return Digests{}, err
	}
	return Digests{Size: n, SHA256: hex.EncodeToString(s.Sum(nil)), MD5: hex.EncodeToString(m.Sum(nil))}, nil
}

// VerifyCachedID is VerifyCached for an identity that may be an MD5 only:
// it returns the file's SHA-256 (from the sidecar when size, mtime and the
// recorded digests match, else by hashing the file, which then writes the
// sidecar with both digests). A mismatch is a *MismatchError.
func VerifyCachedID(path string, id ID) (string, error) {
	id = id.normal()
	if err := id.Validate(); err != nil {
		return "", fmt.Errorf("verify %s: %w", path, err)
	}
	st, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	if sc, ok := readSidecar(path); ok && isSHA256(sc.SHA256) && sc.Size == st.Size() && st.ModTime().UnixNano() == sc.ModTime &&
		(Digests{Size: sc.Size, SHA256: sc.SHA256, MD5: sc.MD5}).matches(id) && (id.MD5 == "" || sc.MD5 != "") {
		return sc.SHA256, nil
	}
	d, err := HashFileDigests(path)
	if err != nil {
		return "", err
	}
	if !d.matches(id) {
		return "", d.mismatch(path, id)
	}
	writeSidecarDigests(path, d)
	return d.SHA256, nil
}

// RecordedSHA256 returns the SHA-256 the sidecar recorded for an
// unchanged file (same size and mtime), or "".
func RecordedSHA256(path string) string {
	st, err := os.Stat(path)
	if err != nil {
		return ""
	}
	if sc, ok := readSidecar(path); ok && isSHA256(sc.SHA256) && sc.Size == st.Size() && st.ModTime().UnixNano() == sc.ModTime {
		return sc.SHA256
	}
	return ""
}

func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
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
	writeSidecarDigests(path, Digests{SHA256: sha})
}

// writeSidecarDigests is writeSidecar recording the MD5 too, when known.
func writeSidecarDigests(path string, d Digests) {
	st, err := os.Stat(path)
	if err != nil {
		return
	}
	b, _ := json.Marshal(sidecar{SHA256: d.SHA256, MD5: d.MD5, Size: st.Size(), ModTime: st.ModTime().UnixNano()})
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
