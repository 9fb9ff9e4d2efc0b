// Package mosquitto runs a mosquitto broker process on a free loopback port
// for tests and the benchmark harness.
package mosquitto

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// conf keeps queues
// large enough that nothing a run sends is dropped (mosquitto's defaults
// drop past 1,000 queued messages per session), no disk persistence.
const conf = `listener %s 127.0.0.1
allow_anonymous true
persistence false
max_queued_messages 200000
max_inflight_messages 1000
max_packet_size 1048576
set_tcp_nodelay true
`

// Broker is a mosquitto process owned by its starter.
type Broker struct {
	Addr   string // host:port
	cmd    *exec.Cmd
	exited chan struct{}
}

// ErrNotInstalled is returned when no mosquitto binary is found.
var ErrNotInstalled = errors.New("mosquitto not found on PATH, in /usr/sbin or in /usr/local/sbin")

// Binary finds mosquitto on PATH or where Debian puts it.
func Binary() (string, error) {
	if p, err := exec.LookPath("mosquitto"); err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", ErrNotInstalled
}

// Version is the first line of `mosquitto -h`, e.g.
// "mosquitto version 2.0.11". mosquitto exits non-zero after printing its
// usage, so only the output counts.
func Version() string {
	bin, err := Binary()
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	out, _ := exec.Command(bin, "-h").CombinedOutput()
	line, _, _ := strings.Cut(string(out), "\n")
	if line == "" {
		return "unknown"
	}
	return strings.TrimSpace(line)
}

// Start runs mosquitto on a free loopback port with its config in dir,
// retrying a few times in case another process takes the port first.
// listener are extra lines for its listener (TLS files, for instance).
func Start(dir string, listener ...string) (*Broker, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	for range 3 {
		addr, err := FreeAddr()
		if err != nil {
			return nil, err
		}
		_, port, _ := net.SplitHostPort(addr)
		path := filepath.Join(dir, "mosquitto.conf")
		text := fmt.Sprintf(conf, port) + strings.Join(listener, "\n") + "\n"
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			return nil, err
		}
		cmd := exec.Command(bin, "-c", path)
		cmd.SysProcAttr = ChildAttrs()
		if err := cmd.Start(); err != nil {
			return nil, fmt.Errorf("start mosquitto: %w", err)
		}
		m := &Broker{Addr: addr, cmd: cmd, exited: make(chan struct{})}
		go func() { _ = cmd.Wait(); close(m.exited) }()
		if WaitDial(addr, 5*time.Second) {
			return m, nil
		}
		m.Stop()
	}
	return nil, errors.New("mosquitto did not start listening (3 attempts)")
}

// Pid is the broker process's id.
func (m *Broker) Pid() int { return m.cmd.Process.Pid }

// URL is the broker's mqtt:// URL.
func (m *Broker) URL() string { return "mqtt://" + m.Addr }

// Stop kills the broker and waits for it; calling it again does nothing.
func (m *Broker) Stop() {
	select {
	case <-m.exited:
		return
	default:
	}
	_ = m.cmd.Process.Kill()
	<-m.exited
}

// FreeAddr returns a loopback address with a port that was free a moment
// ago.
func FreeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := ln.Addr().String()
	return addr, ln.Close()
}

// WaitDial reports whether addr accepts TCP connections within d.
func WaitDial(addr string, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			_ = c.Close()
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}
