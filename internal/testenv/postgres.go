package testenv

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
)

// PostgresDSN returns a DSN of EDGESTOCK_TEST_POSTGRES whose search_path is
// a schema of this test's own, dropped after it. Without the variable the
// test is skipped (failed in CI).
func PostgresDSN(tb testing.TB) string {
	tb.Helper()
	dsn := os.Getenv("EDGESTOCK_TEST_POSTGRES")
	if dsn == "" {
		Missing(tb, "PostgreSQL (EDGESTOCK_TEST_POSTGRES)")
	}
	conn, err := pgx.Connect(tb.Context(), dsn)
	require.NoError(tb, err, "EDGESTOCK_TEST_POSTGRES")
	schema := fmt.Sprintf("edgestock_test_%d", time.Now().UnixNano())
	_, err = conn.Exec(tb.Context(), "CREATE SCHEMA "+schema)
	require.NoError(tb, err)
	tb.Cleanup(func() {
		_, _ = conn.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
		_ = conn.Close(context.Background())
	})
	u, err := url.Parse(dsn)
	require.NoError(tb, err)
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}
