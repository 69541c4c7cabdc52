// A small C interface over the parts of cv::dnn that gocv v0.31.0 does not
// expose (available backends and targets, build information, the layer graph
// with shapes, OpenCL devices) and a forward pass that copies its outputs
// straight into caller memory. Every function catches C++ exceptions and
// reports them through an error string that the caller frees with cvx_free.
#ifndef PIPELINE_CVDNN_H
#define PIPELINE_CVDNN_H

#ifdef __cplusplus
extern "C" {
#endif

typedef void* CvxNet; // cv::dnn::Net*

void cvx_free(void* p);

// Strings owned by the caller (free with cvx_free).
char* cvx_version(void);
char* cvx_build_information(void);
// One line per (backend, target) pair that this build supports: "backend\ttarget".
char* cvx_available(void);
// One line per OpenCL device: "platform\tdevice\ttype(cpu|gpu|accelerator|other)".
char* cvx_opencl_devices(char** err);

void cvx_set_num_threads(int n);
int cvx_get_num_threads(void);
// 0 silent, 1 fatal, 2 error, 3 warning, 4 info, 5 debug, 6 verbose.
void cvx_set_log_level(int level);

// framework: "onnx", "caffe", "tensorflow". config may be empty.
CvxNet cvx_read_net(const char* framework, const char* model, const char* config, char** err);
void cvx_net_close(CvxNet net);
int cvx_net_set_backend(CvxNet net, int backend, int target, char** err);
void cvx_net_enable_fusion(CvxNet net, int on);

// The layer graph for one input shape (n, c, h, w), as text: one line per
// layer, "id\tname\ttype\tinput ids (comma)\toutput shapes (space, dims by x)\tinfo"
// where info is, for pooling layers, "max" or "ave", with ",global" when global.
char* cvx_net_describe(CvxNet net, const char* input, const int* shape, char** err);

// Forward pass: in is n*c*h*w float32 NCHW. For each of the nouts layer names,
// the output is copied into dst at the running offset; sizes[i] is the number of
// floats expected for output i (an error if OpenCV's differs); shapes receives
// up to 8 dims per output (unused dims 0).
int cvx_net_forward(CvxNet net, const char* input, const float* in, const int* shape,
                    const char** outs, int nouts, float* dst, const long* sizes, int* shapes, char** err);

#ifdef __cplusplus
}
#endif

#endif
