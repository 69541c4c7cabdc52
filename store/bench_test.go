package store

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"
)

// BenchmarkDB_WriteBatch stores batches of 32 new images with one
// 4096-d vector each (VGG-16 fc2), i.e. 512 KiB of vectors per batch.
func BenchmarkDB_WriteBatch(b *testing.B) {
	ctx := context.Background()
	db, err := Open(b.TempDir()+"/features.db", Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	fs, err := db.EnsureFeatureSet(ctx, FeatureSet{ModelSHA256: shaOf("m"), ModelName: "vgg16", Layer: "fc7",
		Pooling: PoolNone, Preprocess: "{}", Shape: "4096", Dim: 4096})
	if err != nil {
		b.Fatal(err)
	}
	v := vecOf(1, fs.ID, fs.Dim)
	const batch = 32
	n := 0
	b.SetBytes(batch * 4096 * 4)
	for b.Loop() {
		var bt Batch
		for range batch {
			c := fmt.Sprint("img", n)
			n++
			it := item(c, []string{"/data/cat/" + c + ".jpg"})
			it.Vectors = []Vector{{FeatureSetID: fs.ID, Data: v}}
			bt.Items = append(bt.Items, it)
		}
		if err := db.WriteBatch(ctx, 0, bt); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "images/s")
}

// BenchmarkDB_Vectors streams 2,000 stored 4096-d vectors.
func BenchmarkDB_Vectors(b *testing.B) {
	ctx := context.Background()
	db, err := Open(b.TempDir()+"/features.db", Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	fs, err := db.EnsureFeatureSet(ctx, FeatureSet{ModelSHA256: shaOf("m"), ModelName: "vgg16", Layer: "fc7",
		Pooling: PoolNone, Preprocess: "{}", Shape: "4096", Dim: 4096})
	if err != nil {
		b.Fatal(err)
	}
	const images = 2000
	v := vecOf(1, fs.ID, fs.Dim)
	for i := 0; i < images; i += 100 {
		var bt Batch
		for j := i; j < i+100; j++ {
			c := fmt.Sprint("img", j)
			it := item(c, []string{"/data/cat/" + c + ".jpg"})
			it.Vectors = []Vector{{FeatureSetID: fs.ID, Data: v}}
			bt.Items = append(bt.Items, it)
		}
		if err := db.WriteBatch(ctx, 0, bt); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(images * 4096 * 4)
	for b.Loop() {
		n := 0
		if err := db.Vectors(ctx, fs.ID, func(VectorRow) error { n++; return nil }); err != nil || n != images {
			b.Fatalf("%d rows, %v", n, err)
		}
	}
}

// BenchmarkDB_LookupPath is the per-file cost of deciding to skip a file.
func BenchmarkDB_LookupPath(b *testing.B) {
	ctx := context.Background()
	db, err := Open(b.TempDir()+"/features.db", Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	var bt Batch
	for j := range 1000 {
		c := fmt.Sprint("img", j)
		bt.Items = append(bt.Items, item(c, []string{"/data/cat/" + c + ".jpg"}))
	}
	if err := db.WriteBatch(ctx, 0, bt); err != nil {
		b.Fatal(err)
	}
	i := 0
	for b.Loop() {
		if _, ok, err := db.LookupPath(ctx, fmt.Sprintf("/data/cat/img%d.jpg", i%1000)); err != nil || !ok {
			b.Fatal(ok, err)
		}
		i++
	}
}

// BenchmarkDB_OpenWriter is a writing Open (quick_check of the whole file
// included) and Close (checkpoint) of a database of 4,000 4096-d vectors
// (64 MiB of vectors), from the page cache.
func BenchmarkDB_OpenWriter(b *testing.B) {
	ctx := context.Background()
	path := b.TempDir() + "/features.db"
	db, err := Open(path, Options{})
	if err != nil {
		b.Fatal(err)
	}
	fs, err := db.EnsureFeatureSet(ctx, FeatureSet{ModelSHA256: shaOf("m"), ModelName: "vgg16", Layer: "fc7",
		Pooling: PoolNone, Preprocess: "{}", Shape: "4096", Dim: 4096})
	if err != nil {
		b.Fatal(err)
	}
	const images = 4000
	for i := 0; i < images; i += 100 {
		var bt Batch
		for j := i; j < i+100; j++ {
			c := fmt.Sprint("img", j)
			it := item(c, []string{"/data/cat/" + c + ".jpg"})
			it.Vectors = []Vector{{FeatureSetID: fs.ID, Data: vecOf(j, fs.ID, fs.Dim)}}
			bt.Items = append(bt.Items, it)
		}
		if err := db.WriteBatch(ctx, 0, bt); err != nil {
			b.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		db, err := Open(path, Options{})
		if err != nil {
			b.Fatal(err)
		}
		if err := db.Close(); err != nil {
			b.Fatal(err)
		}
	}
	if fi, err := os.Stat(path); err == nil {
		b.ReportMetric(float64(fi.Size())/(1<<20), "MiB")
	}
	// The part of it that is quick_check.
	db, err = Open(path, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	start := time.Now()
	const n = 5
	for range n {
		if err := db.refuseCorrupt(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(time.Since(start).Milliseconds())/n, "quick_check-ms")
}
