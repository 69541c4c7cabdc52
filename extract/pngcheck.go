package extract

/*
#cgo LDFLAGS: -lpng16
#include <stdlib.h>
#include <string.h>
#include <setjmp.h>
#include <png.h>

// A scan's state: the first message that ends it, and the chunks whose
// harmless metadata warnings the decode must not see again.
struct pchk {
	jmp_buf jb;
	char msg[256];
	char drop[8][5];
	int ndrop;
	const unsigned char *buf;
	size_t len, off;
};

static void pchk_read(png_structp p, png_bytep out, size_t n) {
	struct pchk *s = (struct pchk *)png_get_io_ptr(p);
	if (n > s->len - s->off) {
		png_error(p, "file ends in the middle of a chunk");
	}
	memcpy(out, s->buf + s->off, n);
	s->off += n;
}

static void pchk_error(png_structp p, png_const_charp m) {
	struct pchk *s = (struct pchk *)png_get_error_ptr(p);
	snprintf(s->msg, sizeof s->msg, "%s", m);
	longjmp(s->jb, 1);
}

// pchk_benign: a warning about colour-space metadata of a well-formed
// chunk ("iCCP: known incorrect sRGB profile", the commonest libpng
// warning on real photos). OpenCV ignores these chunks, so the pixels are
// right; the chunk is dropped before OpenCV decodes the file, so that the
// warning is not printed again. A CRC error is damage, never benign.
static int pchk_benign(png_const_charp m) {
	static const char *chunks[] = {"iCCP: ", "sRGB: ", "cHRM: ", "gAMA: ", "sBIT: ", "tEXt: ", "zTXt: ", "iTXt: ", "tIME: ", "pHYs: ", "bKGD: ", NULL};
	if (strstr(m, "CRC") != NULL) {
		return 0;
	}
	for (int i = 0; chunks[i] != NULL; i++) {
		if (strncmp(m, chunks[i], 6) == 0) {
			return 1;
		}
	}
	return 0;
}

static void pchk_warning(png_structp p, png_const_charp m) {
	struct pchk *s = (struct pchk *)png_get_error_ptr(p);
	if (pchk_benign(m)) {
		if (s->ndrop < 8) {
			memcpy(s->drop[s->ndrop], m, 4);
			s->drop[s->ndrop][4] = 0;
			s->ndrop++;
		}
		return;
	}
	snprintf(s->msg, sizeof s->msg, "%s", m);
	longjmp(s->jb, 2);
}

// pchk_scan reads every row of every pass and the chunks after the image
// data (where zlib's check value and the trailing CRCs are verified), one
// row in memory. It returns 0, 1 on an error or 2 on a warning, with
// libpng's message in s->msg. Benign warnings are collected in s->drop.
static int pchk_scan(struct pchk *s) {
	png_structp p = png_create_read_struct(PNG_LIBPNG_VER_STRING, s, pchk_error, pchk_warning);
	if (p == NULL) {
		snprintf(s->msg, sizeof s->msg, "out of memory");
		return 1;
	}
	png_infop info = png_create_info_struct(p);
	png_infop end = png_create_info_struct(p);
	png_bytep volatile row = NULL;
	int rc = setjmp(s->jb);
	if (rc != 0) {
		free(row);
		png_destroy_read_struct(&p, &info, &end);
		return rc;
	}
	if (info == NULL || end == NULL) {
		png_error(p, "out of memory");
	}
	png_set_read_fn(p, s, pchk_read);
	png_read_info(p, info);
	int passes = png_set_interlace_handling(p);
	png_read_update_info(p, info);
	png_uint_32 h = png_get_image_height(p, info);
	row = malloc(png_get_rowbytes(p, info) + 1);
	if (row == NULL) {
		png_error(p, "out of memory");
	}
	for (int pass = 0; pass < passes; pass++) {
		for (png_uint_32 y = 0; y < h; y++) {
			png_read_row(p, row, NULL);
		}
	}
	png_read_end(p, end);
	free(row);
	png_destroy_read_struct(&p, &info, &end);
	return 0;
}
*/
import "C"

import (
	"encoding/binary"
	"errors"
	"slices"
	"unsafe"
)

// pngScan runs libpng over the whole file, as jpegScan does libjpeg: a
// libpng warning is the file's failure, with libpng's message. OpenCV's
// imdecode prints libpng's warnings on stderr ("libpng warning: IDAT:
// incorrect data check", a CRC error in an ancillary chunk, extra
// compressed data) and returns an image all the same; and its errors
// ("Not enough image data") as "libpng error:" lines beside an empty Mat.
// Checked first, such a file never reaches imdecode, so nothing of libpng
// is printed. Warnings about well-formed colour or text metadata, which
// OpenCV ignores, are not failures: pngScan returns the file without those
// chunks (drop), so imdecode does not warn about them again.
func pngScan(b []byte) (clean []byte, err error) {
	if len(b) == 0 {
		return nil, errors.New("empty PNG")
	}
	s := (*C.struct_pchk)(C.calloc(1, C.size_t(unsafe.Sizeof(C.struct_pchk{}))))
	if s == nil {
		return nil, errors.New("out of memory")
	}
	defer C.free(unsafe.Pointer(s))
	// The bytes go to C memory: the scan's state (with the pointer) is
	// C memory libpng keeps, which must not point into Go memory.
	cb := C.CBytes(b)
	defer C.free(cb)
	s.buf, s.len = (*C.uchar)(cb), C.size_t(len(b))
	if rc := C.pchk_scan(s); rc != 0 {
		return nil, errors.New(C.GoString(&s.msg[0]))
	}
	if s.ndrop == 0 {
		return b, nil
	}
	var drop []string
	for i := 0; i < int(s.ndrop); i++ {
		drop = append(drop, C.GoString(&s.drop[i][0]))
	}
	return dropChunks(b, drop), nil
}

// dropChunks returns a copy of the PNG b without the chunks named in drop
// (ancillary chunks only: the rest is kept as it is).
func dropChunks(b []byte, drop []string) []byte {
	out := append([]byte(nil), b[:8]...)
	for i := 8; i+12 <= len(b); {
		n := int(binary.BigEndian.Uint32(b[i:]))
		end := i + 12 + n
		if n < 0 || end > len(b) || end < i {
			return append(out, b[i:]...)
		}
		name := string(b[i+4 : i+8])
		if !(name[0] >= 'a' && name[0] <= 'z' && slices.Contains(drop, name)) {
			out = append(out, b[i:end]...)
		}
		i = end
		if name == "IEND" {
			break
		}
	}
	return out
}
