// Command edgestock is the edgestock agent and hub in one binary.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	_ "github.com/edgestock/edgestock/drivers/all" // every built-in driver
)

func main() {
	m := &Main{Stdout: os.Stdout, Stderr: os.Stderr}
	if handled, code := runUnderServiceManager(m, os.Args[1:]); handled {
		os.Exit(code)
	}
	ctx, stop := signalContext()
	code := m.Run(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}

// signalContext is cancelled by SIGINT or SIGTERM.
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}
