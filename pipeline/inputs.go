package pipeline

import (
	"bufio"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"unicode/utf8"
)

// Input is one file to process.
type Input struct {
	Path    string // absolute, cleaned
	RelPath string // relative to the --images root, or as listed
	Label   string // "" = unlabeled
	Labeled bool
	// Split is the part of the train/test split the input asks for: "train",
	// "test", or "" (the automatic split decides). Set by a split-style
	// folder layout or extract --split; only labeled images get one.
	Split string
	// KeepLabel: the input says nothing about the label (predict's paths, a
	// plain --list): a path the database already knows keeps its label and
	// relative path instead of being marked unlabeled.
	KeepLabel bool
	// Invalid, for a --list line that could not be read, says why; Path is
	// then "LIST:LINE". Such an input becomes one failure (stage "list").
	Invalid string
}

// imageExts are the extensions --images picks up. GIF and HEIF are listed
// although OpenCV cannot decode them, so that such files get a clear failure
// rather than being skipped without a word.
var imageExts = map[string]bool{
	".jpg": true, ".jpeg": true, ".jpe": true, ".jfif": true, ".png": true, ".bmp": true, ".dib": true,
	".tif": true, ".tiff": true, ".webp": true, ".ppm": true, ".pgm": true, ".pbm": true, ".pnm": true,
	".pfm": true, ".pxm": true, ".jp2": true, ".exr": true, ".hdr": true, ".pic": true, ".sr": true,
	".ras": true, ".gif": true, ".heic": true, ".heif": true, ".avif": true,
}

// IsImageName reports whether a file name has an image extension.
func IsImageName(name string) bool {
	return imageExts[strings.ToLower(filepath.Ext(name))]
}

// WalkStats counts what a directory walk passed over.
type WalkStats struct {
	Layout     Layout          // how the first two folder levels were read
	Skipped    int             // non-image files (by extension) and hidden entries
	Loops      int             // directory symlinks that led back to a directory already walked
	Unreadable []UnreadableDir // directories that could not be listed
}

// UnreadableDir is a directory a walk could not list, and why.
type UnreadableDir struct {
	Path string
	Err  error
}

// WalkImages visits the image files under root in a deterministic order
// (names sorted byte-wise at each level, depth first). The first-level
// sub-folder is the label (Keras flow_from_directory); files directly in root
// are unlabeled. In the split layout (see DetectLayout) the first level is
// the split and the second the label, and files above the class folders are
// unlabeled. Hidden files and folders (leading '.') are skipped. Symbolic
// links are followed, but a directory already visited (same device and inode)
// is never entered twice, so symlink loops cannot hang the walk. fn may stop
// the walk by returning an error, which WalkImages returns.
func WalkImages(root string, fn func(Input) error) (WalkStats, error) {
	var st WalkStats
	abs, err := filepath.Abs(root)
	if err != nil {
		return st, fmt.Errorf("images %s: %w", root, err)
	}
	info, err := os.Stat(abs)
	if err != nil {
		return st, fmt.Errorf("images %s: %w", root, err)
	}
	if !info.IsDir() {
		return st, fmt.Errorf("images %s: %w", root, ErrNotDir)
	}
	if st.Layout, err = DetectLayout(abs); err != nil {
		return st, err
	}
	visited := map[[2]uint64]bool{}
	split := "" // the split folder being walked (split layout)
	depth := 0
	var walk func(dir, rel, label string, labeled bool) error
	walk = func(dir, rel, label string, labeled bool) error {
		fi, err := os.Stat(dir)
		if err != nil {
			st.Unreadable = append(st.Unreadable, UnreadableDir{dir, unwrapPathErr(err)})
			return nil
		}
		if id, ok := fileID(fi); ok {
			if visited[id] {
				st.Loops++
				return nil
			}
			visited[id] = true
		}
		entries, err := os.ReadDir(dir)
		if err != nil {
			st.Unreadable = append(st.Unreadable, UnreadableDir{dir, unwrapPathErr(err)})
			return nil
		}
		sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
		for _, e := range entries {
			name := e.Name()
			if strings.HasPrefix(name, ".") {
				st.Skipped++
				continue
			}
			p := filepath.Join(dir, name)
			r := name
			if rel != "" {
				r = rel + "/" + name
			}
			isDir := e.IsDir()
			if e.Type()&fs.ModeSymlink != 0 {
				ti, err := os.Stat(p)
				if err != nil {
					// A dangling link: report it as an input so that it
					// gets a failure row naming it.
					if IsImageName(name) {
						if err := fn(Input{Path: p, RelPath: r, Label: label, Labeled: labeled, Split: splitIf(split, labeled)}); err != nil {
							return err
						}
					} else {
						st.Skipped++
					}
					continue
				}
				isDir = ti.IsDir()
			}
			if isDir {
				l, lab := label, labeled
				switch {
				case st.Layout.Splits && depth == 0:
					split = st.Layout.Parts[name]
				case st.Layout.Splits && depth == 1, !st.Layout.Splits && depth == 0:
					l, lab = name, true
				}
				depth++
				err := walk(p, r, l, lab)
				depth--
				if err != nil {
					return err
				}
				continue
			}
			if !IsImageName(name) {
				st.Skipped++
				continue
			}
			if err := fn(Input{Path: p, RelPath: r, Label: label, Labeled: labeled, Split: splitIf(split, labeled)}); err != nil {
				return err
			}
		}
		return nil
	}
	return st, walk(abs, "", "", false)
}

func fileID(fi os.FileInfo) ([2]uint64, bool) {
	s, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return [2]uint64{}, false
	}
	return [2]uint64{uint64(s.Dev), uint64(s.Ino)}, true
}

// ReadList reads --list input: one path per line, or CSV with a
// "path,label" header (or any file named *.csv: path in the first column,
// label in the second). Blank lines and lines starting with '#' are
// ignored, and so is a UTF-8 byte order mark. Relative paths are taken
// relative to base (the list file's folder, or the working directory for
// stdin). A malformed line (an empty path, too many fields, a broken CSV
// quote) is passed to fn as an Input with Invalid set, and the rest of the
// list is read; only an I/O error (or a line over 1 MiB) stops it.
func ReadList(r io.Reader, name, base string, fn func(Input) error) error {
	br := bufio.NewReader(r)
	if bom, _ := br.Peek(3); string(bom) == "\ufeff" {
		br.Discard(3)
	}
	first, err := br.Peek(64)
	if err != nil && err != io.EOF && !errors.Is(err, bufio.ErrBufferFull) {
		return fmt.Errorf("list %s: %w", name, err)
	}
	firstLine := strings.ToLower(strings.TrimSpace(strings.SplitN(string(first), "\n", 2)[0]))
	isCSV := strings.HasSuffix(strings.ToLower(name), ".csv") || strings.HasPrefix(firstLine, "path,label")
	invalid := func(line int, why string) error {
		return fn(Input{Path: fmt.Sprintf("%s:%d", name, line), Invalid: fmt.Sprintf("list %s line %d: %s", name, line, why)})
	}
	emit := func(line int, path, label string, labeled bool) error {
		path = strings.TrimSpace(path)
		if path == "" {
			return invalid(line, "empty path")
		}
		abs := path
		if !filepath.IsAbs(abs) {
			abs = filepath.Join(base, abs)
		}
		return fn(Input{Path: filepath.Clean(abs), RelPath: path, Label: strings.TrimSpace(label),
			Labeled: labeled && strings.TrimSpace(label) != "", KeepLabel: !labeled})
	}
	if !isCSV {
		sc := bufio.NewScanner(br)
		sc.Buffer(make([]byte, 64*1024), 1<<20)
		line := 0
		for sc.Scan() {
			line++
			s := strings.TrimRight(sc.Text(), "\r")
			if strings.TrimSpace(s) == "" || strings.HasPrefix(s, "#") {
				continue
			}
			if err := emit(line, s, "", false); err != nil {
				return err
			}
		}
		if err := sc.Err(); err != nil {
			return fmt.Errorf("list %s: %w", name, err)
		}
		return nil
	}
	cr := csv.NewReader(br)
	cr.FieldsPerRecord = -1
	cr.Comment = '#'
	for n := 1; ; n++ {
		rec, err := cr.Read()
		if err == io.EOF {
			return nil
		}
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			if err := invalid(pe.StartLine, pe.Err.Error()); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("list %s: %w", name, err)
		}
		line, _ := cr.FieldPos(0)
		if n == 1 && len(rec) >= 1 && strings.EqualFold(strings.TrimSpace(rec[0]), "path") {
			continue // header
		}
		if len(rec) == 0 || (len(rec) == 1 && strings.TrimSpace(rec[0]) == "") {
			continue
		}
		if len(rec) > 2 {
			if err := invalid(line, fmt.Sprintf("%d fields, want path,label", len(rec))); err != nil {
				return err
			}
			continue
		}
		label := ""
		if len(rec) == 2 {
			label = rec[1]
		}
		if err := emit(line, rec[0], label, len(rec) == 2); err != nil {
			return err
		}
	}
}

// PathB64 is a path's bytes in base64 when they are not valid UTF-8 (JSON
// strings can only hold UTF-8: encoding/json replaces such bytes with
// U+FFFD), else "". JSON outputs carry it as path_b64 beside path, so that
// the file can still be found.
func PathB64(p string) string {
	if utf8.ValidString(p) {
		return ""
	}
	return base64.StdEncoding.EncodeToString([]byte(p))
}

// Shard selects the part of the inputs one of several workers takes: the
// inputs whose key hashes to Index, out of Count (0-based). The key is the
// input's RelPath (the path relative to the --images root, or the list
// entry as written), so every worker computes the same partition from the
// same inputs without talking to the others. The zero Shard takes all.
type Shard struct {
	Index, Count int
}

// All reports whether s takes every input.
func (s Shard) All() bool { return s.Count == 0 }

// String is "I/N", or "" for all inputs.
func (s Shard) String() string {
	if s.All() {
		return ""
	}
	return fmt.Sprintf("%d/%d", s.Index, s.Count)
}

// ShardOf is the shard of a key among n: the first 8 bytes of the key's
// SHA-256, big-endian, modulo n. (In Python: int.from_bytes(
// hashlib.sha256(key.encode()).digest()[:8], "big") % n.)
func ShardOf(key string, n int) int {
	sum := sha256.Sum256([]byte(key))
	return int(binary.BigEndian.Uint64(sum[:8]) % uint64(n))
}

// Takes reports whether the input belongs to s.
func (s Shard) Takes(in Input) bool {
	return s.All() || ShardOf(in.RelPath, s.Count) == s.Index
}

// Filter wraps emit so that only s's inputs reach it. The counting pass and
// the real walk both go through it, so progress totals are the shard's.
func (s Shard) Filter(emit func(Input) error) func(Input) error {
	if s.All() {
		return emit
	}
	return func(in Input) error {
		if !s.Takes(in) {
			return nil
		}
		return emit(in)
	}
}

// ParseShard reads "I/N" (0 <= I < N).
func ParseShard(v string) (Shard, error) {
	i, n, ok := strings.Cut(v, "/")
	si, err1 := strconv.Atoi(strings.TrimSpace(i))
	sn, err2 := strconv.Atoi(strings.TrimSpace(n))
	if !ok || err1 != nil || err2 != nil {
		return Shard{}, usagef("shard %q: want I/N, e.g. 0/4 (0-based)", v)
	}
	return newShard(si, sn, fmt.Sprintf("shard %q", v))
}

func newShard(i, n int, what string) (Shard, error) {
	if n < 1 {
		return Shard{}, usagef("%s: the number of shards must be at least 1, not %d", what, n)
	}
	if i < 0 || i >= n {
		return Shard{}, usagef("%s: shard %d is not in 0..%d (shards are numbered from 0)", what, i, n-1)
	}
	return Shard{Index: i, Count: n}, nil
}

// ShardFromEnv picks this worker's shard of n from the scheduler's
// environment: JOB_COMPLETION_INDEX (Kubernetes Indexed Job, 0-based), or
// SLURM_ARRAY_TASK_ID (Slurm job array; the index is (ID - MIN) / STEP with
// SLURM_ARRAY_TASK_MIN and SLURM_ARRAY_TASK_STEP, so arrays need not start at
// 0) whose SLURM_ARRAY_TASK_COUNT must be n. It returns the shard and a
// sentence saying where it came from.
func ShardFromEnv(n int, getenv func(string) string) (Shard, string, error) {
	num := func(name string) (int, bool, error) {
		v := strings.TrimSpace(getenv(name))
		if v == "" {
			return 0, false, nil
		}
		x, err := strconv.Atoi(v)
		if err != nil {
			return 0, true, usagef("environment %s=%q is not a number", name, v)
		}
		return x, true, nil
	}
	if k, ok, err := num("JOB_COMPLETION_INDEX"); err != nil {
		return Shard{}, "", err
	} else if ok {
		s, err := newShard(k, n, "JOB_COMPLETION_INDEX")
		return s, fmt.Sprintf("shard %d/%d from JOB_COMPLETION_INDEX=%d (Kubernetes Indexed Job)", k, n, k), err
	}
	id, ok, err := num("SLURM_ARRAY_TASK_ID")
	if err != nil {
		return Shard{}, "", err
	}
	if !ok {
		return Shard{}, "", usagef("%d shards asked for, but neither JOB_COMPLETION_INDEX (Kubernetes Indexed Job) nor SLURM_ARRAY_TASK_ID (Slurm job array) is set: give the shard explicitly as I/N", n)
	}
	lo, hasMin, err := num("SLURM_ARRAY_TASK_MIN")
	if err != nil {
		return Shard{}, "", err
	}
	step, hasStep, err := num("SLURM_ARRAY_TASK_STEP")
	if err != nil {
		return Shard{}, "", err
	}
	if !hasStep || step < 1 {
		step = 1
	}
	if !hasMin {
		lo = 0
	}
	if count, ok, err := num("SLURM_ARRAY_TASK_COUNT"); err != nil {
		return Shard{}, "", err
	} else if ok && count != n {
		return Shard{}, "", usagef("%d shards asked for, but the Slurm array has SLURM_ARRAY_TASK_COUNT=%d tasks: they must agree", n, count)
	}
	if (id-lo)%step != 0 {
		return Shard{}, "", usagef("SLURM_ARRAY_TASK_ID=%d is not MIN %d + k x STEP %d: a Slurm array given as a list cannot number shards; give the shard explicitly as I/N", id, lo, step)
	}
	k := (id - lo) / step
	s, err := newShard(k, n, fmt.Sprintf("SLURM_ARRAY_TASK_ID=%d (MIN %d, STEP %d)", id, lo, step))
	return s, fmt.Sprintf("shard %d/%d from SLURM_ARRAY_TASK_ID=%d (MIN %d, STEP %d)", k, n, id, lo, step), err
}

// ShardPath replaces {shard} in a database path by the shard's index,
// zero-padded to the width of N-1 (so that shard-*.db sorts in order).
// A path with {shard} and no shard is an error; a path without it is kept.
func ShardPath(path string, s Shard) (string, error) {
	if !strings.Contains(path, "{shard}") {
		return path, nil
	}
	if s.All() {
		return "", usagef("database %s contains {shard} but no shard is selected", path)
	}
	w := len(strconv.Itoa(s.Count - 1))
	return strings.ReplaceAll(path, "{shard}", fmt.Sprintf("%0*d", w, s.Index)), nil
}
