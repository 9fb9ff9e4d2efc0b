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

// distinct tells a loop's errors apart from the one before, so a run that
// keeps failing the same way logs it once, and again once the error
// changes or after a success.
type distinct struct{ last string }

// changed reports whether err (nil: a success) is an error unlike the last.
func (d *distinct) changed(err error) bool {
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	changed := msg != "" && msg != d.last
	d.last = msg
	return changed
}
