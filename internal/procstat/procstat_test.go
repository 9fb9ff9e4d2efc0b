package procstat

import (
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// This process's own figures read as sane numbers.
func TestSelf(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("/proc is Linux's")
	}
	before, err := CPUTime(os.Getpid())
	require.NoError(t, err)
	for start := time.Now(); time.Since(start) < 100*time.Millisecond; { // some CPU time to count
	}
	after, err := CPUTime(os.Getpid())
	require.NoError(t, err)
	require.Greater(t, after, before, "100 ms of spinning shows")
	rss, err := RSS(os.Getpid())
	require.NoError(t, err)
	peak, err := PeakRSS(os.Getpid())
	require.NoError(t, err)
	require.Positive(t, rss)
	require.GreaterOrEqual(t, peak, rss, "the peak is at least what is resident now")
	_, err = CPUTime(-1)
	require.Error(t, err)
}
