package agent_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/edgestock/edgestock/agent"
)

// GET /v1/devices: what each device sent since start, seen last first.
func TestDevices_Activity(t *testing.T) {
	a := startAgent(t, t.TempDir(), nil)
	post := func(device, body string) {
		t.Helper()
		status, _ := a.Post(t, "/v1/events?device="+device, body)
		require.Equal(t, http.StatusOK, status)
	}
	post("scan-1", `[{"id":"a1","type":"receive","sku":"D-1","qty":3},{"id":"a2","type":"steal","sku":"D-1","qty":1}]`)
	post("scan-1", `{"id":"a1","type":"receive","sku":"D-1","qty":3}`) // a resend
	post("till-2", `{"id":"b1","type":"sale","sku":"D-1","qty":1}`)

	var got struct {
		Devices []agent.DeviceActivity `json:"devices"`
		More    bool                   `json:"more"`
	}
	require.Equal(t, http.StatusOK, a.Get(t, "/v1/devices", &got))
	require.Len(t, got.Devices, 2)
	till, scan := got.Devices[0], got.Devices[1]
	require.Equal(t, "till-2", till.Device, "seen last first")
	require.Equal(t, agent.DeviceActivity{Device: "till-2", Source: "http", LastSeen: till.LastSeen, Applied: 1}, till)
	require.Equal(t, agent.DeviceActivity{Device: "scan-1", Source: "http", LastSeen: scan.LastSeen,
		Applied: 1, Duplicates: 1, Rejected: 1, LastReject: "unknown_type"}, scan)
	require.False(t, till.LastSeen.Before(scan.LastSeen))

	require.Equal(t, http.StatusOK, a.Get(t, "/v1/devices?prefix=scan&limit=1", &got))
	require.Len(t, got.Devices, 1)
	require.Equal(t, "scan-1", got.Devices[0].Device)
	require.False(t, got.More)
	require.Equal(t, http.StatusOK, a.Get(t, "/v1/devices?limit=1", &got))
	require.True(t, got.More)
	require.Equal(t, http.StatusBadRequest, a.Get(t, "/v1/devices?limit=0", nil))
}
