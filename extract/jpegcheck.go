package extract

/*
#cgo LDFLAGS: -ljpeg
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <setjmp.h>
#include <jpeglib.h>

struct jchk_err {
	struct jpeg_error_mgr pub;
	jmp_buf jb;
	char msg[JMSG_LENGTH_MAX];
};

static void jchk_error_exit(j_common_ptr c) {
	struct jchk_err *e = (struct jchk_err *)c->err;
	(*c->err->format_message)(c, e->msg);
	longjmp(e->jb, 1);
}

// A warning (level -1) ends the check: the file is not what it claims.
// Trace messages (level >= 0) are ignored; nothing is ever printed.
static void jchk_emit(j_common_ptr c, int level) {
	struct jchk_err *e = (struct jchk_err *)c->err;
	if (level < 0) {
		(*c->err->format_message)(c, e->msg);
		longjmp(e->jb, 2);
	}
}

static void jchk_output(j_common_ptr c) { (void)c; }

// jchk_scan decodes the whole entropy-coded data at 1/8 scale (libjpeg's
// DCT scaling: the Huffman decoding is complete, the IDCT nearly free, one
// output row in memory) and returns 0, 1 on an error or 2 on a warning,
// with libjpeg's message in msg.
static int jchk_scan(const unsigned char *buf, unsigned long len, char *msg, size_t msglen) {
	struct jpeg_decompress_struct cinfo;
	struct jchk_err err;
	JSAMPARRAY row = NULL;
	memset(&cinfo, 0, sizeof cinfo);
	memset(&err, 0, sizeof err);
	cinfo.err = jpeg_std_error(&err.pub);
	err.pub.error_exit = jchk_error_exit;
	err.pub.emit_message = jchk_emit;
	err.pub.output_message = jchk_output;
	int rc = setjmp(err.jb);
	if (rc != 0) {
		snprintf(msg, msglen, "%s", err.msg);
		jpeg_destroy_decompress(&cinfo);
		return rc;
	}
	jpeg_create_decompress(&cinfo);
	jpeg_mem_src(&cinfo, buf, len);
	jpeg_read_header(&cinfo, TRUE);
	cinfo.scale_num = 1;
	cinfo.scale_denom = 8;
	cinfo.dct_method = JDCT_IFAST;
	cinfo.do_fancy_upsampling = FALSE;
	jpeg_start_decompress(&cinfo);
	row = (*cinfo.mem->alloc_sarray)((j_common_ptr)&cinfo, JPOOL_IMAGE,
		cinfo.output_width * cinfo.output_components, 1);
	while (cinfo.output_scanline < cinfo.output_height) {
		jpeg_read_scanlines(&cinfo, row, 1);
	}
	jpeg_finish_decompress(&cinfo);
	jpeg_destroy_decompress(&cinfo);
	return 0;
}
*/
import "C"

import (
	"errors"
	"unsafe"
)

// jpegScan runs libjpeg over the whole file and returns its first error or
// warning. OpenCV's imdecode only prints libjpeg's warnings on stderr and
// returns an image: a JPEG whose header claims 9000x9000 pixels while its
// data covers 300x280 decodes to grey rows ("Corrupt JPEG data: premature
// end of data segment"), whose CNN codes would be stored as if valid.
// Running the check first makes such a file a decode failure with that
// message, and keeps libjpeg's line off stderr (imdecode never sees it).
// It costs the Huffman decoding again (see docs/PERFORMANCE.md).
func jpegScan(b []byte) error {
	if len(b) == 0 {
		return errors.New("empty JPEG")
	}
	var msg [C.JMSG_LENGTH_MAX]C.char
	// b holds no Go pointers, so C may read it for the call's duration.
	rc := C.jchk_scan((*C.uchar)(unsafe.Pointer(&b[0])), C.ulong(len(b)), &msg[0], C.size_t(len(msg)))
	if rc == 0 {
		return nil
	}
	return errors.New(C.GoString(&msg[0]))
}
