// Package yamlconf reads the strict YAML config files of every role:
// unknown keys and wrong types are errors naming the key path (as the
// operator writes it, mqtt.anonymous, not the Go type) and the line, with
// the closest known key as a suggestion.
package yamlconf

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Load decodes path over whatever cfg already holds (the defaults).
func Load(path string, cfg any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read config: %w", err)
	}
	if err := Decode(b, cfg); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// Decode decodes b over cfg (a pointer to a struct). Unknown keys are
// reported before decoding, all at once, as "line N: a.b: unknown key
// (did you mean a.c?)"; type errors name the key path of their line.
func Decode(b []byte, cfg any) error {
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return err // a syntax error: yaml names the line
	}
	paths := map[int]string{}
	var unknown []string
	walk(&doc, reflect.TypeOf(cfg), "", paths, &unknown)
	if len(unknown) > 0 {
		return fmt.Errorf("unknown keys:\n  %s", strings.Join(unknown, "\n  "))
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true) // walk missed nothing; this keeps it honest
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		return namePaths(err, paths)
	}
	return nil
}

var unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()

// walk checks the keys of node against t's yaml fields, records the key
// path of each value's line in paths, and appends unknown keys.
func walk(node *yaml.Node, t reflect.Type, path string, paths map[int]string, unknown *[]string) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if path != "" {
		if _, ok := paths[node.Line]; !ok {
			paths[node.Line] = path
		}
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		return // its own rules
	}
	switch node.Kind {
	case yaml.DocumentNode:
		for _, n := range node.Content {
			walk(n, t, path, paths, unknown)
		}
	case yaml.MappingNode:
		switch t.Kind() {
		case reflect.Struct:
			fields := yamlFields(t)
			for i := 0; i+1 < len(node.Content); i += 2 {
				key, value := node.Content[i], node.Content[i+1]
				full := join(path, key.Value)
				paths[key.Line] = full
				ft, ok := fields[key.Value]
				if !ok {
					msg := fmt.Sprintf("line %d: %s: unknown key", key.Line, full)
					if s := closest(key.Value, fields); s != "" {
						msg += fmt.Sprintf(" (did you mean %s?)", join(path, s))
					} else {
						msg += fmt.Sprintf(" (known keys%s: %s)", map[bool]string{true: " of " + path}[path != ""], strings.Join(sortedKeys(fields), ", "))
					}
					*unknown = append(*unknown, msg)
					continue
				}
				walk(value, ft, full, paths, unknown)
			}
		case reflect.Map:
			for i := 0; i+1 < len(node.Content); i += 2 {
				key, value := node.Content[i], node.Content[i+1]
				full := join(path, key.Value)
				paths[key.Line] = full
				walk(value, t.Elem(), full, paths, unknown)
			}
		}
	case yaml.SequenceNode:
		if t.Kind() == reflect.Slice || t.Kind() == reflect.Array {
			for i, n := range node.Content {
				walk(n, t.Elem(), path+"["+strconv.Itoa(i)+"]", paths, unknown)
			}
		}
	}
}

// yamlFields maps each yaml key of struct t to its field type, as yaml.v3
// names them: the tag's name, else the lower-cased field name; ",inline"
// structs contribute their own keys.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for f := range t.Fields() {
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if strings.Contains(","+opts+",", ",inline,") {
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				for k, v := range yamlFields(ft) {
					out[k] = v
				}
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = f.Type
	}
	return out
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func sortedKeys(m map[string]reflect.Type) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// closest is the known key nearest to key by edit distance, if it is near
// enough to be a typo: at most 2 edits, and at most a third of the key.
func closest(key string, known map[string]reflect.Type) string {
	best, bestDist := "", 0
	for _, k := range sortedKeys(known) {
		d := editDistance(strings.ToLower(key), k)
		if best == "" || d < bestDist {
			best, bestDist = k, d
		}
	}
	if best == "" || bestDist > 2 || bestDist*3 > max(len(key), len(best)) {
		return ""
	}
	return best
}

// editDistance is the Levenshtein distance of a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

var lineRE = regexp.MustCompile(`^line (\d+): `)

// namePaths puts the key path of each error's line into yaml's type
// errors ("line 3: cannot unmarshal !!str `x` into int" becomes "line 3:
// mqtt.keep-alive: cannot unmarshal !!str `x` into int").
func namePaths(err error, paths map[int]string) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return err
	}
	lines := make([]string, len(te.Errors))
	for i, e := range te.Errors {
		lines[i] = e
		if m := lineRE.FindStringSubmatch(e); m != nil {
			n, _ := strconv.Atoi(m[1])
			if p, ok := paths[n]; ok {
				lines[i] = fmt.Sprintf("line %d: %s: %s", n, p, strings.TrimPrefix(e, m[0]))
			}
		}
	}
	return fmt.Errorf("wrong types:\n  %s", strings.Join(lines, "\n  "))
}
