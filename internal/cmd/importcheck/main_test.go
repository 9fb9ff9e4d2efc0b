package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCheck(t *testing.T) {
	m := module + "/"
	for _, tc := range []struct {
		name string
		pkg  pkg
		want string // a part of the broken rule's line; "" for none
	}{
		{"crdt with stdlib math", pkg{m + "crdt", []string{"errors", "math"}}, ""},
		{"crdt with the clock", pkg{m + "crdt", []string{"time"}}, "crdt is pure"},
		{"crdt with the agent", pkg{m + "crdt", []string{m + "agent"}}, "crdt is pure"},
		{"crdt with the agent, a cycle", pkg{m + "crdt", []string{m + "agent"}}, "imported only by commands"},
		{"hub with the agent", pkg{m + "sync/hub", []string{m + "agent"}}, "the hub never imports the agent"},
		{"hub with the store", pkg{m + "sync/hub", []string{m + "internal/store"}}, ""},
		{"drivers with the store", pkg{m + "drivers/pos", []string{m + "internal/store"}}, "drivers turn payloads"},
		{"drivers with sync", pkg{m + "drivers", []string{m + "sync"}}, "drivers turn payloads"},
		{"cmd with the agent", pkg{m + "cmd/edgestock", []string{m + "agent"}}, ""},
		{"a bench harness with the agent", pkg{m + "internal/cmd/scalebench", []string{m + "agent/sites"}}, ""},
		{"internal with the hub", pkg{m + "internal/ingest", []string{m + "sync/hub"}}, "imports no role"},
		{"test support with the agent", pkg{m + "agent/agenttest", []string{m + "agent"}}, ""},
		{"ingest with the agent", pkg{m + "internal/ingest", []string{m + "agent"}}, "imported only by commands"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := json.Marshal(tc.pkg)
			require.NoError(t, err)
			broken := check(json.NewDecoder(strings.NewReader(string(b))))
			if tc.want == "" {
				require.Empty(t, broken)
				return
			}
			require.NotEmpty(t, broken)
			require.Contains(t, strings.Join(broken, "\n"), tc.want)
		})
	}
}
