package pipeline

import (
	"bufio"
	"encoding/base64"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
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
		return st, fmt.Errorf("images %s: not a directory (use --list for a list of files)", root)
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
