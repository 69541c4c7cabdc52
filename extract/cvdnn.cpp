#include "cvdnn.h"

#include <opencv2/core.hpp>
#include <opencv2/core/ocl.hpp>
#include <opencv2/core/utility.hpp>
#include <opencv2/core/utils/logger.hpp>
#include <opencv2/dnn.hpp>
#include <opencv2/dnn/all_layers.hpp>

#include <cstdlib>
#include <cstring>
#include <sstream>
#include <string>

using cv::dnn::Net;

static char* dup(const std::string& s) {
    char* p = static_cast<char*>(std::malloc(s.size() + 1));
    if (p) std::memcpy(p, s.c_str(), s.size() + 1);
    return p;
}

static void seterr(char** err, const std::string& msg) {
    if (err) *err = dup(msg);
}

#define CVX_TRY try {
#define CVX_CATCH(ret)                               \
    }                                                \
    catch (const cv::Exception& e) {                 \
        seterr(err, e.msg.empty() ? e.what() : e.msg); \
        return ret;                                  \
    }                                                \
    catch (const std::exception& e) {                \
        seterr(err, e.what());                       \
        return ret;                                  \
    }                                                \
    catch (...) {                                    \
        seterr(err, "unknown C++ exception");        \
        return ret;                                  \
    }

extern "C" {

void cvx_free(void* p) { std::free(p); }

char* cvx_version(void) { return dup(CV_VERSION); }

char* cvx_build_information(void) { return dup(cv::getBuildInformation()); }

char* cvx_available(void) {
    std::ostringstream out;
    try {
        for (const auto& p : cv::dnn::getAvailableBackends()) {
            out << int(p.first) << "\t" << int(p.second) << "\n";
        }
    } catch (...) {
    }
    return dup(out.str());
}

char* cvx_opencl_devices(char** err) {
    CVX_TRY
    std::ostringstream out;
    std::vector<cv::ocl::PlatformInfo> platforms;
    cv::ocl::getPlatfomsInfo(platforms);
    for (auto& pl : platforms) {
        for (int i = 0; i < pl.deviceNumber(); i++) {
            cv::ocl::Device d;
            pl.getDevice(d, i);
            const char* type = "other";
            switch (d.type() & ~cv::ocl::Device::TYPE_DEFAULT) {
            case cv::ocl::Device::TYPE_CPU: type = "cpu"; break;
            case cv::ocl::Device::TYPE_GPU:
            case cv::ocl::Device::TYPE_IGPU:
            case cv::ocl::Device::TYPE_DGPU: type = "gpu"; break;
            case cv::ocl::Device::TYPE_ACCELERATOR: type = "accelerator"; break;
            }
            out << pl.name() << "\t" << d.name() << "\t" << type << "\n";
        }
    }
    return dup(out.str());
    CVX_CATCH(nullptr)
}

void cvx_set_num_threads(int n) { cv::setNumThreads(n); }
int cvx_get_num_threads(void) { return cv::getNumThreads(); }

void cvx_set_log_level(int level) {
    cv::utils::logging::setLogLevel(static_cast<cv::utils::logging::LogLevel>(level));
}

CvxNet cvx_read_net(const char* framework, const char* model, const char* config, char** err) {
    CVX_TRY
    std::string fw(framework);
    Net net;
    if (fw == "onnx") {
        net = cv::dnn::readNetFromONNX(model);
    } else if (fw == "caffe") {
        net = cv::dnn::readNetFromCaffe(config, model);
    } else if (fw == "tensorflow") {
        net = cv::dnn::readNetFromTensorflow(model, config ? config : "");
    } else {
        seterr(err, "unknown framework " + fw);
        return nullptr;
    }
    if (net.empty()) {
        seterr(err, "OpenCV read an empty network");
        return nullptr;
    }
    return new Net(net);
    CVX_CATCH(nullptr)
}

void cvx_net_close(CvxNet net) { delete static_cast<Net*>(net); }

int cvx_net_set_backend(CvxNet net, int backend, int target, char** err) {
    CVX_TRY
    Net* n = static_cast<Net*>(net);
    n->setPreferableBackend(backend);
    n->setPreferableTarget(target);
    return 0;
    CVX_CATCH(-1)
}

void cvx_net_enable_fusion(CvxNet net, int on) {
    try {
        static_cast<Net*>(net)->enableFusion(on != 0);
    } catch (...) {
    }
}

static void writeShape(std::ostringstream& out, const cv::dnn::MatShape& s) {
    for (size_t i = 0; i < s.size(); i++) {
        if (i) out << "x";
        out << s[i];
    }
}

char* cvx_net_describe(CvxNet net, const char* input, const int* shape, char** err) {
    CVX_TRY
    Net* n = static_cast<Net*>(net);
    cv::dnn::MatShape in(shape, shape + 4);
    std::vector<int> ids;
    std::vector<std::vector<cv::dnn::MatShape> > ins, outs;
    n->getLayersShapes(in, ids, ins, outs);
    std::ostringstream out;
    for (size_t k = 0; k < ids.size(); k++) {
        int id = ids[k];
        if (id == 0) continue; // the implicit input layer
        cv::Ptr<cv::dnn::Layer> l = n->getLayer(id);
        out << id << "\t" << l->name << "\t" << l->type << "\t";
        std::vector<cv::Ptr<cv::dnn::Layer> > inputs = n->getLayerInputs(id);
        for (size_t i = 0; i < inputs.size(); i++) {
            if (i) out << ",";
            int iid = n->getLayerId(inputs[i]->name);
            out << iid;
        }
        out << "\t";
        for (size_t i = 0; i < outs[k].size(); i++) {
            if (i) out << " ";
            writeShape(out, outs[k][i]);
        }
        out << "\t";
        // Details the graph rules need and the type name does not carry.
        if (cv::dnn::PoolingLayer* p = dynamic_cast<cv::dnn::PoolingLayer*>(l.get())) {
            out << (p->type == 0 ? "max" : p->type == 1 ? "ave" : "other");
            if (p->globalPooling) out << ",global";
        }
        out << "\n";
    }
    (void)input;
    return dup(out.str());
    CVX_CATCH(nullptr)
}

int cvx_net_forward(CvxNet net, const char* input, const float* in, const int* shape,
                    const char** outs, int nouts, float* dst, const long* sizes, int* shapes, char** err) {
    CVX_TRY
    Net* n = static_cast<Net*>(net);
    // Copy the input into OpenCV-owned memory: the net keeps a reference to
    // its input blob after this call returns, which must not be Go memory.
    cv::Mat blob(4, shape, CV_32F);
    std::memcpy(blob.ptr<float>(), in, sizeof(float) * size_t(shape[0]) * shape[1] * shape[2] * shape[3]);
    n->setInput(blob, input ? input : "");
    std::vector<cv::String> names(outs, outs + nouts);
    std::vector<cv::Mat> res;
    n->forward(res, names);
    if (int(res.size()) != nouts) {
        seterr(err, "OpenCV returned " + std::to_string(res.size()) + " outputs, want " + std::to_string(nouts));
        return -1;
    }
    long off = 0;
    for (int i = 0; i < nouts; i++) {
        cv::Mat m = res[i];
        if (m.depth() != CV_32F) {
            cv::Mat f;
            m.convertTo(f, CV_32F);
            m = f;
        }
        if (!m.isContinuous()) m = m.clone();
        for (int d = 0; d < 8; d++) shapes[i * 8 + d] = d < m.dims ? m.size[d] : 0;
        if (long(m.total()) != sizes[i]) {
            std::ostringstream msg;
            msg << "layer " << names[i] << ": OpenCV gave " << m.total() << " values (shape ";
            for (int d = 0; d < m.dims; d++) msg << (d ? "x" : "") << m.size[d];
            msg << "), want " << sizes[i];
            seterr(err, msg.str());
            return -1;
        }
        std::memcpy(dst + off, m.ptr<float>(), sizeof(float) * m.total());
        off += sizes[i];
    }
    return 0;
    CVX_CATCH(-1)
}

} // extern "C"
