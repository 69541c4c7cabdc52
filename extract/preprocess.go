package extract

import (
	"pipeline/errclass"

	"encoding/json"
	"fmt"
	"image"
	"sort"
	"strconv"
	"strings"

	"gocv.io/x/gocv"
)

// Preprocess says how a decoded 8-bit BGR image becomes the network's input
// blob. For each output channel c (in the network's channel order):
//
//	out[c][y][x] = (pixel[c][y][x]*Scale - Mean[c]) / Std[c]
//
// where pixel is the resized (and cropped) image, in BGR order, or RGB when
// SwapRB is set. Mean and Std are in scaled units and in the network's order.
type Preprocess struct {
	Preset string     `json:"preset,omitempty"` // the preset this started from (informative)
	Width  int        `json:"width"`            // network input width
	Height int        `json:"height"`           // network input height
	Resize Resize     `json:"resize"`           // how the image is brought to Width x Height
	Interp Interp     `json:"interp"`           // interpolation used by the resize
	SwapRB bool       `json:"swap_rb"`          // true: network wants RGB
	Scale  float64    `json:"scale"`            // multiplies the 0..255 pixel values first
	Mean   [3]float64 `json:"mean"`             // subtracted after scaling
	Std    [3]float64 `json:"std"`              // divides last
	// IgnoreOrientation decodes the pixels as stored, without applying
	// the EXIF orientation (Keras's load_img: Pillow does not rotate).
	IgnoreOrientation bool `json:"ignore_orientation,omitempty"`
}

// Resize is a resize policy: Shorter == 0 means stretch to the input size
// (Keras load_img(target_size=...)); Shorter > 0 means resize so that the
// shorter side is Shorter pixels (aspect kept, torchvision rounding), then
// crop the centre to the input size (ONNX model zoo, torchvision).
type Resize struct {
	Shorter int `json:"shorter,omitempty"`
}

func (r Resize) String() string {
	if r.Shorter == 0 {
		return "stretch"
	}
	return "shorter:" + strconv.Itoa(r.Shorter)
}

// ParseResize reads "stretch" or "shorter:N" (also "shorter=N", or just "N").
func ParseResize(s string) (Resize, error) {
	s = strings.TrimSpace(strings.ToLower(s))
	if s == "stretch" {
		return Resize{}, nil
	}
	v := strings.TrimPrefix(strings.TrimPrefix(s, "shorter:"), "shorter=")
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return Resize{}, fmt.Errorf("resize %q: want stretch or shorter:N (e.g. shorter:256)", s)
	}
	return Resize{Shorter: n}, nil
}

// MarshalText / UnmarshalText make Resize read and write as its string form.
func (r Resize) MarshalText() ([]byte, error) { return []byte(r.String()), nil }
func (r *Resize) UnmarshalText(b []byte) error {
	v, err := ParseResize(string(b))
	*r = v
	return err
}

// Interp is the interpolation of the resize.
type Interp string

const (
	// Bilinear is OpenCV INTER_LINEAR (the default).
	Bilinear Interp = "bilinear"
	// Nearest picks the source pixel PIL's NEAREST picks (Keras load_img's
	// default): floor((x+0.5)*W/w). OpenCV's INTER_NEAREST and even
	// INTER_NEAREST_EXACT round exact ties down instead (on a 2x downscale
	// they pick pixels 0, 2, ... where PIL picks 1, 3, ...), so we do it
	// ourselves.
	Nearest Interp = "nearest"
	// Area is OpenCV INTER_AREA: closest to PIL's antialiased downscaling.
	Area Interp = "area"
	// Bicubic is OpenCV INTER_CUBIC.
	Bicubic Interp = "bicubic"
)

func (i Interp) flag() (gocv.InterpolationFlags, error) {
	switch i {
	case Bilinear, "":
		return gocv.InterpolationLinear, nil
	case Nearest:
		return gocv.InterpolationNearestNeighbor, nil // not used: see resizeNearestPIL
	case Area:
		return gocv.InterpolationArea, nil
	case Bicubic:
		return gocv.InterpolationCubic, nil
	}
	return 0, fmt.Errorf("interpolation %q: want bilinear, nearest, area or bicubic", string(i))
}

// Presets are the built-in preprocessing conventions, by name.
var Presets = map[string]Preprocess{
	// Keras vgg16/resnet50 preprocess_input and the Caffe originals:
	// BGR, ImageNet mean subtracted in 0..255 units, no scaling.
	"caffe": {Preset: "caffe", Width: 224, Height: 224, Interp: Bilinear,
		SwapRB: false, Scale: 1, Mean: [3]float64{103.939, 116.779, 123.68}, Std: [3]float64{1, 1, 1}},
	// torchvision and the ONNX model zoo: RGB in 0..1, ImageNet mean and std;
	// resize the shorter side to 256, centre-crop 224.
	"torch": {Preset: "torch", Width: 224, Height: 224, Resize: Resize{Shorter: 256}, Interp: Bilinear,
		SwapRB: true, Scale: 1.0 / 255, Mean: [3]float64{0.485, 0.456, 0.406}, Std: [3]float64{0.229, 0.224, 0.225}},
	// Keras's own pipeline, exactly: image.load_img(path, target_size=(224,
	// 224)) = Pillow decode, RGB, NEAREST resize to exactly 224x224 (no
	// aspect kept, no crop), no EXIF rotation; then preprocess_input in
	// caffe mode: BGR, minus the ImageNet mean.
	"keras": {Preset: "keras", Width: 224, Height: 224, Interp: Nearest,
		SwapRB: false, Scale: 1, Mean: [3]float64{103.939, 116.779, 123.68}, Std: [3]float64{1, 1, 1}, IgnoreOrientation: true},
	// Keras "tf" mode (Inception, MobileNet, ResNet50V2): RGB scaled to [-1, 1].
	"tf": {Preset: "tf", Width: 224, Height: 224, Interp: Bilinear,
		SwapRB: true, Scale: 1.0 / 127.5, Mean: [3]float64{1, 1, 1}, Std: [3]float64{1, 1, 1}},
}

// PresetNames lists the preset names in order.
func PresetNames() []string {
	var n []string
	for k := range Presets {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}

// Preset returns the named preset.
func PresetByName(name string) (Preprocess, error) {
	p, ok := Presets[name]
	if !ok {
		return Preprocess{}, fmt.Errorf("unknown preprocessing preset %q (have %s)", name, strings.Join(PresetNames(), ", "))
	}
	return p, nil
}

// Validate checks that the fields make sense.
func (p Preprocess) Validate() error {
	if p.Width <= 0 || p.Height <= 0 {
		return fmt.Errorf("preprocess: input size %dx%d must be positive", p.Width, p.Height)
	}
	if p.Scale == 0 {
		return fmt.Errorf("preprocess: scale must not be 0")
	}
	for c, s := range p.Std {
		if s == 0 {
			return fmt.Errorf("preprocess: std[%d] must not be 0", c)
		}
	}
	if p.Resize.Shorter > 0 && p.Resize.Shorter < min(p.Width, p.Height) {
		return fmt.Errorf("preprocess: resize shorter:%d is smaller than the %dx%d crop", p.Resize.Shorter, p.Width, p.Height)
	}
	if _, err := p.Interp.flag(); err != nil {
		return fmt.Errorf("preprocess: %w", err)
	}
	return nil
}

// Key is the canonical JSON form of p, the identity of a preprocessing in the
// feature_sets table: two Preprocess values with the same Key give the same
// blob from the same image. Preset is not part of it.
func (p Preprocess) Key() string {
	q := p
	q.Preset = ""
	if q.Interp == "" {
		q.Interp = Bilinear
	}
	b, err := json.Marshal(q)
	if err != nil {
		panic(err) // plain numbers and strings: cannot fail
	}
	return string(b)
}

func (p Preprocess) String() string {
	name := p.Preset
	if name == "" {
		name = "custom"
	}
	order := "BGR"
	if p.SwapRB {
		order = "RGB"
	}
	orient := ""
	if p.IgnoreOrientation {
		orient = ", EXIF orientation ignored"
	}
	return fmt.Sprintf("%s (%dx%d, %s, %s, %s, scale %s, mean %s, std %s%s)", name, p.Width, p.Height,
		p.Resize, p.Interp, order, fmtFloat(p.Scale), fmtTriple(p.Mean), fmtTriple(p.Std), orient)
}

func fmtFloat(f float64) string { return strconv.FormatFloat(f, 'g', 8, 64) }

func fmtTriple(t [3]float64) string {
	return "[" + fmtFloat(t[0]) + "," + fmtFloat(t[1]) + "," + fmtFloat(t[2]) + "]"
}

// ParseTriple reads "a,b,c" (or one number, used three times).
func ParseTriple(s string) ([3]float64, error) {
	var t [3]float64
	parts := strings.Split(strings.Trim(strings.TrimSpace(s), "[]"), ",")
	if len(parts) != 1 && len(parts) != 3 {
		return t, fmt.Errorf("%q: want one number or three, comma-separated", s)
	}
	for i := range t {
		v, err := strconv.ParseFloat(strings.TrimSpace(parts[i%len(parts)]), 64)
		if err != nil {
			return t, fmt.Errorf("%q: %w", s, err)
		}
		t[i] = v
	}
	return t, nil
}

// ParseScale reads a number or a fraction such as "1/255".
func ParseScale(s string) (float64, error) {
	s = strings.TrimSpace(s)
	if a, b, ok := strings.Cut(s, "/"); ok {
		x, err1 := strconv.ParseFloat(strings.TrimSpace(a), 64)
		y, err2 := strconv.ParseFloat(strings.TrimSpace(b), 64)
		if err1 != nil || err2 != nil || y == 0 {
			return 0, fmt.Errorf("scale %q: want a number or a fraction like 1/255", s)
		}
		return x / y, nil
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("scale %q: want a number or a fraction like 1/255", s)
	}
	return v, nil
}

// ParseSize reads "224" or "224x224" (width x height).
func ParseSize(s string) (w, h int, err error) {
	a, b, ok := strings.Cut(strings.ToLower(strings.TrimSpace(s)), "x")
	if !ok {
		b = a
	}
	w, err1 := strconv.Atoi(a)
	h, err2 := strconv.Atoi(b)
	if err1 != nil || err2 != nil || w <= 0 || h <= 0 {
		return 0, 0, fmt.Errorf("size %q: want N or WxH, e.g. 224 or 299x299", s)
	}
	return w, h, nil
}

// Overrides are user changes to a preset; empty strings leave a field alone.
type Overrides struct {
	Preset, Size, Mean, Std, Scale, SwapRB, Resize, Interp string
}

// Apply returns base with the overrides applied, validated.
func (o Overrides) Apply(base Preprocess) (Preprocess, error) {
	p := base
	if o.Preset != "" {
		q, err := PresetByName(o.Preset)
		if err != nil {
			return p, err
		}
		// A preset replaces the convention, not the input size of the model.
		q.Width, q.Height = p.Width, p.Height
		if q.Width == 0 {
			q.Width, q.Height = Presets[o.Preset].Width, Presets[o.Preset].Height
		}
		p = q
	}
	var err error
	if o.Size != "" {
		if p.Width, p.Height, err = ParseSize(o.Size); err != nil {
			return p, err
		}
	}
	if o.Mean != "" {
		if p.Mean, err = ParseTriple(o.Mean); err != nil {
			return p, fmt.Errorf("mean %w", err)
		}
	}
	if o.Std != "" {
		if p.Std, err = ParseTriple(o.Std); err != nil {
			return p, fmt.Errorf("std %w", err)
		}
	}
	if o.Scale != "" {
		if p.Scale, err = ParseScale(o.Scale); err != nil {
			return p, err
		}
	}
	if o.SwapRB != "" {
		if p.SwapRB, err = strconv.ParseBool(o.SwapRB); err != nil {
			return p, fmt.Errorf("swap-rb %q: want true or false", o.SwapRB)
		}
	}
	if o.Resize != "" {
		if p.Resize, err = ParseResize(o.Resize); err != nil {
			return p, err
		}
	}
	if o.Interp != "" {
		p.Interp = Interp(strings.ToLower(o.Interp))
	}
	if o != (Overrides{}) && o.Preset == "" && p.Preset != "" {
		p.Preset += "+overrides"
	}
	return p, p.Validate()
}

// resizeTarget returns the size the image is resized to before cropping,
// following torchvision's Resize(int) rounding for the shorter-side policy.
func (p Preprocess) resizeTarget(w, h int) (rw, rh int) {
	if p.Resize.Shorter == 0 {
		return p.Width, p.Height
	}
	s := p.Resize.Shorter
	if w <= h {
		return s, int(float64(s) * float64(h) / float64(w))
	}
	return int(float64(s) * float64(w) / float64(h)), s
}

// cropRect returns the centre crop of a rw x rh image to the input size,
// with torchvision's CenterCrop rounding.
func (p Preprocess) cropRect(rw, rh int) image.Rectangle {
	x := int(roundHalfEven(float64(rw-p.Width) / 2))
	y := int(roundHalfEven(float64(rh-p.Height) / 2))
	return image.Rect(x, y, x+p.Width, y+p.Height)
}

// roundHalfEven is Python 3's round(), which torchvision uses.
func roundHalfEven(v float64) float64 {
	t := float64(int64(v))
	d := v - t
	switch {
	case d > 0.5 || (d == 0.5 && int64(t)%2 != 0):
		return t + 1
	case d < -0.5 || (d == -0.5 && int64(t)%2 != 0):
		return t - 1
	}
	return t
}

// blobFromMat writes the preprocessed image into dst (3*Height*Width float32, CHW)
// from an 8-bit, 3-channel BGR image. The caller keeps ownership of img.
func (p Preprocess) blobFromMat(img gocv.Mat, dst []float32) error {
	if img.Empty() {
		return fmt.Errorf("preprocess: empty image")
	}
	if img.Type() != gocv.MatTypeCV8UC3 {
		return fmt.Errorf("preprocess: want an 8-bit 3-channel image, got type %v", img.Type())
	}
	n := p.Width * p.Height
	if len(dst) != 3*n {
		return fmt.Errorf("preprocess: destination holds %d values, want %d", len(dst), 3*n)
	}
	flag, err := p.Interp.flag()
	if err != nil {
		return err
	}
	rw, rh := p.resizeTarget(img.Cols(), img.Rows())
	src := img
	if rw != img.Cols() || rh != img.Rows() {
		var resized gocv.Mat
		if p.Interp == Nearest {
			if resized, err = resizeNearestPIL(img, rw, rh); err != nil {
				return err
			}
		} else {
			resized = gocv.NewMat()
			gocv.Resize(img, &resized, image.Pt(rw, rh), 0, 0, flag)
		}
		defer resized.Close()
		src = resized
	}
	if rw != p.Width || rh != p.Height {
		crop := src.Region(p.cropRect(rw, rh))
		defer crop.Close()
		cont := crop.Clone() // a region is not continuous; DataPtr needs it to be
		defer cont.Close()
		src = cont
	}
	pix, err := src.DataPtrUint8()
	if err != nil {
		return fmt.Errorf("preprocess: %w", err)
	}
	// A lookup table per channel: the exact value computed in float64,
	// rounded once to float32.
	var lut [3][256]float32
	for c := 0; c < 3; c++ {
		for v := 0; v < 256; v++ {
			lut[c][v] = float32((float64(v)*p.Scale - p.Mean[c]) / p.Std[c])
		}
	}
	// Source channel for output channel c: BGR in memory; swap gives RGB.
	srcC := [3]int{0, 1, 2}
	if p.SwapRB {
		srcC = [3]int{2, 1, 0}
	}
	for c := 0; c < 3; c++ {
		out := dst[c*n : (c+1)*n]
		l := &lut[c]
		sc := srcC[c]
		for i := range out {
			out[i] = l[pix[3*i+sc]]
		}
	}
	return nil
}

// resizeNearestPIL resizes an 8-bit 3-channel image the way PIL's NEAREST
// does: destination (x, y) takes source (int((x+0.5)*W/w), int((y+0.5)*H/h)).
func resizeNearestPIL(img gocv.Mat, w, h int) (gocv.Mat, error) {
	src := img
	if !img.IsContinuous() {
		src = img.Clone()
		defer src.Close()
	}
	pix, err := src.DataPtrUint8()
	if err != nil {
		return gocv.Mat{}, fmt.Errorf("preprocess: %w", err)
	}
	sw, sh := src.Cols(), src.Rows()
	sx := make([]int, w)
	for x := range sx {
		sx[x] = min(int((float64(x)+0.5)*(float64(sw)/float64(w))), sw-1)
	}
	out := make([]byte, 0, w*h*3)
	for y := 0; y < h; y++ {
		row := min(int((float64(y)+0.5)*(float64(sh)/float64(h))), sh-1) * sw * 3
		for _, x := range sx {
			out = append(out, pix[row+3*x], pix[row+3*x+1], pix[row+3*x+2])
		}
	}
	return gocv.NewMatFromBytes(h, w, gocv.MatTypeCV8UC3, out)
}

// FileBlob decodes an image file's bytes and preprocesses it into a new
// blob (3*Height*Width float32, CHW): what extraction feeds the network.
func (p Preprocess) FileBlob(data []byte, opt DecodeOptions) ([]float32, ImageInfo, error) {
	blob := make([]float32, p.BlobLen())
	info, err := p.DecodeInto(data, opt, blob)
	if err != nil {
		return nil, info, err
	}
	return blob, info, nil
}

// BlobLen is the length of one image's network input: 3*Height*Width.
func (p Preprocess) BlobLen() int { return 3 * p.Width * p.Height }

// DecodeInto decodes an image file's bytes and writes its network input
// into dst (BlobLen() float32, CHW). The decoded image never leaves the
// package: its Mat is closed before DecodeInto returns. Errors from
// decoding wrap the decode errors (ErrTooLarge for the size check); an
// error after decoding (preprocessing) is an ErrPreprocess.
func (p Preprocess) DecodeInto(data []byte, opt DecodeOptions, dst []float32) (ImageInfo, error) {
	opt.IgnoreOrientation = opt.IgnoreOrientation || p.IgnoreOrientation
	m, info, err := decodeMat(data, opt)
	if err != nil {
		return info, err
	}
	defer m.Close()
	if err := p.blobFromMat(m, dst); err != nil {
		return info, fmt.Errorf("%w: %w", ErrPreprocess, err)
	}
	return info, nil
}

// ErrPreprocess: a decoded image could not be turned into the network input.
var ErrPreprocess = errclass.New(errclass.Data, "preprocess")
