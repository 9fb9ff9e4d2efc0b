package agent

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/edgestock/edgestock/internal/ingest"
)

// The table is bounded: past maxDevicesSeen the devices seen longest ago
// go, however many ids a flood makes up.
func TestActivity_Bounded(t *testing.T) {
	var tab activity
	at := time.Unix(0, 0)
	ok := []ingest.Result{{Status: ingest.StatusApplied}}
	for i := range maxDevicesSeen + 50 {
		tab.observe(fmt.Sprint("d", i), "mqtt", ok, at.Add(time.Duration(i)*time.Second))
	}
	list := tab.list("")
	require.LessOrEqual(t, len(list), maxDevicesSeen)
	require.Equal(t, fmt.Sprint("d", maxDevicesSeen+49), list[0].Device, "the newest stays")
	require.Equal(t, fmt.Sprint("d", maxDevicesSeen/10), list[len(list)-1].Device, "the tenth seen first was forgotten")
	n := len(list)
	tab.observe("", "mqtt", ok, at) // no device: nothing to record
	require.Len(t, tab.list(""), n)
}
