package keras

/*
#cgo pkg-config: hdf5
#include <stdlib.h>
#include <string.h>
#include <hdf5.h>

// HDF5's automatic error printing is per thread in a thread-safe build:
// silence it at every entry, the messages are collected by h5x_error.
static void h5x_quiet(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

static herr_t h5x_walk(unsigned n, const H5E_error2_t *e, void *data) {
	char *buf = (char *)data;
	if (n == 0 && e->desc != NULL) {
		strncpy(buf, e->desc, 255);
		buf[255] = 0;
	}
	return 0;
}

// h5x_error copies the innermost message of the current error stack.
static void h5x_error(char *buf) {
	buf[0] = 0;
	H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, h5x_walk, buf);
	H5Eclear2(H5E_DEFAULT);
}

static int h5x_is_hdf5(const char *path) { h5x_quiet(); return H5Fis_hdf5(path); }

static hid_t h5x_open(const char *path) { h5x_quiet(); return H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT); }

static hid_t h5x_create(const char *path) { h5x_quiet(); return H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT); }

static herr_t h5x_close_file(hid_t f) { return H5Fclose(f); }

static int h5x_exists(hid_t loc, const char *name) { h5x_quiet(); return H5Lexists(loc, name, H5P_DEFAULT) > 0; }

static hid_t h5x_open_group(hid_t loc, const char *name) { h5x_quiet(); return H5Gopen2(loc, name, H5P_DEFAULT); }

static herr_t h5x_close_group(hid_t g) { return H5Gclose(g); }

static hid_t h5x_create_group(hid_t loc, const char *name) {
	h5x_quiet();
	hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
	H5Pset_create_intermediate_group(lcpl, 1);
	hid_t g = H5Gcreate2(loc, name, lcpl, H5P_DEFAULT, H5P_DEFAULT);
	H5Pclose(lcpl);
	return g;
}

static int h5x_attr_exists(hid_t loc, const char *name) { h5x_quiet(); return H5Aexists(loc, name) > 0; }

// h5x_read_strings reads a string attribute (scalar or 1-D, fixed or
// variable length) into *out: n strings of *width bytes each (NUL padded).
// The caller frees *out. Returns n, or -1 on error, -2 when the attribute
// is not a string.
static long h5x_read_strings(hid_t loc, const char *name, char **out, size_t *width) {
	h5x_quiet();
	*out = NULL;
	hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
	if (a < 0) return -1;
	hid_t ft = H5Aget_type(a);
	hid_t sp = H5Aget_space(a);
	long ret = -1;
	hssize_t n = H5Sget_simple_extent_npoints(sp);
	if (H5Tget_class(ft) != H5T_STRING) {
		ret = n == 0 ? 0 : -2; // h5py writes an empty list as an empty float array
	} else if (n >= 0 && H5Tis_variable_str(ft) > 0) {
		hid_t mt = H5Tcopy(H5T_C_S1);
		H5Tset_size(mt, H5T_VARIABLE);
		H5Tset_cset(mt, H5Tget_cset(ft));
		char **v = (char **)calloc(n > 0 ? n : 1, sizeof(char *));
		if (H5Aread(a, mt, v) >= 0) {
			size_t w = 1;
			for (hssize_t i = 0; i < n; i++) if (v[i] && strlen(v[i]) + 1 > w) w = strlen(v[i]) + 1;
			char *buf = (char *)calloc(n > 0 ? n : 1, w);
			for (hssize_t i = 0; i < n; i++) if (v[i]) memcpy(buf + i * w, v[i], strlen(v[i]));
			H5Dvlen_reclaim(mt, sp, H5P_DEFAULT, v);
			*out = buf;
			*width = w;
			ret = (long)n;
		}
		free(v);
		H5Tclose(mt);
	} else if (n >= 0) {
		size_t w = H5Tget_size(ft);
		hid_t mt = H5Tcopy(H5T_C_S1);
		H5Tset_size(mt, w);
		H5Tset_strpad(mt, H5T_STR_NULLPAD);
		char *buf = (char *)calloc(n > 0 ? n : 1, w);
		if (H5Aread(a, mt, buf) >= 0) {
			*out = buf;
			*width = w;
			ret = (long)n;
		} else {
			free(buf);
		}
		H5Tclose(mt);
	}
	H5Sclose(sp);
	H5Tclose(ft);
	H5Aclose(a);
	return ret;
}

// h5x_write_strings writes n fixed-length NUL-padded strings of width bytes
// as an attribute, the way h5py stores a numpy array of bytes (scalar when
// scalar is set).
static herr_t h5x_write_strings(hid_t loc, const char *name, const char *buf, size_t n, size_t width, int scalar) {
	h5x_quiet();
	hid_t t = H5Tcopy(H5T_C_S1);
	H5Tset_size(t, width > 0 ? width : 1);
	H5Tset_strpad(t, H5T_STR_NULLPAD);
	hsize_t dims[1] = {n};
	hid_t sp = scalar ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, dims, NULL);
	hid_t a = H5Acreate2(loc, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
	herr_t r = -1;
	if (a >= 0) {
		r = H5Awrite(a, t, buf);
		H5Aclose(a);
	}
	H5Sclose(sp);
	H5Tclose(t);
	return r;
}

// h5x_dataset_info opens a dataset and reports its rank, dims (up to 8)
// and whether it holds floating-point numbers. Returns the dataset id.
static hid_t h5x_dataset_info(hid_t loc, const char *name, int *rank, hsize_t *dims, int *isfloat) {
	h5x_quiet();
	hid_t d = H5Dopen2(loc, name, H5P_DEFAULT);
	if (d < 0) return d;
	hid_t sp = H5Dget_space(d);
	*rank = H5Sget_simple_extent_ndims(sp);
	if (*rank > 8) *rank = -1;
	else if (*rank > 0) H5Sget_simple_extent_dims(sp, dims, NULL);
	H5Sclose(sp);
	hid_t t = H5Dget_type(d);
	*isfloat = H5Tget_class(t) == H5T_FLOAT;
	H5Tclose(t);
	return d;
}

static herr_t h5x_read_float(hid_t d, float *buf) {
	h5x_quiet();
	return H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
}

static herr_t h5x_close_dataset(hid_t d) { return H5Dclose(d); }

static herr_t h5x_write_float(hid_t loc, const char *name, int rank, const hsize_t *dims, const float *buf) {
	h5x_quiet();
	hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
	H5Pset_create_intermediate_group(lcpl, 1);
	hid_t sp = rank == 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(rank, dims, NULL);
	hid_t d = H5Dcreate2(loc, name, H5T_IEEE_F32LE, sp, lcpl, H5P_DEFAULT, H5P_DEFAULT);
	herr_t r = -1;
	if (d >= 0) {
		r = H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
		H5Dclose(d);
	}
	H5Sclose(sp);
	H5Pclose(lcpl);
	return r;
}
*/
import "C"

import (
	"pipeline/errclass"

	"errors"
	"fmt"
	"strings"
	"sync"
	"unsafe"
)

// hdf5Mu serialises every call into libhdf5: Debian's build is thread-safe,
// but the error stack we read after a failure is only ours under a lock.
var hdf5Mu sync.Mutex

// ErrNotHDF5: the file is not an HDF5 file at all.
var ErrNotHDF5 = errclass.New(errclass.Usage, "not an HDF5 file")

func hdf5Error(what string) error {
	var buf [256]C.char
	C.h5x_error(&buf[0])
	msg := C.GoString(&buf[0])
	if msg == "" {
		return errors.New(what)
	}
	return fmt.Errorf("%s: %s", what, msg)
}

// h5File is an open HDF5 file (read or write). Methods are not safe for
// concurrent use; every call holds hdf5Mu.
type h5File struct {
	id   C.hid_t
	path string
}

func cstr(s string) (*C.char, func()) {
	c := C.CString(s)
	return c, func() { C.free(unsafe.Pointer(c)) }
}

// openHDF5 opens path read-only. A file without the HDF5 signature is
// ErrNotHDF5; a damaged one (truncated, say) is the library's message.
func openHDF5(path string) (*h5File, error) {
	hdf5Mu.Lock()
	defer hdf5Mu.Unlock()
	p, free := cstr(path)
	defer free()
	switch C.h5x_is_hdf5(p) {
	case 0:
		return nil, ErrNotHDF5
	case 1:
	default:
		return nil, hdf5Error("open")
	}
	id := C.h5x_open(p)
	if id < 0 {
		return nil, hdf5Error("open HDF5")
	}
	return &h5File{id: id, path: path}, nil
}

func createHDF5(path string) (*h5File, error) {
	hdf5Mu.Lock()
	defer hdf5Mu.Unlock()
	p, free := cstr(path)
	defer free()
	id := C.h5x_create(p)
	if id < 0 {
		return nil, hdf5Error("create HDF5 " + path)
	}
	return &h5File{id: id, path: path}, nil
}

func (f *h5File) Close() error {
	if f == nil || f.id < 0 {
		return nil
	}
	hdf5Mu.Lock()
	defer hdf5Mu.Unlock()
	r := C.h5x_close_file(f.id)
	f.id = -1
	if r < 0 {
		return hdf5Error("close " + f.path)
	}
	return nil
}

// h5Group is a group of an open file (the root is group "/").
type h5Group struct {
	id   C.hid_t
	name string
}

func (f *h5File) group(name string) (*h5Group, error) {
	hdf5Mu.Lock()
	defer hdf5Mu.Unlock()
	n, free := cstr(name)
	defer free()
	id := C.h5x_open_group(f.id, n)
	if id < 0 {
		return nil, hdf5Error("group " + name)
	}
	return &h5Group{id: id, name: name}, nil
}

func (f *h5File) createGroup(name string) (*h5Group, error) {
	hdf5Mu.Lock()
	defer hdf5Mu.Unlock()
	n, free := cstr(name)
	defer free()
	id := C.h5x_create_group(f.id, n)
	if id < 0 {
		return nil, hdf5Error("create group " + name)
	}
	return &h5Group{id: id, name: name}, nil
}

func (g *h5Group) Close() {
	if g == nil || g.id < 0 {
		return
	}
	hdf5Mu.Lock()
	defer hdf5Mu.Unlock()
	C.h5x_close_group(g.id)
	g.id = -1
}

// exists reports whether a link (group or dataset) of that path exists.
func (g *h5Group) exists(name string) bool {
	hdf5Mu.Lock()
	defer hdf5Mu.Unlock()
	// H5Lexists fails on a path whose intermediate link is missing: check
	// each prefix.
	parts := strings.Split(name, "/")
	for i := range parts {
		n, free := cstr(strings.Join(parts[:i+1], "/"))
		ok := C.h5x_exists(g.id, n) != 0
		free()
		if !ok {
			return false
		}
	}
	return true
}

func (g *h5Group) hasAttr(name string) bool {
	hdf5Mu.Lock()
	defer hdf5Mu.Unlock()
	n, free := cstr(name)
	defer free()
	return C.h5x_attr_exists(g.id, n) != 0
}

// strings reads a string attribute (a scalar gives one string).
func (g *h5Group) strings(name string) ([]string, error) {
	hdf5Mu.Lock()
	defer hdf5Mu.Unlock()
	n, free := cstr(name)
	defer free()
	var buf *C.char
	var width C.size_t
	count := C.h5x_read_strings(g.id, n, &buf, &width)
	if buf != nil {
		defer C.free(unsafe.Pointer(buf))
	}
	switch {
	case count == -2:
		return nil, fmt.Errorf("attribute %s of %s is not a string", name, g.name)
	case count < 0:
		return nil, hdf5Error(fmt.Sprintf("attribute %s of %s", name, g.name))
	}
	raw := C.GoBytes(unsafe.Pointer(buf), C.int(int(count)*int(width)))
	out := make([]string, int(count))
	for i := range out {
		s := raw[i*int(width) : (i+1)*int(width)]
		if j := strings.IndexByte(string(s), 0); j >= 0 {
			s = s[:j]
		}
		out[i] = string(s)
	}
	return out, nil
}

// writeStrings writes a string-array attribute (fixed length, NUL padded,
// as h5py writes numpy bytes); scalar writes one string as a scalar.
func (g *h5Group) writeStrings(name string, vals []string, scalar bool) error {
	width := 1
	for _, v := range vals {
		width = max(width, len(v))
	}
	buf := make([]byte, max(1, len(vals))*width)
	for i, v := range vals {
		copy(buf[i*width:], v)
	}
	hdf5Mu.Lock()
	defer hdf5Mu.Unlock()
	n, free := cstr(name)
	defer free()
	sc := C.int(0)
	if scalar {
		sc = 1
	}
	if C.h5x_write_strings(g.id, n, (*C.char)(unsafe.Pointer(&buf[0])), C.size_t(len(vals)), C.size_t(width), sc) < 0 {
		return hdf5Error(fmt.Sprintf("write attribute %s of %s", name, g.name))
	}
	return nil
}

// dataset reads a floating-point dataset (any precision) as float32 with
// its shape. maxValues bounds what a corrupt header can make us allocate.
func (g *h5Group) dataset(name string, maxValues int) ([]float32, []int, error) {
	hdf5Mu.Lock()
	defer hdf5Mu.Unlock()
	n, free := cstr(name)
	defer free()
	var rank, isFloat C.int
	var dims [8]C.hsize_t
	d := C.h5x_dataset_info(g.id, n, &rank, &dims[0], &isFloat)
	if d < 0 {
		return nil, nil, hdf5Error("dataset " + name)
	}
	defer C.h5x_close_dataset(d)
	if rank < 0 {
		return nil, nil, fmt.Errorf("dataset %s: more than 8 dimensions", name)
	}
	if isFloat == 0 {
		return nil, nil, fmt.Errorf("dataset %s: not floating-point numbers", name)
	}
	shape := make([]int, int(rank))
	total := 1
	for i := range shape {
		shape[i] = int(dims[i])
		if shape[i] > maxValues || total*max(shape[i], 1) > maxValues {
			return nil, nil, fmt.Errorf("dataset %s: shape %v is implausibly large", name, dims[:rank])
		}
		total *= shape[i]
	}
	data := make([]float32, total)
	if total == 0 {
		return data, shape, nil
	}
	if C.h5x_read_float(d, (*C.float)(unsafe.Pointer(&data[0]))) < 0 {
		return nil, nil, hdf5Error("read dataset " + name)
	}
	return data, shape, nil
}

// writeDataset writes float32 data of the given shape as a little-endian
// float32 dataset, creating intermediate groups of a nested name.
func (g *h5Group) writeDataset(name string, shape []int, data []float32) error {
	total := 1
	for _, s := range shape {
		total *= s
	}
	if total != len(data) || len(shape) > 8 {
		return fmt.Errorf("write dataset %s: %d values for shape %v", name, len(data), shape)
	}
	hdf5Mu.Lock()
	defer hdf5Mu.Unlock()
	n, free := cstr(name)
	defer free()
	var dims [8]C.hsize_t
	for i, s := range shape {
		dims[i] = C.hsize_t(s)
	}
	var p *C.float
	if len(data) > 0 {
		p = (*C.float)(unsafe.Pointer(&data[0]))
	} else {
		var zero C.float
		p = &zero
	}
	if C.h5x_write_float(g.id, n, C.int(len(shape)), &dims[0], p) < 0 {
		return hdf5Error(fmt.Sprintf("write dataset %s in %s", name, g.name))
	}
	return nil
}
