// dnnl.cpp: the oneDNN engine's C layer (see dnnl.h and DESIGN.md).
//
// A Net holds the op list the Go side added (OpSpec: parameters and the
// weights, already reordered into the layout the convolution chose) and one
// Plan per batch size: the primitives, their tensors' memory descriptors,
// and the activation buffers. The plan for the configured batch is built
// while the ops are added; a smaller batch (the last, partial one) gets its
// own plan on first use, built from the same OpSpecs with the stored
// weights, or, if oneDNN cannot create a primitive with that weights layout
// for the smaller batch, runs padded on the full plan.
#include "dnnl.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include "oneapi/dnnl/dnnl.hpp"

using namespace dnnl;
using tag = memory::format_tag;
using dt = memory::data_type;

namespace {

char *dup(const std::string &s) {
    char *p = (char *)malloc(s.size() + 1);
    memcpy(p, s.c_str(), s.size() + 1);
    return p;
}

enum Kind { K_CONV, K_BN, K_RELU, K_POOL, K_ADD, K_IP, K_FLATTEN, K_SOFTMAX, K_CONCAT };

struct OpSpec {
    Kind kind;
    std::vector<int> srcs;
    int dst = -1;
    // conv / pool
    int oc = 0, kh = 0, kw = 0, groups = 1;
    memory::dims strides, padl, padr, dil;
    int pool = 0;
    int sum_src = -1, sum_inplace = 0, relu = 0;
    float eps = 0;
    // weights, reordered once; bias and BN statistics as plain f32
    memory w, b, mean, var, scale, shift;
    std::shared_ptr<char> wbuf; // the memory under w (huge_buffer)
};

struct Arg {
    int arg;
    int t;
    bool has_md;
    memory::desc md;
};

struct Step {
    primitive p;
    std::vector<Arg> targs;
    std::unordered_map<int, memory> fixed;
    std::unordered_map<int, memory> args; // built at finalize
    std::string info;
    memory::desc scratch; // zero when the primitive needs none
};

const int HIDDEN = 1 << 20; // ids of a plan's own tensors (reorders)

struct Plan {
    int batch = 0;
    std::map<int, memory::desc> md;
    std::map<int, int> alias; // tensor -> tensor whose buffer it writes (in-place sum)
    std::vector<Step> steps;
    std::map<int, memory> mem;
    std::vector<std::shared_ptr<char>> bufs;
    std::vector<memory> inputs; // memories over the user's input
    int hidden = HIDDEN;
    bool ready = false;
    size_t scratch = 0;
    std::shared_ptr<char> scratchBuf;
};

struct Net {
    engine eng{engine::kind::cpu, 0};
    stream strm{eng};
    dt adt = dt::f32; // activations and weights
    int batch = 1;
    int threads = 0;
    std::vector<memory::dims> tdims; // per image, by tensor id
    std::vector<OpSpec> ops;
    std::vector<int> outputs;
    std::map<int, std::unique_ptr<Plan>> plans;
    std::map<int, bool> failed; // batch sizes whose plan could not be built

    // set_threads fixes the OpenMP team size on the calling thread before
    // every primitive creation and execution. OpenMP's thread count is a
    // per-thread setting, Go runs each call on whichever OS thread is free,
    // and other libraries in the process (OpenBLAS under OpenCV) change it:
    // a primitive executed with more threads than it was created for
    // overruns its scratchpad.
    void set_threads() { omp_set_num_threads(threads); }
    memory::dims full(const Plan &P, int t) const {
        memory::dims d{P.batch};
        const memory::dims &pi = tdims.at(t);
        d.insert(d.end(), pi.begin(), pi.end());
        return d;
    }
};

// uattr: every primitive takes its scratchpad from the plan (one buffer,
// sized for the largest), not from oneDNN's global one.
primitive_attr uattr() {
    primitive_attr a;
    a.set_scratchpad_mode(scratchpad_mode::user);
    return a;
}

tag plain_tag(size_t nd) {
    switch (nd) {
    case 1: return tag::a;
    case 2: return tag::nc;
    case 3: return tag::ncw;
    case 4: return tag::nchw;
    case 5: return tag::ncdhw;
    }
    throw std::runtime_error("tensor of rank " + std::to_string(nd) + " not supported");
}

memory::desc plain(const memory::dims &d, dt t) { return memory::desc(d, t, plain_tag(d.size())); }

int new_tensor(Net &N, const memory::dims &per) {
    N.tdims.push_back(per);
    return (int)N.tdims.size() - 1;
}

memory::dims per_image(const memory::desc &md) {
    memory::dims d = md.dims();
    d.erase(d.begin());
    return d;
}

void add_step(Plan &P, primitive p, std::vector<Arg> targs, std::unordered_map<int, memory> fixed, const char *info) {
    Step s;
    s.p = p;
    s.targs = std::move(targs);
    s.fixed = std::move(fixed);
    s.info = info ? info : "";
    const_dnnl_primitive_desc_t cpd = nullptr;
    if (dnnl_primitive_get_primitive_desc(p.get(), &cpd) == dnnl_success && cpd) {
        const dnnl_memory_desc_t *smd = dnnl_primitive_desc_query_md(cpd, dnnl_query_scratchpad_md, 0);
        if (smd && smd->ndims > 0) {
            s.scratch = memory::desc(*smd);
            P.scratch = std::max(P.scratch, s.scratch.get_size());
        }
    }
    P.steps.push_back(std::move(s));
}

// as_md returns a tensor holding t's values in layout want: t itself, or a
// plan tensor filled by a reorder step.
int as_md(Net &N, Plan &P, int t, const memory::desc &want) {
    if (P.md.at(t) == want) return t;
    int h = P.hidden++;
    P.md[h] = want;
    reorder::primitive_desc pd(N.eng, P.md.at(t), N.eng, want, uattr());
    add_step(P, reorder(pd), {{DNNL_ARG_FROM, t, false, {}}, {DNNL_ARG_TO, h, false, {}}}, {}, pd.impl_info_str());
    return h;
}

// as_dt returns t in the net's activation type (the input is float32).
int as_dt(Net &N, Plan &P, int t) {
    const memory::desc &md = P.md.at(t);
    if (md.data_type() == N.adt) return t;
    return as_md(N, P, t, plain(md.dims(), N.adt));
}

memory f32_copy(Net &N, const float *src, memory::dim n) {
    memory m(memory::desc({n}, dt::f32, tag::a), N.eng);
    float *p = (float *)m.get_data_handle();
    if (src)
        memcpy(p, src, n * sizeof(float));
    else
        memset(p, 0, n * sizeof(float));
    return m;
}

// huge_buffer allocates n bytes, 64-byte aligned; from 2 MB on, aligned to
// 2 MB and advised to be backed by transparent huge pages (Debian's default
// THP mode is "madvise"): VGG-16's 528 MB of weights then cost a few hundred
// page faults instead of 135,000 4 KB ones, and fewer TLB misses when read.
std::shared_ptr<char> huge_buffer(size_t n) {
    const size_t huge = 2 << 20;
    if (n < huge) {
        char *p = (char *)aligned_alloc(64, (n + 63) / 64 * 64);
        if (!p) throw std::bad_alloc();
        return std::shared_ptr<char>(p, free);
    }
    size_t len = (n + huge - 1) / huge * huge;
    char *p = (char *)aligned_alloc(huge, len);
    if (!p) throw std::bad_alloc();
    madvise(p, len, MADV_HUGEPAGE); // advice only: 4 KB pages when it fails
    return std::shared_ptr<char>(p, free);
}

// reorder_weights makes the op's weights memory (s.w, owning s.wbuf) in
// layout md from plain user data.
void reorder_weights(Net &N, OpSpec &s, const memory::desc &md, const memory::desc &user_md, const float *w) {
    memory user(user_md, N.eng, (void *)w);
    s.wbuf = huge_buffer(md.get_size());
    memory out(md, N.eng, s.wbuf.get());
    reorder(user, out).execute(N.strm, user, out);
    N.strm.wait();
    s.w = out;
}

struct Ptrs {
    const float *w = nullptr, *b = nullptr, *mean = nullptr, *var = nullptr, *scale = nullptr, *shift = nullptr;
    bool w_unaligned = false; // w may not be 4-byte aligned: read it with memcpy only
};

// reorder_weights_slabs is reorder_weights for weights that are not 4-byte
// aligned (a payload at an odd offset of the mapped model file): slabs of
// output channels are copied into a small aligned staging buffer and
// reordered into their place in the destination layout (a sub-memory), and
// the source pages are released as they are consumed, so that neither a
// full aligned copy nor the whole source is resident (VGG-16's fc1: 411 MB).
// It returns false when the layout does not allow slabs; the caller then
// copies the whole tensor.
bool reorder_weights_slabs(Net &N, OpSpec &s, const memory::desc &md, const memory::desc &user_md, const void *w) {
    memory::dims wd = user_md.dims();
    memory::dim rows = wd[0], row = 1;
    for (size_t i = 1; i < wd.size(); i++) row *= wd[i];
    memory::dim slab = 0;
    for (memory::dim cand : {256, 128, 64}) {
        if (rows % cand != 0 || rows == cand) continue;
        try {
            memory::dims sub = wd;
            sub[0] = cand;
            memory::dims off(wd.size(), 0);
            (void)md.submemory_desc(sub, off);
            slab = cand;
            break;
        } catch (error &) {
        }
    }
    if (slab == 0) return false;
    s.wbuf = huge_buffer(md.get_size());
    memory out(md, N.eng, s.wbuf.get());
    size_t bytes = (size_t)(slab * row) * sizeof(float);
    std::shared_ptr<char> stage = huge_buffer(bytes);
    memory::dims sub = wd;
    sub[0] = slab;
    tag plain_tag = wd.size() == 4 ? tag::abcd : wd.size() == 3 ? tag::abc : tag::ab;
    memory user(memory::desc(sub, dt::f32, plain_tag), N.eng, stage.get());
    const long page = sysconf(_SC_PAGESIZE);
    for (memory::dim o = 0; o < rows; o += slab) {
        const char *src = (const char *)w + (size_t)o * row * sizeof(float);
        memcpy(stage.get(), src, bytes);
        memory::dims off(wd.size(), 0);
        off[0] = o;
        memory dst(md.submemory_desc(sub, off), N.eng, s.wbuf.get());
        reorder(user, dst).execute(N.strm, user, dst);
        N.strm.wait();
        uintptr_t a = ((uintptr_t)src + page - 1) / page * page, b = ((uintptr_t)src + bytes) / page * page;
        if (b > a) madvise((void *)a, b - a, MADV_DONTNEED); // mapped file pages: refetched if read again
    }
    s.w = out;
    return true;
}

// reorder_weights_any reorders weights that may be unaligned.
void reorder_weights_any(Net &N, OpSpec &s, const memory::desc &md, const memory::desc &user_md, const float *w,
                         bool unaligned) {
    if (!unaligned) return reorder_weights(N, s, md, user_md, w);
    if (reorder_weights_slabs(N, s, md, user_md, w)) return;
    size_t n = user_md.get_size();
    std::shared_ptr<char> copy = huge_buffer(n);
    memcpy(copy.get(), w, n);
    reorder_weights(N, s, md, user_md, (const float *)copy.get());
}

void emit(Net &N, Plan &P, OpSpec &s, const Ptrs &ptr) {
    bool first = ptr.w != nullptr || ptr.mean != nullptr; // the op's first plan: weights come from the user
    switch (s.kind) {
    case K_CONV: {
        int src = s.srcs[0];
        memory::dims sd = N.full(P, src);
        memory::dim ic = sd[1], ih = sd[2], iw = sd[3];
        memory::dim oh = (ih + s.padl[0] + s.padr[0] - ((s.kh - 1) * (s.dil[0] + 1) + 1)) / s.strides[0] + 1;
        memory::dim ow = (iw + s.padl[1] + s.padr[1] - ((s.kw - 1) * (s.dil[1] + 1) + 1)) / s.strides[1] + 1;
        if (oh <= 0 || ow <= 0) throw std::runtime_error("convolution output is empty");
        memory::dims dd{P.batch, s.oc, oh, ow};
        memory::dims wd = s.groups > 1 ? memory::dims{s.groups, s.oc / s.groups, ic / s.groups, s.kh, s.kw}
                                       : memory::dims{s.oc, ic, s.kh, s.kw};
        memory::desc src_md(sd, N.adt, tag::any);
        memory::desc w_md = first ? memory::desc(wd, N.adt, tag::any) : s.w.get_desc();
        memory::desc b_md({s.oc}, dt::f32, tag::a);
        post_ops po;
        if (s.sum_src >= 0) po.append_sum(1.f);
        if (s.relu) po.append_eltwise(1.f, algorithm::eltwise_relu, 0.f, 0.f);
        primitive_attr attr = uattr();
        attr.set_post_ops(po);
        convolution_forward::primitive_desc pd;
        bool fixed_dst = false;
        if (s.sum_src >= 0) {
            try { // write into the shortcut's layout, so the shortcut's buffer can be the output
                convolution_forward::desc d(prop_kind::forward_inference, algorithm::convolution_direct, src_md, w_md,
                                            b_md, P.md.at(s.sum_src), s.strides, s.dil, s.padl, s.padr);
                pd = convolution_forward::primitive_desc(d, attr, N.eng);
                fixed_dst = true;
            } catch (error &) {
            }
        }
        if (!fixed_dst) {
            convolution_forward::desc d(prop_kind::forward_inference, algorithm::convolution_direct, src_md, w_md,
                                        b_md, memory::desc(dd, N.adt, tag::any), s.strides, s.dil, s.padl, s.padr);
            pd = convolution_forward::primitive_desc(d, attr, N.eng);
        }
        if (first) {
            reorder_weights(N, s, pd.weights_desc(), memory::desc(wd, dt::f32, s.groups > 1 ? tag::goihw : tag::oihw),
                            ptr.w);
            s.b = f32_copy(N, ptr.b, s.oc);
        } else if (pd.weights_desc() != s.w.get_desc()) {
            throw std::runtime_error("weights layout differs for this batch size");
        }
        int in = as_md(N, P, src, pd.src_desc());
        P.md[s.dst] = pd.dst_desc();
        if (s.sum_src >= 0) {
            if (s.sum_inplace && fixed_dst)
                P.alias[s.dst] = s.sum_src;
            else { // copy the shortcut into the output first
                reorder::primitive_desc rpd(N.eng, P.md.at(s.sum_src), N.eng, pd.dst_desc(), uattr());
                add_step(P, reorder(rpd), {{DNNL_ARG_FROM, s.sum_src, false, {}}, {DNNL_ARG_TO, s.dst, false, {}}}, {},
                         rpd.impl_info_str());
            }
        }
        add_step(P, convolution_forward(pd), {{DNNL_ARG_SRC, in, false, {}}, {DNNL_ARG_DST, s.dst, false, {}}},
                 {{DNNL_ARG_WEIGHTS, s.w}, {DNNL_ARG_BIAS, s.b}}, pd.impl_info_str());
        return;
    }
    case K_BN: {
        int src = as_dt(N, P, s.srcs[0]);
        memory::dim c = N.tdims[s.srcs[0]][0];
        if (first) {
            s.mean = f32_copy(N, ptr.mean, c);
            s.var = f32_copy(N, ptr.var, c);
            s.scale = f32_copy(N, ptr.scale, c);
            s.shift = f32_copy(N, ptr.shift, c);
        }
        normalization_flags fl = normalization_flags::use_global_stats | normalization_flags::use_scale |
                                 normalization_flags::use_shift;
        if (s.relu) fl = fl | normalization_flags::fuse_norm_relu;
        batch_normalization_forward::desc d(prop_kind::forward_inference, P.md.at(src), s.eps, fl);
        batch_normalization_forward::primitive_desc pd(d, uattr(), N.eng);
        P.md[s.dst] = pd.dst_desc();
        add_step(P, batch_normalization_forward(pd), {{DNNL_ARG_SRC, src, false, {}}, {DNNL_ARG_DST, s.dst, false, {}}},
                 {{DNNL_ARG_MEAN, s.mean}, {DNNL_ARG_VARIANCE, s.var}, {DNNL_ARG_SCALE, s.scale}, {DNNL_ARG_SHIFT, s.shift}},
                 pd.impl_info_str());
        return;
    }
    case K_RELU: {
        int src = as_dt(N, P, s.srcs[0]);
        eltwise_forward::desc d(prop_kind::forward_inference, algorithm::eltwise_relu, P.md.at(src), 0.f, 0.f);
        eltwise_forward::primitive_desc pd(d, uattr(), N.eng);
        P.md[s.dst] = pd.dst_desc();
        add_step(P, eltwise_forward(pd), {{DNNL_ARG_SRC, src, false, {}}, {DNNL_ARG_DST, s.dst, false, {}}}, {},
                 pd.impl_info_str());
        return;
    }
    case K_POOL: {
        int src = as_dt(N, P, s.srcs[0]);
        memory::dims sd = N.full(P, s.srcs[0]);
        memory::dim oh = (sd[2] + s.padl[0] + s.padr[0] - s.kh) / s.strides[0] + 1;
        memory::dim ow = (sd[3] + s.padl[1] + s.padr[1] - s.kw) / s.strides[1] + 1;
        algorithm a = s.pool == DNX_POOL_MAX        ? algorithm::pooling_max
                      : s.pool == DNX_POOL_AVG_INCL ? algorithm::pooling_avg_include_padding
                                                    : algorithm::pooling_avg_exclude_padding;
        pooling_forward::desc d(prop_kind::forward_inference, a, P.md.at(src),
                                memory::desc({sd[0], sd[1], oh, ow}, N.adt, tag::any), s.strides, {s.kh, s.kw}, s.padl,
                                s.padr);
        pooling_forward::primitive_desc pd(d, uattr(), N.eng);
        P.md[s.dst] = pd.dst_desc();
        add_step(P, pooling_forward(pd), {{DNNL_ARG_SRC, src, false, {}}, {DNNL_ARG_DST, s.dst, false, {}}}, {},
                 pd.impl_info_str());
        return;
    }
    case K_ADD: {
        int a = as_dt(N, P, s.srcs[0]);
        int b = as_md(N, P, as_dt(N, P, s.srcs[1]), P.md.at(a));
        post_ops po;
        if (s.relu) po.append_eltwise(1.f, algorithm::eltwise_relu, 0.f, 0.f);
        primitive_attr attr = uattr();
        attr.set_post_ops(po);
        binary::desc d(algorithm::binary_add, P.md.at(a), P.md.at(b), P.md.at(a));
        binary::primitive_desc pd(d, attr, N.eng);
        P.md[s.dst] = pd.dst_desc();
        add_step(P, binary(pd),
                 {{DNNL_ARG_SRC_0, a, false, {}}, {DNNL_ARG_SRC_1, b, false, {}}, {DNNL_ARG_DST, s.dst, false, {}}}, {},
                 pd.impl_info_str());
        return;
    }
    case K_IP: {
        int src = s.srcs[0];
        memory::dims sd = N.full(P, src);
        memory::dims wd = sd;
        wd[0] = s.oc;
        memory::desc src_md(sd, N.adt, tag::any);
        memory::desc w_md = first ? memory::desc(wd, N.adt, tag::any) : s.w.get_desc();
        memory::desc b_md({s.oc}, dt::f32, tag::a);
        post_ops po;
        if (s.relu) po.append_eltwise(1.f, algorithm::eltwise_relu, 0.f, 0.f);
        primitive_attr attr = uattr();
        attr.set_post_ops(po);
        inner_product_forward::desc d(prop_kind::forward_inference, src_md, w_md, b_md,
                                      memory::desc({P.batch, s.oc}, N.adt, tag::any));
        inner_product_forward::primitive_desc pd(d, attr, N.eng);
        if (first) {
            tag wt = wd.size() == 4 ? tag::oihw : wd.size() == 3 ? tag::oiw : tag::oi;
            reorder_weights_any(N, s, pd.weights_desc(), memory::desc(wd, dt::f32, wt), ptr.w, ptr.w_unaligned);
            s.b = f32_copy(N, ptr.b, s.oc);
        } else if (pd.weights_desc() != s.w.get_desc()) {
            throw std::runtime_error("weights layout differs for this batch size");
        }
        int in = as_md(N, P, src, pd.src_desc());
        P.md[s.dst] = pd.dst_desc();
        add_step(P, inner_product_forward(pd), {{DNNL_ARG_SRC, in, false, {}}, {DNNL_ARG_DST, s.dst, false, {}}},
                 {{DNNL_ARG_WEIGHTS, s.w}, {DNNL_ARG_BIAS, s.b}}, pd.impl_info_str());
        return;
    }
    case K_FLATTEN: {
        int src = s.srcs[0];
        memory::dims sd = N.full(P, src);
        memory::desc flat = plain(sd, N.adt); // C x H x W order
        memory::dim d = 1;
        for (size_t i = 1; i < sd.size(); i++) d *= sd[i];
        P.md[s.dst] = memory::desc({P.batch, d}, N.adt, tag::nc);
        reorder::primitive_desc pd(N.eng, P.md.at(src), N.eng, flat, uattr());
        add_step(P, reorder(pd), {{DNNL_ARG_FROM, src, false, {}}, {DNNL_ARG_TO, s.dst, true, flat}}, {},
                 pd.impl_info_str());
        return;
    }
    case K_SOFTMAX: {
        int src = as_dt(N, P, s.srcs[0]);
        softmax_forward::desc d(prop_kind::forward_inference, P.md.at(src), 1);
        softmax_forward::primitive_desc pd(d, uattr(), N.eng);
        P.md[s.dst] = pd.dst_desc();
        add_step(P, softmax_forward(pd), {{DNNL_ARG_SRC, src, false, {}}, {DNNL_ARG_DST, s.dst, false, {}}}, {},
                 pd.impl_info_str());
        return;
    }
    case K_CONCAT: {
        std::vector<memory::desc> mds;
        std::vector<Arg> args;
        memory::dims dd = N.full(P, s.srcs[0]);
        dd[1] = 0;
        for (size_t i = 0; i < s.srcs.size(); i++) {
            int t = as_dt(N, P, s.srcs[i]);
            mds.push_back(P.md.at(t));
            dd[1] += N.tdims[s.srcs[i]][0];
            args.push_back({DNNL_ARG_MULTIPLE_SRC + (int)i, t, false, {}});
        }
        concat::primitive_desc pd(memory::desc(dd, N.adt, tag::any), 1, mds, N.eng, uattr());
        P.md[s.dst] = pd.dst_desc();
        args.push_back({DNNL_ARG_DST, s.dst, false, {}});
        add_step(P, concat(pd), args, {}, pd.impl_info_str());
        return;
    }
    }
}

// finalize gives every tensor of the plan a buffer: a tensor's buffer goes
// back to the pool after the last step that reads it, unless it is an
// output; an in-place sum writes into its shortcut's buffer.
void finalize(Net &N, Plan &P) {
    auto rootOf = [&](int t) {
        while (P.alias.count(t)) t = P.alias.at(t);
        return t;
    };
    std::map<int, int> first, last; // buffer group (root tensor) -> steps
    for (size_t i = 0; i < P.steps.size(); i++)
        for (auto &a : P.steps[i].targs) {
            if (a.t == 0) continue;
            int r = rootOf(a.t);
            if (!first.count(r)) first[r] = (int)i;
            last[r] = (int)i;
        }
    for (int o : N.outputs)
        if (o != 0) last[rootOf(o)] = (int)P.steps.size();
    std::map<int, int> bufOf; // group -> buffer
    std::vector<size_t> sizes;
    std::vector<int> freeList;
    for (size_t i = 0; i < P.steps.size(); i++) {
        for (auto &kv : first) {
            if (kv.second != (int)i) continue;
            int r = kv.first;
            size_t need = P.md.at(r).get_size();
            int best = -1;
            for (size_t j = 0; j < freeList.size(); j++) {
                int b = freeList[j];
                if (sizes[b] >= need && (best < 0 || sizes[b] < sizes[freeList[best]])) best = (int)j;
            }
            if (best >= 0) {
                bufOf[r] = freeList[best];
                freeList.erase(freeList.begin() + best);
            } else {
                bufOf[r] = (int)sizes.size();
                sizes.push_back(need);
            }
        }
        for (auto &kv : last)
            if (kv.second == (int)i) freeList.push_back(bufOf.at(kv.first));
    }
    std::map<int, int> tensorBuf;
    for (auto &kv : P.md)
        if (kv.first != 0 && bufOf.count(rootOf(kv.first))) tensorBuf[kv.first] = bufOf.at(rootOf(kv.first));
    P.bufs.clear();
    for (size_t b = 0; b < sizes.size(); b++) {
        size_t n = (sizes[b] + 63) / 64 * 64;
        char *p = (char *)aligned_alloc(64, n ? n : 64);
        if (!p) throw std::runtime_error("out of memory for activations");
        P.bufs.push_back(std::shared_ptr<char>(p, free));
    }
    auto memFor = [&](int t, const memory::desc &md) {
        if (t == 0) {
            memory m(md, N.eng, DNNL_MEMORY_NONE);
            P.inputs.push_back(m);
            return m;
        }
        return memory(md, N.eng, P.bufs[tensorBuf.at(t)].get());
    };
    for (auto &kv : tensorBuf) P.mem[kv.first] = memFor(kv.first, P.md.at(kv.first));
    if (!P.mem.count(0)) P.mem[0] = memFor(0, P.md.at(0));
    if (P.scratch > 0) {
        char *sp = (char *)aligned_alloc(64, (P.scratch + 63) / 64 * 64);
        if (!sp) throw std::runtime_error("out of memory for the scratchpad");
        P.scratchBuf = std::shared_ptr<char>(sp, free);
    }
    for (auto &s : P.steps) {
        s.args = s.fixed;
        if (s.scratch.get_size() > 0) s.args[DNNL_ARG_SCRATCHPAD] = memory(s.scratch, N.eng, P.scratchBuf.get());
        for (auto &a : s.targs) {
            if (a.has_md)
                s.args[a.arg] = memFor(a.t, a.md);
            else if (a.t == 0)
                s.args[a.arg] = P.mem[0];
            else
                s.args[a.arg] = P.mem.at(a.t);
        }
    }
    for (int o : N.outputs)
        if (o != 0 && !P.mem.count(o)) P.mem[o] = memFor(o, P.md.at(o));
    P.ready = true;
}

Plan *new_plan(Net &N, int batch) {
    std::unique_ptr<Plan> P(new Plan());
    P->batch = batch;
    P->md[0] = plain(N.full(*P, 0), dt::f32);
    Plan *p = P.get();
    N.plans[batch] = std::move(P);
    return p;
}

// plan_for returns the plan for k images, building it from the op list on
// first use, or nullptr when oneDNN cannot run this batch size with the
// stored weights (the caller then pads to the full batch).
Plan *plan_for(Net &N, int k) {
    auto it = N.plans.find(k);
    if (it != N.plans.end()) {
        if (!it->second->ready) finalize(N, *it->second);
        return it->second.get();
    }
    if (N.failed.count(k)) return nullptr;
    Plan *P = new_plan(N, k);
    try {
        for (auto &s : N.ops) emit(N, *P, s, Ptrs());
        finalize(N, *P);
    } catch (std::exception &) {
        N.plans.erase(k);
        N.failed[k] = true;
        return nullptr;
    }
    return P;
}

void run(Net &N, Plan &P, const float *in, float *dst, int k) {
    for (auto &m : P.inputs) m.set_data_handle((void *)in);
    for (auto &s : P.steps) s.p.execute(N.strm, s.args);
    size_t off = 0;
    for (int o : N.outputs) {
        memory::dims d = N.full(P, o);
        memory::dim per = 1;
        for (size_t i = 1; i < d.size(); i++) per *= d[i];
        if (P.batch == k) {
            memory user(plain(d, dt::f32), N.eng, dst + off);
            memory src = o == 0 ? P.inputs[0] : P.mem.at(o);
            reorder(src, user).execute(N.strm, src, user);
        } else { // padded run: keep the first k images
            std::vector<float> tmp((size_t)P.batch * per);
            memory user(plain(d, dt::f32), N.eng, tmp.data());
            memory src = o == 0 ? P.inputs[0] : P.mem.at(o);
            reorder(src, user).execute(N.strm, src, user);
            N.strm.wait();
            memcpy(dst + off, tmp.data(), (size_t)k * per * sizeof(float));
        }
        off += (size_t)k * per;
    }
    N.strm.wait();
}

template <typename F> int guard(char **err, F f) {
    try {
        return f();
    } catch (error &e) {
        *err = dup(std::string("oneDNN: ") + e.what() + " (status " + std::to_string((int)e.status) + ")");
    } catch (std::exception &e) {
        *err = dup(std::string("oneDNN engine: ") + e.what());
    }
    return -1;
}

int add_op(Net &N, OpSpec s, const Ptrs &p, char **err) {
    return guard(err, [&] {
        N.set_threads();
        Plan &P = *N.plans.at(N.batch);
        s.dst = new_tensor(N, {});
        N.ops.push_back(s);
        OpSpec &st = N.ops.back();
        try {
            emit(N, P, st, p);
        } catch (...) {
            N.ops.pop_back();
            N.tdims.pop_back();
            throw;
        }
        N.tdims[st.dst] = per_image(P.md.at(st.dst));
        return st.dst;
    });
}

memory::dims two(const int *v) { return {v[0], v[1]}; }

} // namespace

extern "C" {

void dnx_free(void *p) { free(p); }

int dnx_isa(void) { return (int)dnnl_get_effective_cpu_isa(); }

char *dnx_version(void) {
    const dnnl_version_t *v = dnnl_version();
    return dup(std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->patch) +
               (v->cpu_runtime == DNNL_RUNTIME_OMP ? " (OpenMP)" : v->cpu_runtime == DNNL_RUNTIME_TBB ? " (TBB)" : ""));
}

int dnx_max_threads(void) { return omp_get_max_threads(); }

DnxNet dnx_new(int bf16, int batch, int threads, char **err) {
    Net *n = nullptr;
    guard(err, [&] {
        std::unique_ptr<Net> N(new Net());
        N->adt = bf16 ? dt::bf16 : dt::f32;
        N->batch = batch < 1 ? 1 : batch;
        if (threads <= 0) { // OpenMP's default: OMP_NUM_THREADS, else the cores
            const char *env = getenv("OMP_NUM_THREADS");
            threads = env && atoi(env) > 0 ? atoi(env) : omp_get_num_procs();
        }
        N->threads = threads;
        n = N.release();
        return 0;
    });
    return n;
}

void dnx_close(DnxNet n) { delete (Net *)n; }

int dnx_input(DnxNet n, int c, int h, int w, char **err) {
    Net &N = *(Net *)n;
    return guard(err, [&] {
        if (!N.tdims.empty()) throw std::runtime_error("input declared twice");
        new_tensor(N, {c, h, w});
        new_plan(N, N.batch);
        return 0;
    });
}

int dnx_conv(DnxNet n, int src, int oc, int kh, int kw, const int *strides, const int *pads, const int *dilations,
             int groups, const float *w, const float *b, int sum_src, int sum_inplace, int relu, char **err) {
    OpSpec s;
    s.kind = K_CONV;
    s.srcs = {src};
    s.oc = oc, s.kh = kh, s.kw = kw, s.groups = groups;
    s.strides = two(strides);
    s.padl = {pads[0], pads[1]};
    s.padr = {pads[2], pads[3]};
    s.dil = {dilations[0] - 1, dilations[1] - 1};
    s.sum_src = sum_src, s.sum_inplace = sum_inplace, s.relu = relu;
    Ptrs p;
    p.w = w, p.b = b;
    return add_op(*(Net *)n, s, p, err);
}

int dnx_bn(DnxNet n, int src, const float *mean, const float *var, const float *scale, const float *shift, float eps,
           int relu, char **err) {
    OpSpec s;
    s.kind = K_BN;
    s.srcs = {src};
    s.eps = eps, s.relu = relu;
    Ptrs p;
    p.mean = mean, p.var = var, p.scale = scale, p.shift = shift;
    return add_op(*(Net *)n, s, p, err);
}

int dnx_relu(DnxNet n, int src, char **err) {
    OpSpec s;
    s.kind = K_RELU;
    s.srcs = {src};
    return add_op(*(Net *)n, s, Ptrs(), err);
}

int dnx_pool(DnxNet n, int src, int kind, int kh, int kw, const int *strides, const int *pads, char **err) {
    OpSpec s;
    s.kind = K_POOL;
    s.srcs = {src};
    s.pool = kind, s.kh = kh, s.kw = kw;
    s.strides = two(strides);
    s.padl = {pads[0], pads[1]};
    s.padr = {pads[2], pads[3]};
    return add_op(*(Net *)n, s, Ptrs(), err);
}

int dnx_add(DnxNet n, int a, int b, int relu, char **err) {
    OpSpec s;
    s.kind = K_ADD;
    s.srcs = {a, b};
    s.relu = relu;
    return add_op(*(Net *)n, s, Ptrs(), err);
}

int dnx_ip(DnxNet n, int src, int oc, const float *w, int w_unaligned, const float *b, int relu, char **err) {
    OpSpec s;
    s.kind = K_IP;
    s.srcs = {src};
    s.oc = oc, s.relu = relu;
    Ptrs p;
    p.w = w, p.b = b;
    p.w_unaligned = w_unaligned != 0;
    return add_op(*(Net *)n, s, p, err);
}

int dnx_flatten(DnxNet n, int src, char **err) {
    OpSpec s;
    s.kind = K_FLATTEN;
    s.srcs = {src};
    return add_op(*(Net *)n, s, Ptrs(), err);
}

int dnx_softmax(DnxNet n, int src, char **err) {
    OpSpec s;
    s.kind = K_SOFTMAX;
    s.srcs = {src};
    return add_op(*(Net *)n, s, Ptrs(), err);
}

int dnx_concat(DnxNet n, const int *srcs, int nsrc, char **err) {
    OpSpec s;
    s.kind = K_CONCAT;
    s.srcs.assign(srcs, srcs + nsrc);
    return add_op(*(Net *)n, s, Ptrs(), err);
}

int dnx_output(DnxNet n, int t, char **err) {
    Net &N = *(Net *)n;
    return guard(err, [&] {
        if (t < 0 || t >= (int)N.tdims.size()) throw std::runtime_error("no tensor " + std::to_string(t));
        N.outputs.push_back(t);
        return 0;
    });
}

long dnx_tensor_size(DnxNet n, int t) {
    Net &N = *(Net *)n;
    if (t < 0 || t >= (int)N.tdims.size()) return -1;
    long p = 1;
    for (auto d : N.tdims[t]) p *= d;
    return p;
}

int dnx_tensor_dims(DnxNet n, int t, int *dims) {
    Net &N = *(Net *)n;
    if (t < 0 || t >= (int)N.tdims.size()) return -1;
    int i = 0;
    for (auto d : N.tdims[t]) {
        if (i < 8) dims[i] = (int)d;
        i++;
    }
    return i;
}

int dnx_forward(DnxNet n, const float *in, int k, float *dst, char **err) {
    Net &N = *(Net *)n;
    return guard(err, [&] {
        N.set_threads();
        if (k < 1 || k > N.batch) throw std::runtime_error("batch of " + std::to_string(k) + " images");
        Plan *P = plan_for(N, k);
        if (P) {
            run(N, *P, in, dst, k);
            return 0;
        }
        P = plan_for(N, N.batch);
        size_t per = N.tdims[0][0] * N.tdims[0][1] * N.tdims[0][2];
        std::vector<float> pad((size_t)N.batch * per, 0.f);
        memcpy(pad.data(), in, (size_t)k * per * sizeof(float));
        run(N, *P, pad.data(), dst, k);
        return 0;
    });
}

char *dnx_describe(DnxNet n) {
    Net &N = *(Net *)n;
    std::string s;
    auto it = N.plans.find(N.batch);
    if (it != N.plans.end())
        for (auto &st : it->second->steps) {
            s += st.p.get_kind() == primitive::kind::reorder ? "reorder" : "op";
            s += "\t" + st.info + "\n";
        }
    return dup(s);
}

} // extern "C"

extern "C" int dnx_net_threads(DnxNet n) { return ((Net *)n)->threads; }
