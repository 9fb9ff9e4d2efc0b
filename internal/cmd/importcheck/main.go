// Command importcheck enforces the import rules of docs/ARCHITECTURE.md
// (STYLE.md "Where things live") over the module's non-test code: it runs
// `go list` and names the broken rule, so `make lint` fails on it.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
)

const module = "github.com/edgestock/edgestock"

// rule is one import rule: a package matching from may not import a
// package that forbidden reports.
type rule struct {
	name      string
	from      func(pkg string) bool
	forbidden func(imp string) bool
}

// testSupport reports whether pkg only serves tests (testenv, agenttest,
// storetest, apidoctest): it starts roles to test against, so it may
// import them.
func testSupport(pkg string) bool {
	last := pkg[strings.LastIndex(pkg, "/")+1:]
	return last == "testenv" || strings.HasSuffix(last, "test")
}

func under(prefix string) func(string) bool {
	return func(p string) bool { return p == module+"/"+prefix || strings.HasPrefix(p, module+"/"+prefix+"/") }
}

// crdtAllowed is what the pure CRDT code may import: no I/O, no clock, no
// goroutines or locks, no logging, nothing of the module.
var crdtAllowed = map[string]bool{
	"bytes": true, "cmp": true, "encoding/binary": true, "errors": true, "fmt": true, "maps": true,
	"math": true, "math/bits": true, "slices": true, "sort": true, "strconv": true, "strings": true,
}

var rules = []rule{
	{
		name:      "crdt is pure: it imports no I/O, clock, concurrency, logging or module package",
		from:      under("crdt"),
		forbidden: func(imp string) bool { return !crdtAllowed[imp] },
	},
	{
		name: "drivers turn payloads into events: they import no store, agent or sync package",
		from: under("drivers"),
		forbidden: func(imp string) bool {
			return under("agent")(imp) || under("internal/store")(imp) || under("sync")(imp)
		},
	},
	{
		name: "the agent role is imported only by commands, cmd/ and internal/cmd/ (the hub never imports the agent)",
		from: func(p string) bool {
			return !under("agent")(p) && !under("cmd")(p) && !under("internal/cmd")(p) && !testSupport(p)
		},
		forbidden: under("agent"),
	},
	{
		name: "shared machinery in internal/ imports no role (agent, sync/hub)",
		from: func(p string) bool {
			return under("internal")(p) && !under("internal/cmd")(p) && !testSupport(p)
		},
		forbidden: func(imp string) bool { return under("agent")(imp) || under("sync/hub")(imp) },
	},
}

type pkg struct {
	ImportPath string
	Imports    []string
}

func main() {
	// -e: a package that does not build (an import cycle is the usual
	// way to break these rules) is still listed with its imports, so the
	// rule is named rather than go's cycle error alone.
	cmd := exec.Command("go", "list", "-e", "-json", "./...")
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		fmt.Fprintln(os.Stderr, "importcheck: go list:", err)
		os.Exit(2)
	}
	if broken := check(json.NewDecoder(strings.NewReader(string(out)))); len(broken) > 0 {
		fmt.Fprintln(os.Stderr, "import rules broken (see docs/ARCHITECTURE.md):")
		for _, b := range broken {
			fmt.Fprintln(os.Stderr, "  "+b)
		}
		os.Exit(1)
	}
}

// check reads go list's JSON stream and returns one line per broken rule
// and import.
func check(dec *json.Decoder) []string {
	var broken []string
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			return broken
		} else if err != nil {
			return append(broken, "go list output: "+err.Error())
		}
		for _, r := range rules {
			if !r.from(p.ImportPath) {
				continue
			}
			for _, imp := range p.Imports {
				if r.forbidden(imp) {
					broken = append(broken, fmt.Sprintf("rule %q: %s imports %s", r.name, strings.TrimPrefix(p.ImportPath, module+"/"), strings.TrimPrefix(imp, module+"/")))
				}
			}
		}
	}
}
