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

// barcodePollInterval is how often the barcode file is checked for changes.
// Stat-polling survives editors that replace the file and network shares
// where change notifications do not arrive.
const barcodePollInterval = time.Second

// BarcodeTable maps GTINs (14 digits) to SKUs and reloads itself when its
// file changes. A file that fails to parse keeps the previous table.
type BarcodeTable struct {
	path   string
	logger *slog.Logger
	table  atomic.Pointer[map[string]string]

	mu      sync.Mutex
	modTime time.Time
	size    int64
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

var _ drivers.BarcodeLookup = (*BarcodeTable)(nil)

// OpenBarcodeTable loads path (a missing file is an empty table) and starts
// watching it.
func OpenBarcodeTable(path string, logger *slog.Logger) (*BarcodeTable, error) {
	t := &BarcodeTable{path: path, logger: logger}
	t.table.Store(&map[string]string{})
	if _, err := t.Reload(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.cancel = cancel
	t.wg.Add(1)
	go t.watch(ctx)
	return t, nil
}

// SKUForGTIN implements drivers.BarcodeLookup.
func (t *BarcodeTable) SKUForGTIN(gtin string) (string, bool) {
	sku, ok := (*t.table.Load())[gtin]
	return sku, ok
}

// Len is the number of GTINs in the table.
func (t *BarcodeTable) Len() int { return len(*t.table.Load()) }

// Reload reads the file if it changed since the last load; it reports
// whether a new table is in place.
func (t *BarcodeTable) Reload() (bool, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	fi, err := os.Stat(t.path)
	if errors.Is(err, os.ErrNotExist) {
		if t.size != 0 || !t.modTime.IsZero() {
			t.logger.Warn("barcode table removed; keeping the loaded table", "path", t.path)
		}
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("barcode table: %w", err)
	}
	if fi.ModTime().Equal(t.modTime) && fi.Size() == t.size {
		return false, nil
	}
	f, err := os.Open(t.path)
	if err != nil {
		return false, fmt.Errorf("barcode table: %w", err)
	}
	defer f.Close()
	table, err := ParseBarcodes(f)
	if err != nil {
		return false, fmt.Errorf("barcode table %s: %w", t.path, err)
	}
	t.modTime, t.size = fi.ModTime(), fi.Size()
	t.table.Store(&table)
	t.logger.Info("barcode table loaded", "path", t.path, "gtins", len(table))
	return true, nil
}

func (t *BarcodeTable) watch(ctx context.Context) {
	defer t.wg.Done()
	tick := time.NewTicker(barcodePollInterval)
	defer tick.Stop()
	var lastErr string
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			_, err := t.Reload()
			if err != nil && err.Error() != lastErr { // log each distinct problem once
				t.logger.Error("barcode table not reloaded; keeping the previous one", "err", err)
			}
			lastErr = ""
			if err != nil {
				lastErr = err.Error()
			}
		}
	}
}

// Close stops watching.
func (t *BarcodeTable) Close() {
	t.cancel()
	t.wg.Wait()
}

// ParseBarcodes reads a CSV with the header gtin,sku (more columns are
// ignored). GTINs of 8, 12, 13 or 14 digits are check-digit verified and
// stored as 14 digits. An error names the line.
func ParseBarcodes(r io.Reader) (map[string]string, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	header, err := cr.Read()
	if err == io.EOF {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, err
	}
	gtinCol, skuCol := -1, -1
	for i, h := range header {
		switch strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))) {
		case "gtin":
			gtinCol = i
		case "sku":
			skuCol = i
		}
	}
	if gtinCol < 0 || skuCol < 0 {
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

// deviceSettings answers drivers.DeviceSettings from the config.
type deviceSettings struct {
	modes       map[string]string
	atLeastOnce map[string]bool
}

func newDeviceSettings(d Devices) deviceSettings {
	s := deviceSettings{modes: d.Modes, atLeastOnce: map[string]bool{}}
	for _, id := range d.AtLeastOnce {
		s.atLeastOnce[id] = true
	}
	return s
}

func (s deviceSettings) Mode(device string) string {
	if m, ok := s.modes[device]; ok {
		return m
	}
	return s.modes["*"]
}

func (s deviceSettings) AtLeastOnce(device string) bool { return s.atLeastOnce[device] }
