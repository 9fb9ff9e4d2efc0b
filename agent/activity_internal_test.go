package agent

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/edgestock/edgestock/internal/ingest"
)

// The table is bounded: past maxDevicesSeen the device seen longest ago
// goes, however many ids a flood makes up.
func TestActivity_Bounded(t *testing.T) {
	var tab activity
	at := time.Unix(0, 0)
	ok := []ingest.Result{{Status: ingest.StatusApplied}}
	for i := range maxDevicesSeen + 50 {
		tab.observe(fmt.Sprint("d", i), "mqtt", ok, at.Add(time.Duration(i)*time.Second))
	}
	list := tab.list("")
	require.Len(t, list, maxDevicesSeen)
	require.Equal(t, fmt.Sprint("d", maxDevicesSeen+49), list[0].Device)
	require.Equal(t, "d50", list[len(list)-1].Device, "the 50 seen first were forgotten")
	tab.observe("", "mqtt", ok, at) // no device: nothing to record
	require.Len(t, tab.list(""), maxDevicesSeen)
}
