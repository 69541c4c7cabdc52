package classify

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"reflect"
	"testing"
)

// TestJSON_StoredKeys: the snake_case form that migration 0007 rewrites
// stored rows to (store/testdata/json_keys_0007.json, "new") is exactly
// what Params, TransformSpec and GridPoint marshal to now: every key known
// (no unknown field), none missing (re-marshalling gives the same
// document). Renaming a tag fails here: it needs a migration of the stored
// rows and a note in docs/JSON.md.
func TestJSON_StoredKeys(t *testing.T) {
	b, err := os.ReadFile("../store/testdata/json_keys_0007.json")
	if err != nil {
		t.Fatal(err)
	}
	var cases []struct {
		Name   string          `json:"name"`
		Column string          `json:"column"`
		New    json.RawMessage `json:"new"`
	}
	if err := json.Unmarshal(b, &cases); err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			doc := c.New
			var v any
			switch c.Column {
			case "params":
				v = new(Params)
			case "transform":
				v = new(TransformSpec)
			case "metrics":
				var m struct {
					GridBest json.RawMessage `json:"grid_best"`
				}
				if err := json.Unmarshal(doc, &m); err != nil {
					t.Fatal(err)
				}
				if string(m.GridBest) == "null" {
					return
				}
				doc, v = m.GridBest, new(GridPoint)
			}
			dec := json.NewDecoder(bytes.NewReader(doc))
			dec.DisallowUnknownFields()
			if err := dec.Decode(v); err != nil {
				t.Fatalf("%s: %v", doc, err)
			}
			again, err := json.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			var want, got any
			json.Unmarshal(doc, &want)
			json.Unmarshal(again, &got)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("re-marshalled:\ngot  %s\nwant %s", again, doc)
			}
		})
	}
}

// TestGridPoint_JSONNaN: log2_gamma is null for a C-only grid and reads
// back as NaN.
func TestGridPoint_JSONNaN(t *testing.T) {
	b, err := json.Marshal(GridPoint{Stage: "coarse", Log2C: 1, C: 2, Log2Gamma: math.NaN()})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if v, ok := m["log2_gamma"]; !ok || v != nil {
		t.Errorf("log2_gamma = %v (present %v) in %s, want null", v, ok, b)
	}
	var back GridPoint
	if err := json.Unmarshal(b, &back); err != nil || !math.IsNaN(back.Log2Gamma) || back.C != 2 || back.Stage != "coarse" {
		t.Errorf("read back %+v, %v", back, err)
	}
}
