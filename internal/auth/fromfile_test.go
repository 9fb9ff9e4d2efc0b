package auth_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/edgestock/edgestock/internal/auth"
)

// A configured token is itself, or "@FILE" the trimmed content of FILE;
// a missing or empty file is an error (hub.token and agent-tokens alike).
func TestFromFile(t *testing.T) {
	dir := t.TempDir()
	file, empty := filepath.Join(dir, "tok"), filepath.Join(dir, "empty")
	require.NoError(t, os.WriteFile(file, []byte("es1.abc\n"), 0o600))
	require.NoError(t, os.WriteFile(empty, []byte(" \n"), 0o600))
	tok, err := auth.FromFile("es1.given")
	require.NoError(t, err)
	require.Equal(t, "es1.given", tok)
	tok, err = auth.FromFile("@" + file)
	require.NoError(t, err)
	require.Equal(t, "es1.abc", tok)
	_, err = auth.FromFile("@" + filepath.Join(dir, "missing"))
	require.ErrorContains(t, err, "read the token file")
	_, err = auth.FromFile("@" + empty)
	require.ErrorContains(t, err, "is empty")
}
