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
	ctx, stop := signalContext()
	code := (&Main{Stdout: os.Stdout, Stderr: os.Stderr}).Run(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}

// signalContext is cancelled by SIGINT or SIGTERM.
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}
