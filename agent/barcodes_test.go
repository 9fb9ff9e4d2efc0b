package agent

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParseBarcodes(t *testing.T) {
	table, err := ParseBarcodes(strings.NewReader("\ufeffsku,gtin,name\nSKU-1,4006381333931,Pen\nSKU-2, 96385074 ,Ink\n"))
	require.NoError(t, err)
	require.Equal(t, map[string]string{"04006381333931": "SKU-1", "00000096385074": "SKU-2"}, table)

	for name, tc := range map[string]struct{ csv, want string }{
		"no header":       {"4006381333931,SKU-1\n", "line 1: header must name"},
		"bad check digit": {"gtin,sku\n4006381333932,SKU-1\n", "line 2: gtin \"4006381333932\" check digit is wrong"},
		"bad sku":         {"gtin,sku\n4006381333931,SKU 1\n", "line 2: sku"},
		"conflict":        {"gtin,sku\n4006381333931,A\n04006381333931,B\n", "line 3: gtin 04006381333931 maps to both A and B"},
		"missing column":  {"gtin,sku\n4006381333931\n", "line 2: needs columns"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ParseBarcodes(strings.NewReader(tc.csv))
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestBarcodeTable_Reload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "barcodes.csv")
	table, err := OpenBarcodeTable(path, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	defer table.Close()
	require.Zero(t, table.Len(), "a missing file is an empty table")

	require.NoError(t, os.WriteFile(path, []byte("gtin,sku\n4006381333931,SKU-1\n"), 0o644))
	require.Eventually(t, func() bool { s, ok := table.SKUForGTIN("04006381333931"); return ok && s == "SKU-1" },
		5*time.Second, 20*time.Millisecond, "a new file is picked up")

	require.NoError(t, os.WriteFile(path, []byte("gtin,sku\n4006381333932,BROKEN\n"), 0o644))
	_, err = table.Reload()
	require.Error(t, err)
	s, ok := table.SKUForGTIN("04006381333931")
	require.True(t, ok, "a broken file keeps the previous table")
	require.Equal(t, "SKU-1", s)
}
