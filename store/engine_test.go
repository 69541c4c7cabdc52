package store

import (
	"context"
	"testing"
)

// TestEnsureFeatureSet_Engine: the engine is part of a set's key: the same
// model, layer, pooling, preprocessing and precision on oneDNN is another
// set, and bf16 another again; an unknown engine is refused.
func TestEnsureFeatureSet_Engine(t *testing.T) {
	db := newDB(t)
	ctx := context.Background()
	base := FeatureSet{ModelSHA256: shaOf("m"), ModelName: "resnet50", Layer: "avg", Pooling: PoolAvg,
		Preprocess: `{"size":[224,224]}`, Shape: "2048", Dim: 2048}
	cv, err := db.EnsureFeatureSet(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	dn := base
	dn.Engine = EngineOneDNN
	got, err := db.EnsureFeatureSet(ctx, dn)
	if err != nil {
		t.Fatal(err)
	}
	bf := dn
	bf.Precision = "bf16"
	got2, err := db.EnsureFeatureSet(ctx, bf)
	if err != nil {
		t.Fatal(err)
	}
	if cv.Engine != EngineOpenCV || got.Engine != EngineOneDNN || got.ID == cv.ID || got2.ID == got.ID || got2.Precision != "bf16" {
		t.Errorf("sets %+v / %+v / %+v: want three sets, opencv then onednn fp32 and bf16", cv, got, got2)
	}
	again, err := db.EnsureFeatureSet(ctx, dn)
	if err != nil || again.ID != got.ID {
		t.Errorf("EnsureFeatureSet(onednn) again = %+v, %v; want set %d", again, err, got.ID)
	}
	if s := got.String(); s != "#2 resnet50 avg (avg, avg, fp32 onednn, 2048-d)" {
		t.Errorf("String = %q", s)
	}
	bad := base
	bad.Engine = "tvm"
	if _, err := db.EnsureFeatureSet(ctx, bad); err == nil {
		t.Error("engine tvm accepted")
	}
	release, err := db.Lock(ctx, 0, Holder{Command: "pipeline extract"})
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	run, err := db.StartRun(ctx, "extract", []string{"extract"})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.SetRunEngine(ctx, run, EngineOneDNN); err != nil {
		t.Fatal(err)
	}
	r, err := db.Run(ctx, run)
	if err != nil || r.Engine != EngineOneDNN {
		t.Errorf("run = %+v, %v; want engine onednn", r, err)
	}
}
