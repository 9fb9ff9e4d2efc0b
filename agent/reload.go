package agent

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
)

// reloadDebounce groups the several writes an editor makes into one reload.
const reloadDebounce = 300 * time.Millisecond

// Reload describes how to reload the config file while running.
type Reload struct {
	Path      string         // the YAML file
	Overrides func(*Config)  // re-applies the command-line flags, which win over the file
	LogLevel  *slog.LevelVar // the logger's level, changed live
}

// reloadState is what GET /v1/status reports about reloads.
type reloadState struct {
	mu              sync.Mutex
	generation      int
	lastError       string
	restartRequired []string
}

func (r *reloadState) snapshot() (int, string, []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.generation, r.lastError, append([]string(nil), r.restartRequired...)
}

// hotSettings are applied without a restart; every other change is
// reported as needing one.
func hotSettings(c Config) Config {
	return Config{Devices: c.Devices, Stock: Stock{LowStockThreshold: c.Stock.LowStockThreshold, RestockMargin: c.Stock.RestockMargin},
		Log: LogConfig{Level: c.Log.Level}}
}

// coldDiff names the restart-only settings that differ.
func coldDiff(old, new Config) []string {
	var out []string
	for name, pair := range map[string][2]any{
		"warehouse": {old.Warehouse, new.Warehouse}, "data-dir": {old.DataDir, new.DataDir}, "http": {old.HTTP, new.HTTP},
		"mqtt": {old.MQTT, new.MQTT}, "barcodes": {old.Barcodes, new.Barcodes}, "filedrop": {old.Filedrop, new.Filedrop},
		"stock.thresholds-file": {old.Stock.ThresholdsFile, new.Stock.ThresholdsFile}, "alerts": {old.Alerts, new.Alerts},
		"live": {old.Live, new.Live}, "log.format": {old.Log.Format, new.Log.Format}, "quarantine": {old.Quarantine, new.Quarantine},
		"channels": {old.Channels, new.Channels}, "replenishment": {old.Replenishment, new.Replenishment},
	} {
		if !reflect.DeepEqual(pair[0], pair[1]) {
			out = append(out, name)
		}
	}
	return out
}

// watchConfig reloads the config file when it changes.
func (a *Agent) watchConfig(r Reload) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("config reload: %w", err)
	}
	// Watch the directory: editors replace the file rather than write it.
	if err := w.Add(filepath.Dir(r.Path)); err != nil {
		_ = w.Close()
		return fmt.Errorf("config reload: watch %s: %w", r.Path, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	a.stopReload = func() { cancel(); _ = w.Close() }
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		var timer <-chan time.Time
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				if filepath.Clean(ev.Name) == filepath.Clean(r.Path) {
					timer = time.After(reloadDebounce)
				}
			case err, ok := <-w.Errors:
				if !ok {
					return
				}
				a.logger.Warn("config watcher", "err", err)
			case <-timer:
				timer = nil
				a.reloadConfig(r)
			}
		}
	}()
	return nil
}

// reloadConfig reads, validates and applies the file. An invalid file
// keeps the running config and says why.
func (a *Agent) reloadConfig(r Reload) {
	cfg, err := LoadConfig(r.Path)
	if err == nil {
		if r.Overrides != nil {
			r.Overrides(&cfg)
		}
		cfg.Normalize()
		err = cfg.Validate()
	}
	a.reload.mu.Lock()
	defer a.reload.mu.Unlock()
	if err != nil {
		a.reload.lastError = err.Error()
		a.logger.Error("config reload refused; the running config stays", "file", r.Path, "err", strings.ReplaceAll(err.Error(), "\n", "; "))
		return
	}
	a.reload.lastError = ""
	a.reload.restartRequired = coldDiff(a.startCfg, cfg)
	if len(a.reload.restartRequired) > 0 {
		a.logger.Warn("config changes that need a restart", "settings", strings.Join(a.reload.restartRequired, ", "))
	}
	if reflect.DeepEqual(hotSettings(a.cfg), hotSettings(cfg)) {
		return
	}
	a.devices.Set(cfg.Devices)
	devs := cfg.Devices
	a.reporter.devices.Store(&devs)
	a.ingest.SetLimits(cfg.Devices.RateLimit, cfg.Devices.RateBurst)
	a.rule.def.Store(&Threshold{Low: cfg.Stock.LowStockThreshold, Restock: cfg.Stock.LowStockThreshold + cfg.Stock.RestockMargin})
	if r.LogLevel != nil {
		r.LogLevel.Set(cfg.LogLevel())
	}
	hot := hotSettings(cfg)
	a.cfg.Devices, a.cfg.Stock.LowStockThreshold, a.cfg.Stock.RestockMargin, a.cfg.Log.Level =
		hot.Devices, hot.Stock.LowStockThreshold, hot.Stock.RestockMargin, hot.Log.Level
	a.reload.generation++
	a.logger.Info("config reloaded", "file", r.Path, "generation", a.reload.generation)
}
