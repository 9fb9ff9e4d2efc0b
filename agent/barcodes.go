package agent

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgestock/edgestock/drivers"
)

// watchPollInterval is how often a watched file is checked for changes.
// Stat-polling survives editors that replace the file and network shares
// where change notifications do not arrive.
const watchPollInterval = time.Second

// watchedFile holds the parsed content of a file and reloads it when the
// file changes. A file that fails to parse keeps the previous content; a
// missing file is the empty value.
type watchedFile[T any] struct {
	path   string
	parse  func(io.Reader) (T, error)
	logger *slog.Logger
	value  atomic.Pointer[T]

	mu      sync.Mutex
	modTime time.Time
	size    int64
	errs    distinct // reload errors: each distinct one logged once
	poll    *loop
}

func openWatched[T any](path string, empty T, parse func(io.Reader) (T, error), logger *slog.Logger) (*watchedFile[T], error) {
	w := &watchedFile[T]{path: path, parse: parse, logger: logger}
	w.value.Store(&empty)
	if _, err := w.Reload(); err != nil {
		return nil, err
	}
	w.poll = every(watchPollInterval, w.poll1)
	return w, nil
}

// Get returns the current content.
func (w *watchedFile[T]) Get() T { return *w.value.Load() }

// Reload reads the file if it changed since the last load; it reports
// whether new content is in place.
func (w *watchedFile[T]) Reload() (bool, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	fi, err := os.Stat(w.path)
	if errors.Is(err, os.ErrNotExist) {
		if w.size != 0 || !w.modTime.IsZero() {
			w.logger.Warn("file removed; keeping what was loaded", "path", w.path)
		}
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if fi.ModTime().Equal(w.modTime) && fi.Size() == w.size {
		return false, nil
	}
	f, err := os.Open(w.path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	v, err := w.parse(f)
	if err != nil {
		return false, fmt.Errorf("%s: %w", w.path, err)
	}
	w.modTime, w.size = fi.ModTime(), fi.Size()
	w.value.Store(&v)
	w.logger.Info("file loaded", "path", w.path)
	return true, nil
}

// poll1 is one poll of the file (every watchPollInterval).
func (w *watchedFile[T]) poll1(context.Context) {
	if _, err := w.Reload(); w.errs.changed(err) {
		w.logger.Error("file not reloaded; keeping the previous content", "err", err)
	}
}

// Close stops watching.
func (w *watchedFile[T]) Close() { w.poll.Stop() }

// BarcodeTable maps GTINs (14 digits) to SKUs from a watched CSV file.
type BarcodeTable struct {
	*watchedFile[map[string]string]
}

var _ drivers.BarcodeLookup = BarcodeTable{}

// OpenBarcodeTable loads path (a missing file is an empty table) and starts
// watching it.
func OpenBarcodeTable(path string, logger *slog.Logger) (BarcodeTable, error) {
	w, err := openWatched(path, map[string]string{}, ParseBarcodes, logger)
	if err != nil {
		return BarcodeTable{}, fmt.Errorf("barcode table: %w", err)
	}
	return BarcodeTable{w}, nil
}

// SKUForGTIN implements drivers.BarcodeLookup.
func (t BarcodeTable) SKUForGTIN(gtin string) (string, bool) {
	sku, ok := t.Get()[gtin]
	return sku, ok
}

// Len is the number of GTINs in the table.
func (t BarcodeTable) Len() int { return len(t.Get()) }

// openSettingsCSV opens a settings table (barcodes, thresholds): a header
// naming the columns, then rows of any length. col maps each column name
// (drivers.ColumnName) to its index; cr is nil for an empty file.
func openSettingsCSV(r io.Reader) (cr *csv.Reader, header []string, col map[string]int, err error) {
	cr = csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	header, err = cr.Read()
	if err == io.EOF {
		return nil, nil, nil, nil
	}
	if err != nil {
		return nil, nil, nil, err
	}
	col = make(map[string]int, len(header))
	for i, h := range header {
		col[drivers.ColumnName(h)] = i
	}
	return cr, header, col, nil
}

// eachSKURow reads a per-SKU settings table (thresholds.csv,
// replenishment.csv): a header naming sku and the required columns (and
// maybe the optional ones), then a row per SKU. row gets each row's line,
// its valid SKU and its fields by column name ("" when absent); an error
// names the line.
func eachSKURow(r io.Reader, required, optional []string, row func(line int, sku string, field func(name string) string) error) error {
	cr, _, col, err := openSettingsCSV(r)
	if err != nil || cr == nil {
		return err
	}
	for _, name := range append([]string{"sku"}, required...) {
		if _, ok := col[name]; !ok {
			return fmt.Errorf("line 1: header must name the columns sku and %s (and optionally %s)",
				strings.Join(required, " and "), strings.Join(optional, " and "))
		}
	}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		line, _ := cr.FieldPos(0)
		field := func(name string) string {
			if i, ok := col[name]; ok && i < len(rec) {
				return strings.TrimSpace(rec[i])
			}
			return ""
		}
		sku := field("sku")
		if !drivers.ValidID(sku) {
			return fmt.Errorf("line %d: sku %q must be 1-64 chars of [A-Za-z0-9._-]", line, sku)
		}
		if err := row(line, sku, field); err != nil {
			return err
		}
	}
}

// ParseBarcodes reads a CSV with the header gtin,sku (more columns are
// ignored). GTINs of 8, 12, 13 or 14 digits are check-digit verified and
// stored as 14 digits. An error names the line.
func ParseBarcodes(r io.Reader) (map[string]string, error) {
	cr, header, col, err := openSettingsCSV(r)
	if err != nil {
		return nil, err
	}
	if cr == nil {
		return map[string]string{}, nil
	}
	gtinCol, ok1 := col["gtin"]
	skuCol, ok2 := col["sku"]
	if !ok1 || !ok2 {
		return nil, fmt.Errorf("line 1: header must name the columns gtin and sku, got %q", strings.Join(header, ","))
	}
	table := map[string]string{}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return table, nil
		}
		if err != nil {
			return nil, err // a csv.ParseError names its line
		}
		line, _ := cr.FieldPos(0)
		if len(rec) <= max(gtinCol, skuCol) {
			return nil, fmt.Errorf("line %d: needs columns gtin and sku", line)
		}
		gtin, why := drivers.GTIN14(strings.TrimSpace(rec[gtinCol]))
		if why != "" {
			return nil, fmt.Errorf("line %d: gtin %q %s", line, rec[gtinCol], why)
		}
		sku := strings.TrimSpace(rec[skuCol])
		if !drivers.ValidID(sku) {
			return nil, fmt.Errorf("line %d: sku %q must be 1-64 chars of [A-Za-z0-9._-]", line, sku)
		}
		if prev, dup := table[gtin]; dup && prev != sku {
			return nil, fmt.Errorf("line %d: gtin %s maps to both %s and %s", line, gtin, prev, sku)
		}
		table[gtin] = sku
	}
}

// deviceSettings answers drivers.DeviceSettings from the config; Set swaps
// it on a reload.
type deviceSettings struct {
	p atomic.Pointer[deviceConfig]
}

type deviceConfig struct {
	modes       map[string]string
	atLeastOnce map[string]bool
}

func newDeviceSettings(d Devices) *deviceSettings {
	s := &deviceSettings{}
	s.Set(d)
	return s
}

// Set applies a (reloaded) devices config.
func (s *deviceSettings) Set(d Devices) {
	c := &deviceConfig{modes: d.Modes, atLeastOnce: map[string]bool{}}
	for _, id := range d.AtLeastOnce {
		c.atLeastOnce[id] = true
	}
	s.p.Store(c)
}

func (s *deviceSettings) Mode(device string) string {
	c := s.p.Load()
	if m, ok := c.modes[device]; ok {
		return m
	}
	return c.modes["*"]
}

func (s *deviceSettings) AtLeastOnce(device string) bool { return s.p.Load().atLeastOnce[device] }
