package main

import (
	"runtime/debug"
	"testing"
)

func TestVersionLine(t *testing.T) {
	tests := map[string]struct {
		bi   debug.BuildInfo
		want string
	}{
		"tagged release": {
			bi: debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.2.0"}, Settings: []debug.BuildSetting{
				{Key: "vcs.revision", Value: "ed0ab9810e170490cca2214806cb87ef8e432f01"},
				{Key: "vcs.time", Value: "2026-12-01T19:45:24Z"},
				{Key: "vcs.modified", Value: "false"},
			}},
			want: "herd v1.2.0, commit ed0ab9810e17 2026-12-01T19:45:24Z, go1.26.8, peer protocol " + peerVersion(),
		},
		"work tree with changes": {
			bi: debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v0.0.0-20261201194524-ed0ab9810e17+dirty"}, Settings: []debug.BuildSetting{
				{Key: "vcs.revision", Value: "ed0ab9810e170490cca2214806cb87ef8e432f01"},
				{Key: "vcs.modified", Value: "true"},
			}},
			want: "herd v0.0.0-20261201194524-ed0ab9810e17+dirty, commit ed0ab9810e17+changes, go1.26.8, peer protocol " + peerVersion(),
		},
		"built without VCS stamping": {
			bi:   debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}},
			want: "herd (devel), commit unknown, go1.26.8, peer protocol " + peerVersion(),
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			if got := versionLine(&tt.bi); got != tt.want {
				t.Fatalf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}
