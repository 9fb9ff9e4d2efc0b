package agent

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/edgestock/edgestock/drivers"
	"github.com/edgestock/edgestock/drivers/filedrop"
	"github.com/edgestock/edgestock/internal/ingest"
	"github.com/edgestock/edgestock/internal/store"
)

// Filedrop tuning.
const (
	// fileChunksInFlight is how many chunks of a file wait in the group
	// commit at once: enough to fill transactions, bounded so a huge file
	// does not crowd out devices.
	fileChunksInFlight = 4
	// fileScanInterval re-checks pending files for stability, and catches
	// anything a lost notification missed.
	fileScanInterval = 250 * time.Millisecond
)

// quarantineLog is what a re-read file needs from the store: what an
// earlier read of it already quarantined.
type quarantineLog interface {
	QuarantinedFrom(ctx context.Context, source, device string, since time.Time) ([]store.QuarantinedKey, error)
}

var _ quarantineLog = (*store.DB)(nil)

// fileScanner is what the watcher needs from the filedrop driver.
type fileScanner interface {
	Scan(msg drivers.Message, r io.Reader, fn func([]filedrop.Line) error) error
}

// fileDropper watches a folder for exports and ingests each complete file
// exactly once: a file is read only after its size and time stayed the
// same for the settle time; when every line is durable it moves to done/
// (or failed/ when the file as a whole is unreadable) with a report of the
// rejected lines. After a crash the file is still in the folder and is read
// again from the top: lines already applied are duplicates.
type fileDropper struct {
	cfg     FiledropConfig
	wh      string
	ingest  *ingest.Ingester
	scanner fileScanner
	logger  *slog.Logger
	// quarantine, when the store has one, keeps a file read again after a
	// crash from quarantining its rejected lines twice.
	quarantine quarantineLog

	watcher *fsnotify.Watcher
	cancel  context.CancelFunc
	wg      sync.WaitGroup

	// seen tracks candidate files: size and time at the last look, and since
	// when they stayed so.
	seen map[string]fileState
}

type fileState struct {
	size        int64
	modTime     time.Time
	stableSince time.Time
}

// FileReport is written next to a processed file as NAME.report.json.
type FileReport struct {
	File       string         `json:"file"`
	Lines      int            `json:"lines"`
	Applied    int            `json:"applied"`
	Duplicates int            `json:"duplicates"`
	Rejected   []RejectedLine `json:"rejected"`
	Error      string         `json:"error,omitempty"`
	Finished   time.Time      `json:"finished"`
}

// RejectedLine is one rejected line of a file.
type RejectedLine struct {
	Line    int            `json:"line"`
	ID      string         `json:"id,omitempty"`
	Reason  drivers.Reason `json:"reason"`
	Message string         `json:"message"`
}

// newFileDropper reads cfg.Dir's files into in; quarantine (nil: none) is
// where an interrupted read's rejected lines are looked up.
func newFileDropper(cfg FiledropConfig, warehouse string, in *ingest.Ingester, quarantine quarantineLog, logger *slog.Logger) (*fileDropper, error) {
	scanner, ok := in.Driver("filedrop").(fileScanner)
	if !ok {
		return nil, errors.New("no registered filedrop driver that can scan files")
	}
	for _, sub := range []string{"", "done", "failed"} {
		if err := os.MkdirAll(filepath.Join(cfg.Dir, sub), 0o750); err != nil {
			return nil, fmt.Errorf("filedrop.dir: %w", err)
		}
	}
	return &fileDropper{cfg: cfg, wh: warehouse, ingest: in, scanner: scanner, logger: logger, quarantine: quarantine,
		seen: map[string]fileState{}}, nil
}

// Open starts watching.
func (f *fileDropper) Open() error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("filedrop: %w", err)
	}
	if err := w.Add(f.cfg.Dir); err != nil {
		_ = w.Close()
		return fmt.Errorf("filedrop: watch %s: %w", f.cfg.Dir, err)
	}
	f.watcher = w
	ctx, cancel := context.WithCancel(context.Background())
	f.cancel = cancel
	f.wg.Add(1)
	go f.run(ctx)
	return nil
}

// Close stops watching; a file being read stops between chunks and is read
// again on the next start.
func (f *fileDropper) Close() error {
	if f.cancel == nil {
		return nil
	}
	f.cancel()
	f.wg.Wait()
	return f.watcher.Close()
}

func (f *fileDropper) run(ctx context.Context) {
	defer f.wg.Done()
	tick := time.NewTicker(fileScanInterval)
	defer tick.Stop()
	f.scan(ctx) // files left by a crash or dropped while stopped
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-f.watcher.Events:
			if !ok {
				return
			}
			if ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename) {
				delete(f.seen, filepath.Base(ev.Name))
			}
		case err, ok := <-f.watcher.Errors:
			if !ok {
				return
			}
			f.logger.Warn("filedrop watcher", "err", err) // the periodic scan covers lost events
		case <-tick.C:
			f.scan(ctx)
		}
	}
}

// scan looks at every candidate file and processes those that are stable.
func (f *fileDropper) scan(ctx context.Context) {
	entries, err := os.ReadDir(f.cfg.Dir)
	if err != nil {
		f.logger.Error("filedrop: read dir", "dir", f.cfg.Dir, "err", err)
		return
	}
	now := time.Now()
	for _, e := range entries {
		name := e.Name()
		if !e.Type().IsRegular() || strings.HasPrefix(name, ".") || !filedrop.Supported(name) {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue // removed meanwhile
		}
		st, known := f.seen[name]
		if !known || st.size != info.Size() || !st.modTime.Equal(info.ModTime()) {
			f.seen[name] = fileState{size: info.Size(), modTime: info.ModTime(), stableSince: now}
			continue
		}
		if now.Sub(st.stableSince) < f.cfg.Settle {
			continue
		}
		if err := f.process(ctx, name); err != nil {
			if ctx.Err() == nil {
				f.logger.Error("filedrop: file left in place to retry", "file", name, "err", err)
			}
			return
		}
		delete(f.seen, name)
	}
}

// process ingests one file and moves it. An error leaves it in place.
func (f *fileDropper) process(ctx context.Context, name string) error {
	path := filepath.Join(f.cfg.Dir, name)
	file, err := os.Open(path)
	if err != nil {
		return err
	}
	defer file.Close()
	known, err := f.quarantinedBefore(ctx, file)
	if err != nil {
		return err
	}
	f.logger.Info("filedrop: reading", "file", name)
	report := FileReport{File: name}
	msg := drivers.Message{Source: "file", Warehouse: f.wh, Device: f.cfg.Device, DeviceFixed: true, Subtopic: name}

	type chunkResult struct {
		lines   []filedrop.Line
		results []ingest.Result
		err     error
	}
	inFlight := make(chan chan chunkResult, fileChunksInFlight)
	collectErr := make(chan error, 1)
	go func() { // answers come back in submission order
		var first error
		for ch := range inFlight {
			r := <-ch
			if r.err != nil && first == nil {
				first = r.err
			}
			if first != nil {
				continue
			}
			for i, res := range r.results {
				report.Lines++
				switch {
				case res.Rejected():
					report.Rejected = append(report.Rejected, RejectedLine{Line: r.lines[i].N, ID: res.ID, Reason: res.Reason, Message: res.Message})
				case res.Status == ingest.StatusDuplicate:
					report.Duplicates++
				default:
					report.Applied++
				}
			}
		}
		collectErr <- first
	}()
	scanErr := f.scanner.Scan(msg, file, func(lines []filedrop.Line) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		// Lines an interrupted read already quarantined are answered here:
		// submitted again, they would be quarantined again.
		answered := make([]*ingest.Result, len(lines))
		items := make([]drivers.Item, 0, len(lines))
		sent := make([]int, 0, len(lines)) // lines index of each item
		for i, l := range lines {
			if answered[i] = known.result(&l.Item); answered[i] == nil {
				items = append(items, l.Item)
				sent = append(sent, i)
			}
		}
		ch := make(chan chunkResult, 1)
		select {
		case inFlight <- ch:
		case <-ctx.Done(): // stopping while the store is stuck: read the file again next time
			return ctx.Err()
		}
		done := func(res []ingest.Result, err error) {
			if err != nil {
				ch <- chunkResult{lines, nil, err}
				return
			}
			all := make([]ingest.Result, len(lines))
			for i, r := range answered {
				if r != nil {
					all[i] = *r
				}
			}
			for j, i := range sent {
				all[i] = res[j]
			}
			ch <- chunkResult{lines, all, nil}
		}
		if len(items) == 0 {
			done(nil, nil)
			return nil
		}
		m := msg
		m.ReceivedAt = now()
		f.ingest.IngestItems("filedrop", m, items, done)
		return nil
	})
	close(inFlight)
	select {
	case err := <-collectErr:
		if err != nil {
			return fmt.Errorf("ingest %s: %w", name, err)
		}
	case <-ctx.Done():
		return ctx.Err() // the collector ends once the store answers or closes
	}
	dest := "done"
	switch {
	case errors.Is(scanErr, filedrop.ErrBadFile):
		dest, report.Error = "failed", scanErr.Error()
	case scanErr != nil:
		return scanErr
	}
	report.Finished = now()
	return f.finish(name, dest, report)
}

// quarantined is what an earlier read of a file quarantined.
type quarantined struct {
	// rejected: the driver's rejections, whose messages name their line.
	rejected map[store.QuarantinedKey]bool
	// byStore: lines found id_reused or unknown_ticket at commit, by event
	// id, reason and payload (the store's message names no line).
	byStore map[store.QuarantinedKey]bool
}

// quarantinedBefore reads what was quarantined from the file drops since
// file was last modified: the rejected lines of a read the agent did not
// finish (a file dropped again is modified later, and quarantined again).
// Half the settle time is added to the modification time: it comes from
// the kernel's coarse clock (milliseconds behind time.Now), so the rows of
// a read that finished just before the file was dropped again could
// otherwise look like this file's; a read of this file starts a whole
// settle time after its modification.
func (f *fileDropper) quarantinedBefore(ctx context.Context, file *os.File) (quarantined, error) {
	q := quarantined{rejected: map[store.QuarantinedKey]bool{}, byStore: map[store.QuarantinedKey]bool{}}
	if f.quarantine == nil {
		return q, nil
	}
	info, err := file.Stat()
	if err != nil {
		return q, err
	}
	keys, err := f.quarantine.QuarantinedFrom(ctx, "file", f.cfg.Device, info.ModTime().Add(f.cfg.Settle/2))
	if err != nil {
		return q, fmt.Errorf("filedrop: %w", err)
	}
	for _, k := range keys {
		switch drivers.Reason(k.Reason) {
		case drivers.ReasonIDReused, drivers.ReasonUnknownTicket:
			k.Message = ""
			q.byStore[k] = true
		default:
			q.rejected[k] = true
		}
	}
	return q, nil
}

// result is the result of an item quarantined before, or nil.
func (q quarantined) result(it *drivers.Item) *ingest.Result {
	sum := sha256.Sum256(it.Raw)
	if rej := it.Rejected; rej != nil {
		if q.rejected[store.QuarantinedKey{EventID: rej.ID, Reason: string(rej.Reason), Message: rej.Message, PayloadSum: sum}] {
			return &ingest.Result{ID: rej.ID, Status: ingest.StatusRejected, Reason: rej.Reason, Message: rej.Message}
		}
		return nil
	}
	for _, r := range []drivers.Reason{drivers.ReasonIDReused, drivers.ReasonUnknownTicket} {
		if q.byStore[store.QuarantinedKey{EventID: it.Event.ID, Reason: string(r), PayloadSum: sum}] {
			return &ingest.Result{ID: it.Event.ID, Status: ingest.StatusRejected, Reason: r,
				Message: "rejected " + string(r) + " when this file was read before; the line is in the quarantine"}
		}
	}
	return nil
}

// finish writes the report, then moves the file: a crash in between leaves
// the file to be read again (all duplicates) and the report rewritten.
func (f *fileDropper) finish(name, dest string, report FileReport) error {
	target := uniqueName(filepath.Join(f.cfg.Dir, dest), name)
	body, _ := json.MarshalIndent(report, "", "  ") // a FileReport always marshals
	if err := writeFileSync(target+".report.json", body); err != nil {
		return err
	}
	if err := os.Rename(filepath.Join(f.cfg.Dir, name), target); err != nil {
		return err
	}
	f.logger.Info("filedrop: file processed", "file", name, "to", dest, "lines", report.Lines,
		"applied", report.Applied, "duplicates", report.Duplicates, "rejected", len(report.Rejected))
	return nil
}

// uniqueName returns dir/name, or dir/name with a time suffix before the
// extension when that exists (the same export dropped twice).
func uniqueName(dir, name string) string {
	p := filepath.Join(dir, name)
	if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
		return p
	}
	ext := filepath.Ext(name)
	return filepath.Join(dir, strings.TrimSuffix(name, ext)+"."+time.Now().UTC().Format("20060102T150405.000000000")+ext)
}

func writeFileSync(path string, body []byte) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := f.Write(body); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}
