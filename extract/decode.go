package extract

import (
	"bytes"
	"fmt"
	"image"
	_ "image/jpeg" // header parsing only: pixels are decoded by OpenCV
	_ "image/png"
	"strconv"

	"gocv.io/x/gocv"
	_ "golang.org/x/image/bmp"
	_ "golang.org/x/image/tiff"
	_ "golang.org/x/image/webp"

	"pipeline/errclass"
)

// Errors for files that cannot become an input image. The messages carry
// the details; callers test the kind with errors.Is.
var (
	ErrEmptyFile   = errclass.New(errclass.Data, "empty file")
	ErrNotImage    = errclass.New(errclass.Data, "not an image")
	ErrUnsupported = errclass.New(errclass.Data, "unsupported image format")
	ErrCorrupt     = errclass.New(errclass.Data, "corrupt image")
	ErrTooLarge    = errclass.New(errclass.Data, "image too large")
)

// ImageInfo describes an image file.
type ImageInfo struct {
	Format string // jpeg, png, webp, bmp, tiff, pnm, jp2, exr, hdr, sunras, pfm
	Width  int    // of the decoded image, after EXIF orientation
	Height int
}

// Sniff names the container format from the first bytes, or "" if none is
// recognised. It recognises GIF too, which OpenCV cannot decode.
func Sniff(b []byte) string {
	has := func(p string) bool { return bytes.HasPrefix(b, []byte(p)) }
	switch {
	case has("\xff\xd8\xff"):
		return "jpeg"
	case has("\x89PNG\r\n\x1a\n"):
		return "png"
	case has("GIF87a"), has("GIF89a"):
		return "gif"
	case has("BM") && len(b) >= 26:
		return "bmp"
	case has("II*\x00"), has("MM\x00*"):
		return "tiff"
	case has("RIFF") && len(b) >= 12 && string(b[8:12]) == "WEBP":
		return "webp"
	case len(b) >= 2 && b[0] == 'P' && b[1] >= '1' && b[1] <= '7':
		return "pnm"
	case has("\x00\x00\x00\x0cjP  \r\n\x87\n"), has("\xff\x4f\xff\x51"):
		return "jp2"
	case has("\x76\x2f\x31\x01"):
		return "exr"
	case has("#?RADIANCE"), has("#?RGBE"):
		return "hdr"
	case has("\x59\xa6\x6a\x95"):
		return "sunras"
	case has("PF\n"), has("Pf\n"):
		return "pfm"
	case has("\x00\x00\x00") && len(b) >= 12 && string(b[4:8]) == "ftyp":
		return "heif" // HEIC/AVIF: OpenCV 4.6 cannot decode them
	}
	return ""
}

// headerSize reads the pixel size from the header without decoding pixels,
// for the formats Go can parse; ok is false for the others.
func headerSize(b []byte, format string) (w, h int, ok bool, err error) {
	switch format {
	case "jpeg", "png", "bmp", "tiff", "webp":
	default:
		return 0, 0, false, nil
	}
	cfg, _, err := image.DecodeConfig(bytes.NewReader(b))
	if err != nil {
		return 0, 0, false, fmt.Errorf("%w: %s header: %v", ErrCorrupt, format, err)
	}
	return cfg.Width, cfg.Height, true, nil
}

// DecodeOptions limit and shape decoding.
type DecodeOptions struct {
	// MaxPixels rejects images with more pixels (width*height); 0 = no limit.
	// It is checked from the header before decoding where the format allows.
	MaxPixels int64
	// Reduce decodes JPEGs at 1/2, 1/4 or 1/8 scale (libjpeg's DCT scaling)
	// when the image stays at least MinWidth x MinHeight: much faster for
	// large photos, at a small cost in fidelity.
	Reduce              bool
	MinWidth, MinHeight int
	// IgnoreOrientation keeps the pixels as stored, without the EXIF
	// rotation (Preprocess.IgnoreOrientation: Keras's load_img).
	IgnoreOrientation bool
}

// decodeMat turns the bytes of an image file into an 8-bit, 3-channel BGR Mat
// (EXIF orientation applied, grayscale expanded, alpha dropped, 16-bit scaled
// to 8-bit). The caller closes the Mat.
func decodeMat(b []byte, opt DecodeOptions) (gocv.Mat, ImageInfo, error) {
	info := ImageInfo{Format: Sniff(b)}
	if len(b) == 0 {
		return gocv.Mat{}, info, fmt.Errorf("%w (0 bytes)", ErrEmptyFile)
	}
	switch info.Format {
	case "":
		return gocv.Mat{}, info, fmt.Errorf("%w: no known image signature (starts with %s)", ErrNotImage, preview(b))
	case "gif":
		return gocv.Mat{}, info, fmt.Errorf("%w: GIF (OpenCV cannot decode GIF; convert it to PNG)", ErrUnsupported)
	case "heif":
		return gocv.Mat{}, info, fmt.Errorf("%w: HEIF/AVIF (OpenCV 4.6 cannot decode it; convert it to JPEG or PNG)", ErrUnsupported)
	}
	switch info.Format {
	case "jpeg":
		if err := checkJPEGComplete(b); err != nil {
			return gocv.Mat{}, info, err
		}

	case "png":
		if !bytes.Contains(b[max(0, len(b)-64):], []byte("IEND")) {
			return gocv.Mat{}, info, fmt.Errorf("%w: truncated PNG (no IEND chunk at the end)", ErrCorrupt)
		}
	}
	w, h, known, err := headerSize(b, info.Format)
	if err != nil {
		return gocv.Mat{}, info, err
	}
	if known {
		if err := checkPixels(w, h, opt.MaxPixels); err != nil {
			return gocv.Mat{}, info, err
		}
		if w == 0 || h == 0 {
			return gocv.Mat{}, info, fmt.Errorf("%w: %s header says %dx%d", ErrCorrupt, info.Format, w, h)
		}
	}
	if info.Format == "jpeg" {
		if err := jpegScan(b); err != nil {
			return gocv.Mat{}, info, fmt.Errorf("%w: libjpeg: %v", ErrCorrupt, err)
		}
	}
	if info.Format == "png" {
		clean, err := pngScan(b)
		if err != nil {
			return gocv.Mat{}, info, fmt.Errorf("%w: libpng: %v", ErrCorrupt, err)
		}
		b = clean
	}
	flags := gocv.IMReadColor
	if opt.Reduce && known && info.Format == "jpeg" {
		flags = reducedFlag(w, h, opt.MinWidth, opt.MinHeight)
	}
	if opt.IgnoreOrientation {
		flags |= imreadIgnoreOrientation
	}
	m, err := gocv.IMDecode(b, flags)
	if err != nil || m.Empty() {
		if err == nil {
			m.Close()
		}
		return gocv.Mat{}, info, fmt.Errorf("%w: OpenCV could not decode this %s data", ErrCorrupt, info.Format)
	}
	info.Width, info.Height = m.Cols(), m.Rows()
	if flags&^imreadIgnoreOrientation != gocv.IMReadColor {
		// Record the full size, not the reduced decode's.
		info.Width, info.Height = orientSize(w, h, m.Cols(), m.Rows())
	}
	if !known {
		if err := checkPixels(info.Width, info.Height, opt.MaxPixels); err != nil {
			m.Close()
			return gocv.Mat{}, info, err
		}
	}
	if m.Type() != gocv.MatTypeCV8UC3 {
		t := m.Type()
		m.Close()
		return gocv.Mat{}, info, fmt.Errorf("%w: OpenCV decoded %s to Mat type %v, want 8-bit BGR", ErrUnsupported, info.Format, t)
	}
	return m, info, nil
}

// imreadIgnoreOrientation is OpenCV's IMREAD_IGNORE_ORIENTATION, which
// gocv v0.31.0 does not name.
const imreadIgnoreOrientation gocv.IMReadFlag = 128

// orientSize returns the header size w x h in the orientation of the
// decoded (reduced) image rw x rh.
func orientSize(w, h, rw, rh int) (int, int) {
	if (w >= h) != (rw >= rh) && w != h {
		return h, w
	}
	return w, h
}

// reducedFlag picks the largest libjpeg DCT reduction that keeps the image
// at least minW x minH (in either orientation).
func reducedFlag(w, h, minW, minH int) gocv.IMReadFlag {
	short, long := min(w, h), max(w, h)
	needShort, needLong := min(minW, minH), max(minW, minH)
	for _, f := range []struct {
		k    int
		flag gocv.IMReadFlag
	}{{8, gocv.IMReadReducedColor8}, {4, gocv.IMReadReducedColor4}, {2, gocv.IMReadReducedColor2}} {
		if short/f.k >= needShort && long/f.k >= needLong {
			return f.flag
		}
	}
	return gocv.IMReadColor
}

func checkPixels(w, h int, maxPixels int64) error {
	if maxPixels > 0 && int64(w)*int64(h) > maxPixels {
		return fmt.Errorf("%w: %dx%d = %s pixels, over the limit of %s", ErrTooLarge, w, h,
			humanCount(int64(w)*int64(h)), humanCount(maxPixels))
	}
	return nil
}

func humanCount(n int64) string {
	switch {
	case n >= 1e9:
		return strconv.FormatFloat(float64(n)/1e9, 'f', 1, 64) + "G"
	case n >= 1e6:
		return strconv.FormatFloat(float64(n)/1e6, 'f', 1, 64) + "M"
	}
	return strconv.FormatInt(n, 10)
}

// checkJPEGComplete walks the JPEG markers to the first start-of-scan and
// checks that an end-of-image marker follows the scan data. libjpeg decodes
// a truncated file without an error (grey bottom rows), which would give
// wrong CNN codes silently. Markers inside the entropy-coded data are
// byte-stuffed, so an FFD9 there is the real end.
func checkJPEGComplete(b []byte) error {
	i := 2
	for i+4 <= len(b) {
		if b[i] != 0xff {
			return fmt.Errorf("%w: JPEG marker expected at byte %d", ErrCorrupt, i)
		}
		m := b[i+1]
		if m == 0xff { // fill byte
			i++
			continue
		}
		if m == 0xd8 || (m >= 0xd0 && m <= 0xd7) || m == 0x01 {
			i += 2
			continue
		}
		if m == 0xd9 {
			return fmt.Errorf("%w: JPEG ends before any image data", ErrCorrupt)
		}
		n := int(b[i+2])<<8 | int(b[i+3])
		if m == 0xda { // start of scan: the image data follows
			if bytes.Contains(b[i+2+n:], []byte{0xff, 0xd9}) {
				return nil
			}
			return fmt.Errorf("%w: truncated JPEG (no end-of-image marker after the image data)", ErrCorrupt)
		}
		i += 2 + n
	}
	return fmt.Errorf("%w: truncated JPEG (ends in its header)", ErrCorrupt)
}

// preview shows the first bytes of a file for an error message.
func preview(b []byte) string {
	n := min(len(b), 16)
	s := strconv.QuoteToASCII(string(b[:n]))
	if len(b) > n {
		s += "..."
	}
	return s
}
