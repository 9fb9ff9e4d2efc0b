package filedrop

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/edgestock/edgestock/drivers"
)

func scanAll(t testing.TB, name, content string) ([]Line, error) {
	d, err := New(drivers.Env{})
	require.NoError(t, err)
	var lines []Line
	err = d.(*Driver).Scan(drivers.Message{Device: "filedrop", DeviceFixed: true, Subtopic: name}, strings.NewReader(content),
		func(chunk []Line) error { lines = append(lines, chunk...); return nil })
	return lines, err
}

func TestDriver_ScanCSV(t *testing.T) {
	lines, err := scanAll(t, "export-01.csv", "\ufeffType,SKU,Qty,Location\nreceive,SKU-1,5,A-01\nsale,SKU-1,2,\nsale,SKU-1,x,\n\"unterminated,SKU-1,1\n")
	require.NoError(t, err)
	require.Len(t, lines, 4)
	require.Nil(t, lines[0].Rejected)
	require.Equal(t, drivers.Event{Device: "filedrop", ID: "export-01.csv:2", Type: "receive", SKU: "SKU-1", Qty: 5, Location: "A-01"}, lines[0].Event)
	require.Equal(t, 2, lines[0].N)
	require.Equal(t, drivers.Event{Device: "filedrop", ID: "export-01.csv:3", Type: "sale", SKU: "SKU-1", Qty: 2, Location: "default"}, lines[1].Event)
	require.Equal(t, drivers.ReasonBadField, lines[2].Rejected.Reason)
	require.Equal(t, "export-01.csv:4", lines[2].Rejected.ID)
	require.Equal(t, "sale,SKU-1,x,", string(lines[2].Raw))
	require.NotNil(t, lines[3].Rejected, "a broken quote rejects its line, not the file")
}

func TestDriver_ScanCSVWithIDs(t *testing.T) {
	lines, err := scanAll(t, "wms.csv", "id,type,sku,qty,to_location,location\nm-1,transfer,SKU-2,3,B,A\n")
	require.NoError(t, err)
	require.Len(t, lines, 1)
	require.Equal(t, drivers.Event{Device: "filedrop", ID: "m-1", Type: "transfer", SKU: "SKU-2", Qty: 3, Location: "A", ToLocation: "B"}, lines[0].Event)
}

func TestDriver_ScanCSVBadHeader(t *testing.T) {
	for name, content := range map[string]string{
		"unknown column": "type,sku,qty,colour\nreceive,S,1,red\n",
		"no qty":         "type,sku\nreceive,S\n",
		"no sku":         "type,qty\nreceive,1\n",
		"empty":          "",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := scanAll(t, "x.csv", content)
			require.ErrorIs(t, err, ErrBadFile)
		})
	}
}

func TestDriver_ScanJSONL(t *testing.T) {
	lines, err := scanAll(t, "feed.jsonl", `{"type":"receive","sku":"SKU-1","qty":5}
{"id":"own-id","type":"sale","sku":"SKU-1","qty":1}

not json
{"type":"sale","sku":"SKU-1","qty":1.5}
`)
	require.NoError(t, err)
	require.Len(t, lines, 4, "blank lines are skipped")
	require.Equal(t, "feed.jsonl:1", lines[0].Event.ID)
	require.Equal(t, "own-id", lines[1].Event.ID)
	require.Equal(t, drivers.ReasonBadJSON, lines[2].Rejected.Reason)
	require.Equal(t, 4, lines[2].N)
	require.Equal(t, drivers.ReasonBadField, lines[3].Rejected.Reason)
	require.Equal(t, "feed.jsonl:5", lines[3].Rejected.ID)
}

func TestDriver_ScanChunks(t *testing.T) {
	var b strings.Builder
	b.WriteString("type,sku,qty\n")
	for range 2*Chunk + 7 {
		b.WriteString("receive,S,1\n")
	}
	d, err := New(drivers.Env{})
	require.NoError(t, err)
	var sizes []int
	require.NoError(t, d.(*Driver).Scan(drivers.Message{Device: "f", Subtopic: "big.csv"}, strings.NewReader(b.String()),
		func(c []Line) error { sizes = append(sizes, len(c)); return nil }))
	require.Equal(t, []int{Chunk, Chunk, 7}, sizes)
}

func FuzzDriver_Scan(f *testing.F) {
	d, err := New(drivers.Env{})
	require.NoError(f, err)
	f.Fuzz(func(t *testing.T, content string, jsonl bool) {
		name := "fuzz.csv"
		if jsonl {
			name = "fuzz.jsonl"
		}
		last := 0
		_ = d.(*Driver).Scan(drivers.Message{Device: "filedrop", DeviceFixed: true, Subtopic: name}, strings.NewReader(content), func(lines []Line) error {
			for _, l := range lines {
				require.Greater(t, l.N, last, "line numbers increase")
				last = l.N
				if l.Rejected == nil {
					e := l.Event
					require.Nil(t, drivers.Validate(&e))
				}
			}
			return nil
		})
	})
}

// A rejected line is quarantined like an oversized MQTT payload: its first
// 4 KiB, its full size in the message; a line past the limit is never
// taken as a good line cut short.
func TestDriver_ScanOversizedLines(t *testing.T) {
	long := strings.Repeat("y", 300<<10)
	for _, tc := range []struct {
		name, file, content string
		size                int
		reason              drivers.Reason
	}{
		{"JSON line past the limit", "a.jsonl", `{"id":"j1","type":"receive","sku":"S","qty":1,"note":"` + long + `"}` + "\n", len(`{"id":"j1","type":"receive","sku":"S","qty":1,"note":""}`) + len(long), drivers.ReasonTooLarge},
		{"JSON line past the limit, last part small", "b.jsonl", `{"id":"j1","type":"receive","sku":"S","qty":1}` + strings.Repeat(" ", 250<<10) + strings.Repeat(" ", 20<<10) + "\n", 0, drivers.ReasonTooLarge},
		{"CSV line rejected", "c.csv", "type,sku,qty\nreceive,S," + long + "\n", len("receive,S,") + len(long), drivers.ReasonBadField},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lines, err := scanAll(t, tc.file, tc.content)
			require.NoError(t, err)
			require.Len(t, lines, 1)
			rej := lines[0].Rejected
			require.NotNil(t, rej)
			require.Equal(t, tc.reason, rej.Reason, rej.Message)
			require.LessOrEqual(t, len(lines[0].Raw), drivers.QuarantineSample)
			if tc.size > 0 {
				require.Contains(t, rej.Message, fmt.Sprint(tc.size))
			}
		})
	}
}
