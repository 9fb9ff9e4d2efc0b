package main

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

// mosquittoConf is the broker configuration of internal/testenv: queues
// large enough that nothing a run sends is dropped (mosquitto's defaults
// drop past 1,000 queued messages per session), no disk persistence.
const mosquittoConf = `listener %s 127.0.0.1
allow_anonymous true
persistence false
max_queued_messages 200000
max_inflight_messages 1000
max_packet_size 1048576
set_tcp_nodelay true
`

// mosquitto is a broker process owned by the benchmark.
type mosquitto struct {
	addr   string
	cmd    *exec.Cmd
	exited chan struct{}
}

// mosquittoBinary finds mosquitto on PATH or where Debian puts it.
func mosquittoBinary() (string, error) {
	if p, err := exec.LookPath("mosquitto"); err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", errors.New("mosquitto not found on PATH, in /usr/sbin or in /usr/local/sbin")
}

// mosquittoVersion is the first line of `mosquitto -h`, e.g.
// "mosquitto version 2.0.11". mosquitto exits non-zero after printing its
// usage, so only the output counts.
func mosquittoVersion() string {
	bin, err := mosquittoBinary()
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

// startMosquitto runs mosquitto on a free loopback port, retrying a few
// times in case another process takes the port first.
func startMosquitto(dir string) (*mosquitto, error) {
	bin, err := mosquittoBinary()
	if err != nil {
		return nil, err
	}
	for range 3 {
		addr, err := freeAddr()
		if err != nil {
			return nil, err
		}
		_, port, _ := net.SplitHostPort(addr)
		conf := filepath.Join(dir, "mosquitto.conf")
		if err := os.WriteFile(conf, fmt.Appendf(nil, mosquittoConf, port), 0o644); err != nil {
			return nil, err
		}
		cmd := exec.Command(bin, "-c", conf)
		cmd.SysProcAttr = childAttrs()
		if err := cmd.Start(); err != nil {
			return nil, fmt.Errorf("start mosquitto: %w", err)
		}
		m := &mosquitto{addr: addr, cmd: cmd, exited: make(chan struct{})}
		go func() { _ = cmd.Wait(); close(m.exited) }()
		if waitDial(addr, 5*time.Second) {
			return m, nil
		}
		m.stop()
	}
	return nil, errors.New("mosquitto did not start listening (3 attempts)")
}

// url is the broker's mqtt:// URL.
func (m *mosquitto) url() string { return "mqtt://" + m.addr }

// stop kills the broker and waits for it; calling it again does nothing.
func (m *mosquitto) stop() {
	select {
	case <-m.exited:
		return
	default:
	}
	_ = m.cmd.Process.Kill()
	<-m.exited
}

// freeAddr returns a loopback address with a port that was free a moment
// ago.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := ln.Addr().String()
	return addr, ln.Close()
}

// waitDial reports whether addr accepts TCP connections within d.
func waitDial(addr string, d time.Duration) bool {
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
