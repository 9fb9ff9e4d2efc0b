package replenish

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

func TestDemand_BinaryRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		d := observeAll(t, eventsGen().Draw(t, "events"), dayAt(151))
		b, err := d.MarshalBinary()
		require.NoError(t, err)
		var back Demand
		require.NoError(t, back.UnmarshalBinary(b))
		require.Equal(t, d, back)
	})
	b, err := Demand{}.MarshalBinary()
	require.NoError(t, err)
	require.Equal(t, []byte{encodingVersion}, b)
}

func TestDemand_UnmarshalBinaryRejects(t *testing.T) {
	good, _ := feed(t, seriesOf(40, func(i int) int64 { return int64(i % 5) }))
	enc, err := good.MarshalBinary()
	require.NoError(t, err)
	tests := map[string][]byte{
		"empty":              nil,
		"other version":      append([]byte{2}, enc[1:]...),
		"truncated":          enc[:len(enc)-1],
		"trailing byte":      append(append([]byte(nil), enc...), 0),
		"negative sum":       withLastSum(enc, 0x80000001),
		"negative zero":      withLastSum(enc, 0x80000000),
		"NaN sum":            withLastSum(enc, 0x7fc00000),
		"infinite sum":       withLastSum(enc, 0x7f800000),
		"non-minimal varint": {encodingVersion, 0x80, 0x00},
	}
	for name, b := range tests {
		t.Run(name, func(t *testing.T) {
			d := good
			require.ErrorIs(t, d.UnmarshalBinary(b), ErrBadEncoding)
			require.Equal(t, good, d, "a failed decode leaves the state alone")
		})
	}
}

func withLastSum(enc []byte, bits uint32) []byte {
	out := append([]byte(nil), enc...)
	n := len(out)
	out[n-4], out[n-3], out[n-2], out[n-1] = byte(bits>>24), byte(bits>>16), byte(bits>>8), byte(bits)
	return out
}

func FuzzDemand_UnmarshalBinary(f *testing.F) {
	var fc Forecaster
	var d Demand
	now := dayAt(40)
	for i := range 40 {
		fc.Observe(&d, dayAt(i).Add(time.Duration(i)*time.Hour), now, int64(1+i%4))
	}
	seed, _ := d.MarshalBinary()
	f.Add(seed)
	f.Add([]byte{encodingVersion})
	f.Fuzz(func(t *testing.T, b []byte) {
		var d Demand
		if d.UnmarshalBinary(b) != nil {
			return
		}
		out, err := d.MarshalBinary()
		require.NoError(t, err)
		require.Equal(t, b, out, "the encoding is canonical")
		// Whatever decodes can be read and learned from.
		_, err = Forecaster{}.Figures(d, dayAt(50), Stock{OnHand: 3, Available: 3}, Policy{LeadTimeDays: 2, TargetDays: 5, ServiceLevel: 0.9})
		require.NoError(t, err)
		Forecaster{}.Observe(&d, dayAt(45), dayAt(50), 2)
	})
}

// The package is pure, like crdt/: importcheck does not know it yet, so it
// checks itself. No I/O, no goroutines or locks, no time.Now.
func TestPackage_Pure(t *testing.T) {
	allowed := map[string]bool{
		"bytes": true, "encoding/binary": true, "errors": true, "fmt": true, "math": true, "time": true,
	}
	clock := map[string]bool{"Now": true, "Since": true, "Until": true, "Sleep": true, "After": true,
		"AfterFunc": true, "Tick": true, "NewTicker": true, "NewTimer": true}
	entries, err := os.ReadDir(".")
	require.NoError(t, err)
	fset := token.NewFileSet()
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		require.NoError(t, err)
		file, err := parser.ParseFile(fset, name, src, 0)
		require.NoError(t, err)
		for _, imp := range file.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			require.True(t, allowed[path], "%s imports %s", name, path)
		}
		ast.Inspect(file, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.GoStmt:
				t.Errorf("%s: a goroutine at %s", name, fset.Position(n.Pos()))
			case *ast.SelectorExpr:
				if x, ok := n.X.(*ast.Ident); ok && x.Name == "time" && clock[n.Sel.Name] {
					t.Errorf("%s: time.%s at %s: time is an input", name, n.Sel.Name, fset.Position(n.Pos()))
				}
			}
			return true
		})
	}
}
