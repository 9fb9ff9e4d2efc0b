package agent

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

// A loop that keeps failing the same way logs it once; a new error, or the
// same one after a success, is logged again.
func TestDistinct_Changed(t *testing.T) {
	e1, e2 := errors.New("disk full"), errors.New("locked")
	var d distinct
	var got []bool
	for _, err := range []error{nil, e1, e1, e2, e1, nil, e1, errors.New("disk full")} {
		got = append(got, d.changed(err))
	}
	require.Equal(t, []bool{false, true, false, true, true, false, true, false}, got)
}
