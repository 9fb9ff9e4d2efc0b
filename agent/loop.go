package agent

import (
	"context"
	"sync"
	"time"
)

// loop runs a task every interval on a goroutine it owns, until Stop.
type loop struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// every starts fn every interval (the first run one interval from now).
func every(interval time.Duration, fn func(context.Context)) *loop {
	ctx, cancel := context.WithCancel(context.Background())
	l := &loop{cancel: cancel}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				fn(ctx)
			}
		}
	}()
	return l
}

// Stop ends the loop and waits for a run in progress; a nil loop is fine.
func (l *loop) Stop() {
	if l != nil {
		l.cancel()
		l.wg.Wait()
	}
}
