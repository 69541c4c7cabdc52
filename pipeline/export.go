package pipeline

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"pipeline/store"
)

// ExportOptions configure `pipeline export`.
type ExportOptions struct {
	DB     string
	Set    SetQuery
	Format string // libsvm, csv or npy
	Part   string // all, train or test
	// Unlabeled includes images without a label (csv and npy; libsvm rows
	// need a label and never include them).
	Unlabeled bool
	Out       io.Writer
	// Labels, for npy (which holds only the matrix): gets "row,path,label"
	// lines in the matrix's row order.
	Labels io.Writer
	// AllowNonFinite writes vectors holding NaN or Inf; without it Export
	// refuses them (store.ErrNonFinite) before writing anything.
	AllowNonFinite bool
}

// ExportSummary says what was written.
type ExportSummary struct {
	Set     store.FeatureSet `json:"feature_set"`
	Rows    int              `json:"rows"`
	Classes []string         `json:"classes"` // libsvm label i is Classes[i]
}

// Export writes the vectors of a feature set for other tools: libsvm
// (label index, then 1-based index:value pairs of the non-zero values),
// CSV (path, sha256, label, split, then one column per dimension) or a
// NumPy .npy float32 matrix. Values are written so that they read back as
// the same float32.
func Export(ctx context.Context, o ExportOptions) (ExportSummary, error) {
	var sum ExportSummary
	switch o.Format {
	case "libsvm", "csv", "npy":
	default:
		return sum, usagef("format %q: want libsvm, csv or npy", o.Format)
	}
	switch o.Part {
	case "", "all", store.PartTrain, store.PartTest:
	default:
		return sum, usagef("split %q: want all, train or test", o.Part)
	}
	db, err := store.Open(o.DB, store.Options{ReadOnly: true})
	if err != nil {
		return sum, err
	}
	defer db.Close()
	fs, err := ResolveFeatureSet(ctx, db, o.Set)
	if err != nil {
		return sum, err
	}
	sum.Set = fs
	keep := func(r store.VectorRow) bool {
		if r.Label == "" && (!o.Unlabeled || o.Format == "libsvm") {
			return false
		}
		return o.Part == "" || o.Part == "all" || r.Part == o.Part
	}
	// First pass: the classes and the row count (npy's header needs it).
	if sum.Rows, sum.Classes, err = exportScan(ctx, db, fs, keep, o.AllowNonFinite); err != nil {
		return sum, err
	}
	ew := newExportWriter(o, sum.Classes)
	if err := ew.header(fs.Dim, sum.Rows); err != nil {
		return sum, err
	}
	err = db.Vectors(ctx, fs.ID, func(r store.VectorRow) error {
		if !keep(r) {
			return nil
		}
		return ew.write(r)
	})
	if err != nil {
		return sum, err
	}
	return sum, ew.flush()
}

// exportScan counts the rows of fs that keep selects and lists their
// labels, sorted; a NaN or Inf among them fails unless allowNonFinite.
func exportScan(ctx context.Context, db *store.DB, fs store.FeatureSet, keep func(store.VectorRow) bool, allowNonFinite bool) (int, []string, error) {
	rows := 0
	labels := map[string]bool{}
	err := db.Vectors(ctx, fs.ID, func(r store.VectorRow) error {
		if keep(r) {
			if !allowNonFinite {
				for i, v := range r.Vector {
					if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
						return fmt.Errorf("export %s: %w: %s, value %d of %d is %v; nothing was written", fs, store.ErrNonFinite, r.Path, i, len(r.Vector), v)
					}
				}
			}
			rows++
			if r.Label != "" {
				labels[r.Label] = true
			}
		}
		return nil
	})
	if err != nil {
		return rows, nil, err
	}
	return rows, sortedKeys(labels), nil
}

// exportWriter writes the rows in one of Export's formats.
type exportWriter struct {
	format string
	w      *bufio.Writer
	cw     *csv.Writer    // csv
	index  map[string]int // libsvm: label -> class index
	labels io.Writer      // npy: the row,path,label lines
	row    int
	buf    []byte
}

func newExportWriter(o ExportOptions, classes []string) *exportWriter {
	ew := &exportWriter{format: o.Format, w: bufio.NewWriterSize(o.Out, 1<<20), index: classIndex(classes), labels: o.Labels, buf: make([]byte, 0, 64)}
	if o.Format == "csv" {
		ew.cw = csv.NewWriter(ew.w)
	}
	return ew
}

// header writes csv's column names or npy's header for rows x dim.
func (ew *exportWriter) header(dim, rows int) error {
	switch ew.format {
	case "csv":
		head := []string{"path", "sha256", "label", "split"}
		for i := 0; i < dim; i++ {
			head = append(head, "f"+strconv.Itoa(i))
		}
		return ew.cw.Write(head)
	case "npy":
		return writeNpyHeader(ew.w, rows, dim)
	}
	return nil
}

// write writes one row.
func (ew *exportWriter) write(r store.VectorRow) error {
	w := ew.w
	switch ew.format {
	case "libsvm":
		w.WriteString(strconv.Itoa(ew.index[r.Label]))
		for i, v := range r.Vector {
			if v == 0 {
				continue
			}
			buf := ew.buf[:0]
			buf = append(buf, ' ')
			buf = strconv.AppendInt(buf, int64(i+1), 10)
			buf = append(buf, ':')
			buf = strconv.AppendFloat(buf, float64(v), 'g', -1, 32)
			w.Write(buf)
			ew.buf = buf
		}
		w.WriteByte('\n')
	case "csv":
		rec := []string{r.Path, r.SHA256, r.Label, r.Part}
		for _, v := range r.Vector {
			rec = append(rec, strconv.FormatFloat(float64(v), 'g', -1, 32))
		}
		if err := ew.cw.Write(rec); err != nil {
			return err
		}
	case "npy":
		var b [4]byte
		for _, v := range r.Vector {
			binary.LittleEndian.PutUint32(b[:], math.Float32bits(v))
			w.Write(b[:])
		}
		if ew.labels != nil {
			fmt.Fprintf(ew.labels, "%d,%s,%s\n", ew.row, csvField(r.Path), csvField(r.Label))
		}
	}
	ew.row++
	return nil
}

// flush writes out what is buffered.
func (ew *exportWriter) flush() error {
	if ew.cw != nil {
		ew.cw.Flush()
		if err := ew.cw.Error(); err != nil {
			return err
		}
	}
	return ew.w.Flush()
}

func csvField(s string) string {
	if strings.ContainsAny(s, ",\"\n\r") {
		return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
	}
	return s
}

// writeNpyHeader writes a NumPy format 1.0 header for a C-order float32
// matrix of rows x cols.
func writeNpyHeader(w io.Writer, rows, cols int) error {
	dict := fmt.Sprintf("{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d), }", rows, cols)
	// magic(6) + version(2) + header length(2) + dict + padding + '\n' is a multiple of 64.
	total := 10 + len(dict) + 1
	pad := (64 - total%64) % 64
	header := dict + strings.Repeat(" ", pad) + "\n"
	if _, err := w.Write([]byte("\x93NUMPY\x01\x00")); err != nil {
		return err
	}
	if err := binary.Write(w, binary.LittleEndian, uint16(len(header))); err != nil {
		return err
	}
	_, err := io.WriteString(w, header)
	return err
}
