package agent

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// A thresholds file row without a restock column restocks at low + the
// configured margin, as the margin is now: a hot reload of
// stock.restock-margin applies to such rows too.
func TestThresholds_MarginFollowsReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "thresholds.csv")
	require.NoError(t, os.WriteFile(path, []byte("sku,low,restock\nS,5,\nR,5,20\n"), 0o644))
	overrides, err := openWatched(path, map[string]Threshold{}, parseThresholds, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	defer overrides.Close()
	rule := &thresholds{overrides: overrides}
	setMargin := func(m int64) { rule.def.Store(&Threshold{Low: 1, Restock: 1 + m}) }

	setMargin(1)
	require.False(t, rule.Low("S", true, 6), "restocked at 5+1")
	require.True(t, rule.Low("R", true, 19), "R names its own restock level")
	setMargin(3) // the reload
	require.True(t, rule.Low("S", true, 6), "still low: restocked at 5+3 now")
	require.False(t, rule.Low("S", true, 8))
	require.True(t, rule.Low("R", true, 19), "R's own level does not move")
	require.False(t, rule.Low("X", false, 2), "a SKU not in the file uses the default")
}
