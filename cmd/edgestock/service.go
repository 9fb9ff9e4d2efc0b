package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/kardianos/service"
)

// Service defaults on Linux: a dedicated user and systemd's StateDirectory,
// so each role's data lives in /var/lib/edgestock/{role} (the one place
// the docs and the package use) and belongs to that user.
const (
	serviceUser     = "edgestock"
	serviceStateDir = "/var/lib/edgestock"
	restartDelay    = 2 * time.Second  // kardianos' own unit waits 120 s
	stopTimeout     = 30 * time.Second // bounded: a graceful stop takes at most 15 s
)

// serviceName is the unit / Windows service name of a role.
func serviceName(role string) string { return "edgestock-" + role }

// serviceDataDir is where a role keeps its data when run as a service.
func serviceDataDir(role string) string {
	if runtime.GOOS == "windows" {
		base := os.Getenv("ProgramData")
		if base == "" {
			base = `C:\ProgramData`
		}
		return filepath.Join(base, "edgestock", role)
	}
	return filepath.Join(serviceStateDir, role)
}

// serviceArgs are the command line the service manager runs.
func serviceArgs(role, configPath string) []string {
	args := []string{role, "--data-dir", serviceDataDir(role)}
	if configPath != "" {
		args = append(args, "--config", configPath)
	}
	return args
}

// systemdUnit is our own unit: restart on a runtime failure after 2 s but
// not on exit code 2 (bad usage or config: restarting cannot fix it, and
// the log keeps the message instead of a restart loop), a dedicated user,
// the state directory created by systemd, a bounded stop.
func systemdUnit(role, executable string, args []string) string {
	quoted := make([]string, len(args))
	for i, a := range args {
		quoted[i] = `"` + strings.ReplaceAll(a, `"`, `\"`) + `"`
	}
	return fmt.Sprintf(`[Unit]
Description=edgestock %[1]s: offline-first inventory sync
Documentation=https://github.com/edgestock/edgestock
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
ExecStart=%[2]s %[3]s
User=%[4]s
Group=%[4]s
StateDirectory=edgestock edgestock/%[1]s
StateDirectoryMode=0750
WorkingDirectory=%[5]s
Restart=on-failure
RestartPreventExitStatus=%[8]d
RestartSec=%[6]d
TimeoutStopSec=%[7]d
KillSignal=SIGTERM
LimitNOFILE=65536
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes

[Install]
WantedBy=multi-user.target
`, role, executable, strings.Join(quoted, " "), serviceUser, serviceStateDir+"/"+role, int(restartDelay/time.Second), int(stopTimeout/time.Second), exitUsage)
}

// serviceConfig is the kardianos configuration of a role.
func serviceConfig(role, configPath, executable string) *service.Config {
	args := serviceArgs(role, configPath)
	return &service.Config{
		Name:        serviceName(role),
		DisplayName: "edgestock " + role,
		Description: "edgestock " + role + ": offline-first inventory sync",
		Executable:  executable,
		Arguments:   args,
		Option: service.KeyValue{
			"SystemdScript": systemdUnit(role, executable, args),
			// Windows: restart on failure, explicitly (kardianos installs no
			// recovery actions otherwise); non-crash failures too, see
			// setNonCrashRecovery.
			"OnFailure":              "restart",
			"OnFailureDelayDuration": restartDelay.String(),
			"OnFailureResetPeriod":   86400,
			"StartType":              "automatic",
			"DelayedAutoStart":       true,
		},
	}
}

// noopProgram satisfies kardianos for control commands; running as a
// service goes through runService.
type noopProgram struct{}

func (noopProgram) Start(service.Service) error { return nil }
func (noopProgram) Stop(service.Service) error  { return nil }

// runService is `edgestock service install|uninstall|start|stop|restart|status`.
func (m *Main) runService(c *command, action string, args []string) error {
	fs := m.flagSet(c)
	role := fs.String("role", "agent", "agent or hub")
	configPath := fs.String("config", "", "the config file the service runs with (absolute path)")
	if _, err := m.parse(fs, c, args); err != nil {
		return err
	}
	if *role != "agent" && *role != "hub" {
		return usageError{fmt.Errorf("service: --role %q must be agent or hub", *role)}
	}
	if *configPath != "" {
		abs, err := filepath.Abs(*configPath)
		if err != nil {
			return usageError{err}
		}
		*configPath = abs
	}
	if sys := service.ChosenSystem(); runtime.GOOS == "linux" && (sys == nil || !strings.Contains(sys.String(), "systemd")) {
		found := "none"
		if sys != nil {
			found = sys.String()
		}
		return fmt.Errorf("service %s: systemd is not running on this machine (service manager found: %s). "+
			"edgestock installs a systemd unit; elsewhere run 'edgestock %s' under your own supervisor", action, found, *role)
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	svc, err := service.New(noopProgram{}, serviceConfig(*role, *configPath, exe))
	if err != nil {
		return fmt.Errorf("service: %w", explainServiceError(err))
	}
	switch action {
	case "status":
		st, err := svc.Status()
		if err != nil {
			return fmt.Errorf("service %s: %w", serviceName(*role), explainServiceError(err))
		}
		fmt.Fprintf(m.Stdout, "%s: %s\n", serviceName(*role), map[service.Status]string{
			service.StatusRunning: "running", service.StatusStopped: "stopped", service.StatusUnknown: "unknown"}[st])
		return nil
	case "install", "uninstall", "start", "stop", "restart":
		if err := service.Control(svc, action); err != nil {
			return fmt.Errorf("service %s %s: %w", action, serviceName(*role), explainServiceError(err))
		}
		if action == "install" {
			if err := setNonCrashRecovery(serviceName(*role)); err != nil {
				return fmt.Errorf("service install: recovery actions: %w", err)
			}
		}
		done := map[string]string{"install": "installed", "uninstall": "uninstalled", "start": "started", "stop": "stopped", "restart": "restarted"}[action]
		fmt.Fprintf(m.Stdout, "%s: %s\n", serviceName(*role), done)
		return nil
	}
	return usageError{fmt.Errorf("service: unknown action %q", action)}
}

// explainServiceError turns a service manager failure into advice.
func explainServiceError(err error) error {
	switch {
	case errors.Is(err, service.ErrNoServiceSystemDetected):
		return fmt.Errorf("no service manager found on this machine (systemd, SysV init, launchd or the Windows service manager): run 'edgestock agent' directly, or under your own supervisor")
	case errors.Is(err, service.ErrNotInstalled):
		return fmt.Errorf("not installed: run 'edgestock service install' first")
	}
	return err
}

// serviceProgram runs a role under a service manager that speaks its own
// protocol (the Windows service manager): Start runs Main.Run in the
// background, Stop cancels it and waits for the graceful shutdown.
type serviceProgram struct {
	m      *Main
	args   []string
	cancel func()
	done   chan int
}

func (p *serviceProgram) Start(service.Service) error {
	ctx, cancel := signalContext()
	p.cancel, p.done = cancel, make(chan int, 1)
	go func() { p.done <- p.m.Run(ctx, p.args) }()
	return nil
}

func (p *serviceProgram) Stop(service.Service) error {
	p.cancel()
	select {
	case code := <-p.done:
		if code != exitOK {
			return fmt.Errorf("exit code %d", code)
		}
	case <-time.After(stopTimeout):
		return errors.New("graceful stop timed out")
	}
	return nil
}

// runUnderServiceManager runs args through kardianos when the Windows
// service manager started the process; it reports false elsewhere.
func runUnderServiceManager(m *Main, args []string) (handled bool, code int) {
	if runtime.GOOS != "windows" || service.Interactive() || len(args) == 0 {
		return false, 0
	}
	p := &serviceProgram{m: m, args: args}
	svc, err := service.New(p, &service.Config{Name: serviceName(args[0])})
	if err == nil {
		err = svc.Run()
	}
	if err != nil {
		fmt.Fprintf(m.Stderr, "edgestock: %v\n", err)
		return true, exitFailure
	}
	return true, exitOK
}
