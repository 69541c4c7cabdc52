// dnnl.h: a small C layer over oneDNN's C++ primitive API for the oneDNN
// engine (onednn.go). The Go side walks the ONNX graph, decides what fuses,
// and adds one op at a time in topological order; this side creates the
// primitives, reorders weights once into the layout the primitive chose,
// allocates activations and runs them. Every function catches C++ exceptions
// into *err (a malloc'ed string the caller frees with dnx_free).
#ifndef PIPELINE_DNNL_H
#define PIPELINE_DNNL_H

#ifdef __cplusplus
extern "C" {
#endif

typedef void *DnxNet;

// Pooling kinds for dnx_pool.
enum { DNX_POOL_MAX = 0, DNX_POOL_AVG_INCL = 1, DNX_POOL_AVG_EXCL = 2 };

void dnx_free(void *p);
// dnx_isa is oneDNN's effective CPU ISA (dnnl_cpu_isa_t) and its name.
int dnx_isa(void);
// dnx_version is "major.minor.patch (runtime)".
char *dnx_version(void);
// dnx_max_threads is the number of threads oneDNN's OpenMP runtime uses.
int dnx_max_threads(void);
// dnx_net_threads is the OpenMP team size a net runs with.
int dnx_net_threads(DnxNet n);

// dnx_new makes an empty net for batches of `batch` images; bf16 != 0 keeps
// activations and weights in bfloat16. threads <= 0 keeps OpenMP's default.
DnxNet dnx_new(int bf16, int batch, int threads, char **err);
void dnx_close(DnxNet n);
// dnx_input declares the network input (tensor 0): c x h x w float32 NCHW.
int dnx_input(DnxNet n, int c, int h, int w, char **err);

// Each op returns the id of its output tensor, or -1 with *err set.
// dims are per image (no batch). Weights are plain float32 in ONNX layout
// (OIHW, or [O, I] for an inner product whose I may be C*H*W of a 3- or
// 1-D source); they are reordered during the call and not kept.
// sum_src >= 0 adds that tensor to the convolution's output before the
// ReLU (a fused residual Add); sum_inplace says the conv may write into
// sum_src's buffer (nothing reads it afterwards).
int dnx_conv(DnxNet n, int src, int oc, int kh, int kw, const int *strides, const int *pads /*t,l,b,r*/,
             const int *dilations, int groups, const float *w, const float *b, int sum_src, int sum_inplace,
             int relu, char **err);
int dnx_bn(DnxNet n, int src, const float *mean, const float *var, const float *scale, const float *shift,
           float eps, int relu, char **err);
int dnx_relu(DnxNet n, int src, char **err);
int dnx_pool(DnxNet n, int src, int kind, int kh, int kw, const int *strides, const int *pads, char **err);
int dnx_add(DnxNet n, int a, int b, int relu, char **err);
// w may be unaligned when w_unaligned (a payload in the mapped model file).
int dnx_ip(DnxNet n, int src, int oc, const float *w, int w_unaligned, const float *b, int relu, char **err);
int dnx_flatten(DnxNet n, int src, char **err);
int dnx_softmax(DnxNet n, int src, char **err);
int dnx_concat(DnxNet n, const int *srcs, int nsrc, char **err);
// dnx_output marks a tensor as an output, in the order forward writes them.
int dnx_output(DnxNet n, int t, char **err);
// dnx_tensor_size is the number of values of one image of tensor t.
long dnx_tensor_size(DnxNet n, int t);
// dnx_tensor_dims writes up to 8 per-image dims of t and returns the rank.
int dnx_tensor_dims(DnxNet n, int t, int *dims);

// dnx_forward runs k images (k x c x h x w float32 NCHW) and writes each
// output, in dnx_output order, as k plain NCHW (or N x D) blocks one after
// another into dst.
int dnx_forward(DnxNet n, const float *in, int k, float *dst, char **err);

// dnx_describe lists the primitives of the batch plan (one per line:
// "kind impl"), for tests and `ONEDNN_VERBOSE`-free checks.
char *dnx_describe(DnxNet n);

#ifdef __cplusplus
}
#endif
#endif
