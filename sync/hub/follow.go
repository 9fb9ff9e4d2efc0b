package hub

import (
	"context"
	"time"

	"github.com/edgestock/edgestock/internal/sse"
	"github.com/edgestock/edgestock/internal/store"
)

// followWait is how long a follower waits before trying again: for the
// lock another process holds (PostgreSQL), or after a failing store.
const followWait = 2 * time.Second

// exclusive is what a store shared by several hub processes offers so
// that one process runs each follower (pgstore).
type exclusive interface {
	Exclusive(ctx context.Context, name string) (release func(), ok bool, err error)
}

// follower is a durable consumer of the hub's changes: the webhooks and
// the publishing to a broker. While this process holds key (on
// PostgreSQL; on SQLite always), it reads pages of src past the cursor
// saved under the meta key key, hands each page with events to handle,
// and saves the cursor after it, with the merges handle returns, in one
// transaction. A page handle fails is read again: nothing is skipped.
type follower struct {
	api    *API
	store  webhookStore
	key    string
	src    sourceOptions
	handle func(ctx context.Context, events []sse.Event, next string) ([]*store.MergeOp, error)
	// Optional: told when this process starts and stops following, of a
	// run's error, and of each cursor saved.
	active func(bool)
	failed func(error)
	saved  func(cursor string)
}

// run follows until ctx ends.
func (f follower) run(ctx context.Context) {
	for ctx.Err() == nil {
		release := func() {}
		if ex, ok := f.store.(exclusive); ok {
			r, held, err := ex.Exclusive(ctx, f.key)
			if err != nil || !held {
				if err != nil {
					f.fail(err)
				}
				pause(ctx, followWait)
				continue
			}
			release = r
		}
		f.setActive(true)
		err := f.follow(ctx)
		f.setActive(false)
		release()
		if err != nil && ctx.Err() == nil {
			f.fail(err)
			pause(ctx, followWait) // a failing store: not a busy loop
		}
	}
}

// follow handles pages from the saved cursor until an error or ctx ends.
func (f follower) follow(ctx context.Context) error {
	cursor, err := f.store.Meta(ctx, f.key)
	if err != nil {
		return err
	}
	src := f.api.changeSource(f.src)
	for {
		changed := f.api.Hub.changed.Wait()
		events, next, more, err := src(ctx, cursor)
		if err == sse.ErrReset {
			events, next, more, err = nil, "", true, nil // another database's cursor: from the start
		}
		if err != nil {
			return err
		}
		save := []*store.MergeOp{{Cursor: next, CursorKey: f.key, Now: time.Now()}}
		if len(events) > 0 {
			extra, err := f.handle(ctx, events, next)
			if err != nil {
				return err
			}
			save = append(save, extra...)
		}
		if next != cursor || len(save) > 1 {
			if _, err := f.store.Apply(ctx, &store.Batch{Merges: save}); err != nil {
				return err
			}
			cursor = next
			if f.saved != nil {
				f.saved(next)
			}
		}
		if more {
			continue
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		}
	}
}

func (f follower) fail(err error) {
	if f.failed != nil {
		f.failed(err)
	}
}

func (f follower) setActive(on bool) {
	if f.active != nil {
		f.active(on)
	}
}

// pause waits d or until ctx ends.
func pause(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
