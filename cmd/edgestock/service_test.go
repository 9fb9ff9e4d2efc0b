package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSystemdUnit(t *testing.T) {
	unit := systemdUnit("agent", "/usr/bin/edgestock", serviceArgs("agent", "/etc/edgestock/agent.yaml"))
	for _, line := range []string{
		`ExecStart=/usr/bin/edgestock "agent" "--data-dir" "/var/lib/edgestock/agent" "--config" "/etc/edgestock/agent.yaml"`,
		"Restart=on-failure",
		"RestartPreventExitStatus=2", // bad usage or config: a restart cannot fix it
		"WorkingDirectory=/var/lib/edgestock/agent",
		"RestartSec=2",
		"User=edgestock",
		"StateDirectory=edgestock edgestock/agent",
		"TimeoutStopSec=30",
		"WantedBy=multi-user.target",
	} {
		require.Contains(t, strings.Split(unit, "\n"), line)
	}
	require.NotContains(t, unit, "{{", "kardianos renders the unit as a template: ours has no actions")
}

func TestServiceConfig_WindowsRecovery(t *testing.T) {
	cfg := serviceConfig("hub", "", `C:\edgestock\edgestock.exe`)
	require.Equal(t, "edgestock-hub", cfg.Name)
	require.Equal(t, "restart", cfg.Option["OnFailure"], "recovery actions are installed only when set explicitly")
	require.Equal(t, "2s", cfg.Option["OnFailureDelayDuration"])
	require.Equal(t, []string{"hub", "--data-dir", serviceDataDir("hub")}, cfg.Arguments)
}

// On a machine without systemd (this one, CI) status says what is wrong.
func TestService_StatusWithoutServiceManager(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := (&Main{Stdout: &stdout, Stderr: &stderr}).Run(t.Context(), []string{"service", "status"})
	out := stdout.String() + stderr.String()
	require.NotContains(t, out, "goroutine", "no stack trace")
	if code == exitOK {
		require.Regexp(t, `^edgestock-agent: (running|stopped|unknown)\n$`, stdout.String())
		return
	}
	require.Equal(t, exitFailure, code)
	require.Regexp(t, `systemd is not running on this machine|no service manager found|not installed`, stderr.String())
	t.Logf("service status here: %s", strings.TrimSpace(stderr.String()))

	stderr.Reset()
	code = (&Main{Stdout: &stdout, Stderr: &stderr}).Run(t.Context(), []string{"service", "status", "--role", "db"})
	require.Equal(t, exitUsage, code)
}
