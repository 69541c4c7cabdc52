package extract

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// The graph cache keeps OpenCV's description of a model's layer graph
// (cvx_net_describe for a batch-1 input), so that the oneDNN engine, which
// needs only the description, does not make OpenCV import the whole model
// (and its weights: most of a large model's load time and peak memory)
// again. The key is the model's SHA-256, the input name and size, and the
// OpenCV version; a file that cannot be read or parsed is ignored and
// rewritten.
func graphCachePath(m Model) string {
	if m.SHA256 == "" || m.Format != "onnx" {
		return ""
	}
	dir, err := CacheDir()
	if err != nil {
		return ""
	}
	name := fmt.Sprintf("%s-%s-%dx%d-%s.json", m.SHA256, m.Input, m.Preprocess.Width, m.Preprocess.Height, OpenCVVersion())
	return filepath.Join(dir, "graphs", name)
}

type cachedRawLayer struct {
	ID     int     `json:"id"`
	Name   string  `json:"name"`
	Type   string  `json:"type"`
	Inputs []int   `json:"inputs"`
	Shapes [][]int `json:"shapes"`
	Info   string  `json:"info"`
}

// cachedGraph returns the model's graph from the cache, or nil.
func cachedGraph(m Model) *Graph {
	path := graphCachePath(m)
	if path == "" {
		return nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var cl []cachedRawLayer
	if err := json.Unmarshal(b, &cl); err != nil || len(cl) == 0 {
		return nil
	}
	raw := make([]rawLayer, len(cl))
	for i, l := range cl {
		raw[i] = rawLayer(l)
	}
	g, err := graphOf(m, raw)
	if err != nil {
		return nil
	}
	return g
}

// saveGraph writes OpenCV's description to the cache (best effort: a
// read-only cache only costs time).
func saveGraph(m Model, raw []rawLayer) {
	path := graphCachePath(m)
	if path == "" {
		return
	}
	cl := make([]cachedRawLayer, len(raw))
	for i, l := range raw {
		cl[i] = cachedRawLayer(l)
	}
	b, err := json.Marshal(cl)
	if err != nil || os.MkdirAll(filepath.Dir(path), 0o755) != nil {
		return
	}
	tmp := fmt.Sprintf("%s.%d.tmp", path, os.Getpid())
	if os.WriteFile(tmp, b, 0o644) == nil {
		if os.Rename(tmp, path) != nil {
			os.Remove(tmp)
		}
	}
}
