package main

import (
	"fmt"
	"os"
	"os/exec"

	"github.com/edgestock/edgestock/internal/mosquitto"
)

// child is a process this program started (an agent, redis-server, or
// this program as a reference): stopped by its own handle, never by name.
type child struct {
	cmd    *exec.Cmd
	exited chan struct{} // closed once it exited
}

// startChild starts cmd in a process group of its own and notes when it
// exits.
func startChild(cmd *exec.Cmd) (*child, error) {
	cmd.SysProcAttr = mosquitto.ChildAttrs()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &child{cmd: cmd, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(c.exited) }()
	return c, nil
}

// startSelf runs this program as the child env names (runChild).
func startSelf(env string) (*child, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), env)
	cmd.Stderr = os.Stderr
	c, err := startChild(cmd)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", env, err)
	}
	return c, nil
}

// kill ends the child at once if it still runs, and waits for it.
func (c *child) kill() {
	select {
	case <-c.exited:
		return
	default:
	}
	_ = c.cmd.Process.Kill()
	<-c.exited
}
