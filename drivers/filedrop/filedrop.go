// Package filedrop decodes the CSV and JSON-lines exports that older POS and
// WMS systems drop into a folder: one event per line, its id taken from an
// id column or made from the file name and line number ("{file}:{line}"),
// so a file processed again after a crash counts each line once.
//
// CSV files start with a header naming their columns: type and qty, sku or
// barcode, and optionally id, location, to_location, ts, channel. JSON-lines
// files hold one event object per line, as on the events topic. Watching
// the folder and moving files is the agent's job; this package only reads.
package filedrop

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/edgestock/edgestock/drivers"
	"github.com/edgestock/edgestock/drivers/events"
)

func init() {
	drivers.Register(drivers.Registration{Name: "filedrop", New: New})
}

// Chunk is how many lines Scan hands over at once.
const Chunk = 500

// maxLine bounds one line of a JSON-lines file; a longer line is rejected.
const maxLine = 256 << 10

// Driver decodes dropped files.
type Driver struct {
	json     drivers.Driver
	barcodes drivers.BarcodeLookup
}

// New returns the driver.
func New(env drivers.Env) (drivers.Driver, error) {
	j, err := events.New(env)
	if err != nil {
		return nil, err
	}
	return &Driver{json: j, barcodes: env.Barcodes}, nil
}

// Line is the item decoded from one line of a file.
type Line struct {
	N int // 1-based line number in the file
	drivers.Item
}

// Supported reports whether a file name is a format this driver reads.
func Supported(name string) bool {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".csv", ".jsonl":
		return true
	}
	return false
}

// Decode decodes a whole file held in msg.Payload, named by msg.Subtopic.
func (d *Driver) Decode(msg drivers.Message) []drivers.Item {
	var items []drivers.Item
	err := d.Scan(msg, bytes.NewReader(msg.Payload), func(lines []Line) error {
		for _, l := range lines {
			items = append(items, l.Item)
		}
		return nil
	})
	if err != nil {
		items = append(items, drivers.Item{Rejected: drivers.Reject("", drivers.ReasonBadField, "%v", err), Raw: msg.Payload})
	}
	return items
}

// ErrBadFile is wrapped by Scan errors that reject a whole file.
var ErrBadFile = errors.New("file rejected")

// Scan reads the file named msg.Subtopic from r and calls fn with chunks of
// decoded lines, in order. An error from fn stops the scan and is returned;
// a file that cannot be read as its format returns an ErrBadFile error.
func (d *Driver) Scan(msg drivers.Message, r io.Reader, fn func([]Line) error) error {
	name := msg.Subtopic
	switch strings.ToLower(filepath.Ext(name)) {
	case ".csv":
		return d.scanCSV(msg, r, fn)
	case ".jsonl":
		return d.scanJSONL(msg, r, fn)
	}
	return fmt.Errorf("%w: %s: only .csv and .jsonl files are read", ErrBadFile, name)
}

// lineID is the id of a line without one: unique per file name and line.
func lineID(file string, n int) string {
	id := fmt.Sprintf("%s:%d", file, n)
	if len(id) > drivers.MaxEventIDLen { // keep the tail: the line number must survive
		id = id[len(id)-drivers.MaxEventIDLen:]
	}
	return id
}

// columns are the CSV header names understood.
var columns = map[string]bool{"id": true, "type": true, "sku": true, "barcode": true, "qty": true,
	"location": true, "to_location": true, "ts": true, "channel": true, "seq": true}

func (d *Driver) scanCSV(msg drivers.Message, r io.Reader, fn func([]Line) error) error {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err != nil {
		return fmt.Errorf("%w: %s: read header: %v", ErrBadFile, msg.Subtopic, err)
	}
	col := map[string]int{}
	for i, h := range header {
		h = drivers.ColumnName(h)
		if !columns[h] {
			return fmt.Errorf("%w: %s: line 1: unknown column %q (known: id, type, sku, barcode, qty, location, to_location, ts, channel, seq)", ErrBadFile, msg.Subtopic, h)
		}
		col[h] = i
	}
	for _, need := range []string{"type", "qty"} {
		if _, ok := col[need]; !ok {
			return fmt.Errorf("%w: %s: line 1: the header needs a %s column", ErrBadFile, msg.Subtopic, need)
		}
	}
	if _, ok := col["sku"]; !ok {
		if _, ok := col["barcode"]; !ok {
			return fmt.Errorf("%w: %s: line 1: the header needs a sku or barcode column", ErrBadFile, msg.Subtopic)
		}
	}
	chunks := chunker{fn: fn}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		var n int
		var item drivers.Item
		if err != nil {
			var perr *csv.ParseError
			if !errors.As(err, &perr) {
				return fmt.Errorf("read %s: %w", msg.Subtopic, err)
			}
			n = perr.StartLine
			item = drivers.Item{Rejected: drivers.Reject(lineID(msg.Subtopic, n), drivers.ReasonBadField, "line %d: %v", n, perr.Err)}
		} else {
			n, _ = cr.FieldPos(0)
			item = d.csvLine(msg, n, rec, col)
		}
		if err := chunks.add(Line{N: n, Item: item}); err != nil {
			return err
		}
	}
	return chunks.flush()
}

// csvLine turns one record into the JSON event it stands for, decoded by
// the events driver so every rule and reason is the same as on MQTT.
func (d *Driver) csvLine(msg drivers.Message, n int, rec []string, col map[string]int) drivers.Item {
	field := func(name string) string {
		if i, ok := col[name]; ok && i < len(rec) {
			return strings.TrimSpace(rec[i])
		}
		return ""
	}
	obj := map[string]any{}
	for name := range col {
		if v := field(name); v != "" {
			obj[name] = v
		}
	}
	for _, num := range []string{"qty", "seq"} {
		if v, ok := obj[num].(string); ok {
			obj[num] = jsonNumber(v)
		}
	}
	if obj["id"] == nil {
		obj["id"] = lineID(msg.Subtopic, n)
	}
	raw := []byte(strings.Join(rec, ","))
	return d.decodeObject(msg, obj, raw)
}

func (d *Driver) scanJSONL(msg drivers.Message, r io.Reader, fn func([]Line) error) error {
	br := bufio.NewReaderSize(r, 64<<10)
	chunks := chunker{fn: fn}
	for n := 1; ; n++ {
		line, size, err := readLine(br)
		if err == io.EOF {
			break
		}
		if err != nil && !errors.Is(err, errLineTooLong) {
			return fmt.Errorf("read %s: %w", msg.Subtopic, err)
		}
		trimmed := bytes.TrimSpace(line)
		if len(trimmed) == 0 && err == nil {
			continue // blank lines separate nothing
		}
		var item drivers.Item
		if err != nil {
			item = drivers.Item{Rejected: drivers.Reject(lineID(msg.Subtopic, n), drivers.ReasonTooLarge, "line %d: %d bytes, at most %d (first %d bytes kept)",
				n, size, maxLine, drivers.QuarantineSample), Raw: drivers.Sample(trimmed)}
		} else {
			item = d.jsonLine(msg, n, trimmed)
		}
		if err := chunks.add(Line{N: n, Item: item}); err != nil {
			return err
		}
	}
	return chunks.flush()
}

// chunker hands lines to fn Chunk at a time.
type chunker struct {
	fn    func([]Line) error
	lines []Line
}

func (c *chunker) add(l Line) error {
	// Every rejection names its line: the agent tells a line it quarantined
	// before a crash from another line with the same id and error by it.
	if rej := l.Rejected; rej != nil && !strings.HasPrefix(rej.Message, fmt.Sprintf("line %d: ", l.N)) {
		rej.Message = fmt.Sprintf("line %d: %s", l.N, rej.Message)
	}
	if rej := l.Rejected; rej != nil && len(l.Raw) > drivers.QuarantineSample {
		// Only a sample of a rejected line is quarantined, as of an MQTT
		// payload; its size is recorded.
		rej.Message = fmt.Sprintf("%s (line of %d bytes, first %d kept)", rej.Message, len(l.Raw), drivers.QuarantineSample)
		l.Raw = drivers.Sample(l.Raw)
	}
	if c.lines = append(c.lines, l); len(c.lines) == Chunk {
		return c.flush()
	}
	return nil
}

func (c *chunker) flush() error {
	if len(c.lines) == 0 {
		return nil
	}
	lines := c.lines
	c.lines = make([]Line, 0, Chunk) // fn may keep lines
	return c.fn(lines)
}

var errLineTooLong = errors.New("line too long")

// readLine returns the next line without its newline, and its size; a
// line past maxLine is consumed and returned truncated with errLineTooLong.
func readLine(br *bufio.Reader) ([]byte, int, error) {
	var line []byte
	size := 0
	for {
		part, err := br.ReadSlice('\n')
		size += len(part)
		if len(line)+len(part) <= maxLine {
			line = append(line, part...)
		}
		switch {
		case err == bufio.ErrBufferFull:
			continue
		case err == io.EOF && len(line) > 0:
			err = nil
		}
		if err != nil {
			return nil, size, err
		}
		if len(part) > 0 && part[len(part)-1] == '\n' {
			size-- // the newline is not part of the line
		}
		if len(line) >= maxLine || size > maxLine {
			return line, size, errLineTooLong
		}
		return bytes.TrimRight(line, "\r\n"), size, nil
	}
}

// jsonLine decodes one JSON event; a line without an id gets "{file}:{line}".
func (d *Driver) jsonLine(msg drivers.Message, n int, line []byte) drivers.Item {
	if line[0] != '{' {
		return drivers.Item{Rejected: drivers.Reject(lineID(msg.Subtopic, n), drivers.ReasonBadJSON, "line %d: not a JSON object", n), Raw: line}
	}
	var obj map[string]any
	dec := jsonDecoder(line)
	if err := dec.Decode(&obj); err != nil {
		return drivers.Item{Rejected: drivers.Reject(lineID(msg.Subtopic, n), drivers.ReasonBadJSON, "line %d: %v", n, err), Raw: line}
	}
	if obj["id"] == nil {
		obj["id"] = lineID(msg.Subtopic, n)
	}
	return d.decodeObject(msg, obj, line)
}

// decodeObject runs one event object through the events driver.
func (d *Driver) decodeObject(msg drivers.Message, obj map[string]any, raw []byte) drivers.Item {
	payload, err := marshal(obj)
	if err != nil {
		return drivers.Item{Rejected: drivers.Reject("", drivers.ReasonBadField, "%v", err), Raw: raw}
	}
	m := msg
	m.Payload = payload
	item := d.json.Decode(m)[0]
	item.Raw = raw
	return item
}

var _ drivers.Driver = (*Driver)(nil)
