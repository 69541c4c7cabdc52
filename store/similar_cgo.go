package store

/*
#cgo CFLAGS: -O2
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <sqlite3.h>

// The distance kernels accumulate in double, W lanes at a time, with two
// independent accumulators per sum. KERNELS(suffix, attribute, double
// vector type, float vector type, W) defines cos_<suffix> and l2_<suffix>:
// once for the baseline ISA (SSE2 on x86-64, NEON on arm64) and, on x86-64,
// once more for AVX2+FMA, chosen at run time.
typedef double v2d __attribute__((vector_size(16)));
typedef float v2f __attribute__((vector_size(8)));
#if defined(__x86_64__) && defined(__GNUC__)
#define HAVE_AVX2_KERNELS 1
typedef double v4d __attribute__((vector_size(32)));
typedef float v4f __attribute__((vector_size(16)));
#endif

#define KERNELS(SUF, ATTR, VD, VF, W)                                              \
ATTR static inline VD load_##SUF(const float *p) {                                \
	VF f;                                                                       \
	memcpy(&f, p, sizeof f);                                                    \
	return __builtin_convertvector(f, VD);                                      \
}                                                                               \
ATTR static inline VD loadq_##SUF(const double *p) {                              \
	VD v;                                                                       \
	memcpy(&v, p, sizeof v);                                                    \
	return v;                                                                   \
}                                                                               \
ATTR static inline double hsum_##SUF(VD v) {                                      \
	double s = 0;                                                               \
	for (int j = 0; j < W; j++) s += v[j];                                      \
	return s;                                                                   \
}                                                                               \
ATTR static void dotnorm_##SUF(const double *q, const float *b, int n,         \
		double *dot, double *ss) {                                          \
	VD d0 = {0}, d1 = {0}, s0 = {0}, s1 = {0};                                  \
	int i = 0;                                                                  \
	for (; i + 2 * W <= n; i += 2 * W) {                                        \
		VD x0 = load_##SUF(b + i), x1 = load_##SUF(b + i + W);                  \
		d0 += x0 * loadq_##SUF(q + i);                                          \
		d1 += x1 * loadq_##SUF(q + i + W);                                      \
		s0 += x0 * x0;                                                          \
		s1 += x1 * x1;                                                          \
	}                                                                           \
	double d = hsum_##SUF(d0 + d1), s = hsum_##SUF(s0 + s1);                    \
	for (; i < n; i++) {                                                        \
		double x = b[i];                                                        \
		d += x * q[i];                                                          \
		s += x * x;                                                             \
	}                                                                           \
	*dot = d;                                                                   \
	*ss = s;                                                                    \
}                                                                               \
ATTR static double l2_##SUF(const double *q, const float *b, int n) {             \
	VD s0 = {0}, s1 = {0};                                                      \
	int i = 0;                                                                  \
	for (; i + 2 * W <= n; i += 2 * W) {                                        \
		VD e0 = load_##SUF(b + i) - loadq_##SUF(q + i);                         \
		VD e1 = load_##SUF(b + i + W) - loadq_##SUF(q + i + W);                 \
		s0 += e0 * e0;                                                          \
		s1 += e1 * e1;                                                          \
	}                                                                           \
	double s = hsum_##SUF(s0 + s1);                                             \
	for (; i < n; i++) {                                                        \
		double e = b[i] - q[i];                                                 \
		s += e * e;                                                             \
	}                                                                           \
	return sqrt(s);                                                             \
}

KERNELS(base, , v2d, v2f, 2)
#ifdef HAVE_AVX2_KERNELS
KERNELS(avx2, __attribute__((target("avx2,fma"))), v4d, v4f, 4)
#endif

typedef void (*dotnorm_fn)(const double *, const float *, int, double *, double *);
typedef double (*l2_fn)(const double *, const float *, int);

// pick_kernels chooses AVX2 when the CPU has it (avx2 = 0 forces the baseline).
static int pick_kernels(int avx2, dotnorm_fn *c, l2_fn *l) {
	*c = dotnorm_base;
	*l = l2_base;
#ifdef HAVE_AVX2_KERNELS
	if (avx2 && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
		*c = dotnorm_avx2;
		*l = l2_avx2;
		return 1;
	}
#endif
	return 0;
}

// A max-heap of the k best (distance, id): the root is the worst kept.
static int worse(double da, long long ia, double db, long long ib) {
	return da > db || (da == db && ia > ib);
}

static void heap_offer(long long *ids, double *ds, int *n, int k, long long id, double d) {
	int i;
	if (*n < k) {
		i = (*n)++;
		while (i > 0) {
			int p = (i - 1) / 2;
			if (!worse(d, id, ds[p], ids[p])) break;
			ids[i] = ids[p]; ds[i] = ds[p]; i = p;
		}
		ids[i] = id; ds[i] = d;
		return;
	}
	if (!worse(ds[0], ids[0], d, id)) return;
	i = 0;
	for (;;) {
		int l = 2 * i + 1, r = l + 1, m = i;
		double dm = d; long long im = id;
		if (l < k && worse(ds[l], ids[l], dm, im)) { m = l; dm = ds[l]; im = ids[l]; }
		if (r < k && worse(ds[r], ids[r], dm, im)) { m = r; }
		if (m == i) break;
		ids[i] = ids[m]; ds[i] = ds[m]; i = m;
	}
	ids[i] = id; ds[i] = d;
}

// pl_nearest scans the vectors of one feature set with rowid in [lo, hi] on
// a read-only connection of its own, mapping up to mmap bytes of the file.
// It returns the number of results in ids/ds (a heap, unsorted), or -1
// with *err (malloc'd) set. *bad_id is set to an image whose vector has the
// wrong length (*bad_len bytes), which ends the scan. A non-zero *stop
// (set by another thread) ends it with SQLITE_INTERRUPT.
static int pl_nearest(const char *filename, long long set_id, long long lo, long long hi, int dim, const double *q, const float *qf, int metric,
		long long exclude, int k, long long *ids, double *ds, long long mmap, int avx2,
		long long *bad_id, int *bad_len, volatile int *stop, char **err) {
	sqlite3 *db = 0;
	sqlite3_stmt *st = 0;
	int n = 0, rc;
	*err = 0;
	*bad_id = 0;
	dotnorm_fn dotnorm;
	l2_fn l2;
	double qq = 0, unused;
	pick_kernels(avx2, &dotnorm, &l2);
	// The query's squared norm by the same arithmetic as the rows': an
	// identical vector then comes out at distance exactly 0.
	dotnorm(q, qf, dim, &unused, &qq);
	rc = sqlite3_open_v2(filename, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, 0);
	if (rc == SQLITE_OK) {
		char pragma[64];
		sqlite3_busy_timeout(db, 10000);
		snprintf(pragma, sizeof pragma, "PRAGMA mmap_size = %lld", mmap);
		rc = sqlite3_exec(db, pragma, 0, 0, 0);
	}
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(db, "SELECT image_id, vector FROM features WHERE feature_set_id = ?1 AND rowid BETWEEN ?2 AND ?3", -1, &st, 0);
	if (rc == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, set_id);
		sqlite3_bind_int64(st, 2, lo);
		sqlite3_bind_int64(st, 3, hi);
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			if (*stop) {
				rc = SQLITE_INTERRUPT;
				break;
			}
			long long id = sqlite3_column_int64(st, 0);
			const float *b = sqlite3_column_blob(st, 1);
			int len = sqlite3_column_bytes(st, 1);
			if (id == exclude) continue;
			if (len != 4 * dim) {
				*bad_id = id;
				*bad_len = len;
				rc = SQLITE_OK;
				break;
			}
			double d;
			if (metric == 1) {
				d = l2(q, b, dim);
			} else {
				double dot, ss;
				dotnorm(q, b, dim, &dot, &ss);
				// sqrt(qq*ss): for an identical vector dot = qq = ss and
				// sqrt(x*x) is exactly x, so the distance is exactly 0.
				d = ss == 0 ? 1 : 1 - dot / sqrt(qq * ss);
			}
			heap_offer(ids, ds, &n, k, id, d);
		}
		if (rc == SQLITE_DONE) rc = SQLITE_OK;
	}
	if (rc != SQLITE_OK) {
		const char *m = db ? sqlite3_errmsg(db) : "out of memory";
		*err = malloc(strlen(m) + 1);
		if (*err) strcpy(*err, m);
		n = -1;
	}
	sqlite3_finalize(st);
	sqlite3_close_v2(db);
	return n;
}
*/
import "C"

import (
	"context"
	"database/sql"
	"fmt"
	"runtime"
	"sync"
	"unsafe"
)

// useAVX2 lets tests force the baseline kernels.
var useAVX2 = true

// testHookScan, when set, runs just before the scanning threads start.
var testHookScan func()

// mmapSize is how much of the database file a scan connection maps
// (PRAGMA mmap_size; SQLite caps it at 2 GiB - 64 KiB by default): reading
// vectors from mapped pages saves a read(2) per 4 KiB page.
const mmapSize = 1<<31 - 1<<16

// minRowsPerThread: below this many vectors per thread, another thread
// (and its connection) costs more than it saves.
const minRowsPerThread = 4096

// cNearest scans the set in C: each thread opens its own read-only
// connection and scans one range of features rowids. Cancelling ctx stops
// the scan between two rows.
func (db *DB) cNearest(ctx context.Context, fs FeatureSet, query []float32, o NearestOptions) ([]scored, error) {
	var lo, hi sql.NullInt64
	var count int64
	if err := db.reader().QueryRowContext(ctx, `SELECT min(rowid), max(rowid), count(*) FROM features WHERE feature_set_id = ?`,
		fs.ID).Scan(&lo, &hi, &count); err != nil {
		return nil, fmt.Errorf("nearest in %s: %w", fs, err)
	}
	if !lo.Valid {
		return nil, nil
	}
	o.K = int(min(int64(o.K), count)) // the per-thread heaps are allocated at size k
	threads := o.Threads
	if threads <= 0 {
		threads = min(runtime.NumCPU(), 8, max(1, int(count/minRowsPerThread)))
	}
	q := make([]float64, len(query))
	for i, x := range query {
		q[i] = float64(x)
	}
	file := C.CString(db.roURI())
	defer C.free(unsafe.Pointer(file))
	// The stop flag lives in C memory: the scanning threads read it while
	// this goroutine may write it.
	stop := (*C.int)(C.calloc(1, C.size_t(unsafe.Sizeof(C.int(0)))))
	defer C.free(unsafe.Pointer(stop))
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-ctx.Done():
			*stop = 1
		case <-done:
		}
	}()
	if testHookScan != nil {
		testHookScan()
	}
	span := (hi.Int64 - lo.Int64 + 1 + int64(threads) - 1) / int64(threads)
	parts := make([][]scored, threads)
	errs := make([]error, threads)
	var wg sync.WaitGroup
	for t := range threads {
		a := lo.Int64 + int64(t)*span
		b := min(a+span-1, hi.Int64)
		wg.Add(1)
		go func() {
			defer wg.Done()
			parts[t], errs[t] = scanRange(file, stop, fs, a, b, q, query, o)
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("nearest in %s: %w", fs, err)
	}
	h := &topK{k: o.K}
	for t := range threads {
		if errs[t] != nil {
			return nil, errs[t]
		}
		for _, s := range parts[t] {
			h.offer(s)
		}
	}
	return h.sorted(), nil
}

// scanRange runs pl_nearest over the features rows with rowid in [lo, hi].
func scanRange(file *C.char, stop *C.int, fs FeatureSet, lo, hi int64, q []float64, qf []float32, o NearestOptions) ([]scored, error) {
	metric := 0
	if o.Metric == L2 {
		metric = 1
	}
	ids := make([]int64, o.K)
	ds := make([]float64, o.K)
	var badID C.longlong
	var badLen C.int
	var cerr *C.char
	avx := C.int(0)
	if useAVX2 {
		avx = 1
	}
	// The slices are Go memory without Go pointers, so C may read and
	// write them for the duration of the call.
	n := C.pl_nearest(file, C.longlong(fs.ID), C.longlong(lo), C.longlong(hi), C.int(fs.Dim),
		(*C.double)(unsafe.Pointer(&q[0])), (*C.float)(unsafe.Pointer(&qf[0])), C.int(metric), C.longlong(o.Exclude), C.int(o.K),
		(*C.longlong)(unsafe.Pointer(&ids[0])), (*C.double)(unsafe.Pointer(&ds[0])),
		C.longlong(mmapSize), avx, &badID, &badLen, stop, &cerr)
	if n < 0 {
		msg := "out of memory"
		if cerr != nil {
			msg = C.GoString(cerr)
			C.free(unsafe.Pointer(cerr))
		}
		return nil, fmt.Errorf("nearest in %s: %s", fs, msg)
	}
	if badID != 0 {
		return nil, fmt.Errorf("nearest in %s: image %d: %w: %d bytes, want %d (run `pipeline check`)",
			fs, int64(badID), ErrDimMismatch, int(badLen), 4*fs.Dim)
	}
	out := make([]scored, int(n))
	for i := range out {
		out[i] = scored{ids[i], ds[i]}
	}
	return out, nil
}
