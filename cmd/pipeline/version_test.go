package main

import (
	"runtime/debug"
	"testing"
)

func TestDescribeVersion(t *testing.T) {
	vcs := &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "0123456789abcdef0123"}, {Key: "vcs.modified", Value: "true"}}}
	for _, c := range []struct {
		name, v, rev string
		bi           *debug.BuildInfo
		want         string
	}{
		{"LdflagsWithoutVCS", "v1.2.0", "fedcba9876543210+dirty", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, "v1.2.0 (fedcba987654+dirty)"},
		{"LdflagsRevisionOnly", "dev", "fedcba9876543210", nil, "dev (fedcba987654)"},
		{"GoVCSStamp", "dev", "", vcs, "dev (0123456789ab+dirty)"},
		{"ModuleVersion", "dev", "", &debug.BuildInfo{Main: debug.Module{Version: "v0.3.1"}}, "v0.3.1"},
		{"Nothing", "dev", "", nil, "dev"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := describeVersion(c.v, c.rev, c.bi); got != c.want {
				t.Errorf("got %q, want %q", got, c.want)
			}
		})
	}
}
