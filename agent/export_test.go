package agent

import "context"

// TopUpNow runs one top-up pass at once (tests).
func (a *Agent) TopUpNow(ctx context.Context) {
	if t := a.topUp.Load(); t != nil {
		t.pass(ctx)
	}
}
