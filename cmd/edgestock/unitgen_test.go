package main

import (
	"flag"
	"os"
	"testing"

	"github.com/stretchr/testify/require"
)

var updateUnits = flag.Bool("update-units", false, "rewrite packaging/*.service from systemdUnit")

// The packaged units are systemdUnit's output for the packaged paths; this
// test keeps them in step (go test ./cmd/edgestock -run Packaged -update-units).
func TestPackagedUnits(t *testing.T) {
	for _, role := range []string{"agent", "hub"} {
		want := systemdUnit(role, "/usr/bin/edgestock", serviceArgs(role, "/etc/edgestock/"+role+".yaml"))
		path := "../../packaging/edgestock-" + role + ".service"
		if *updateUnits {
			require.NoError(t, os.WriteFile(path, []byte(want), 0o644))
		}
		got, err := os.ReadFile(path)
		require.NoError(t, err)
		require.Equal(t, want, string(got), "%s is stale: run with -update-units", path)
	}
}
