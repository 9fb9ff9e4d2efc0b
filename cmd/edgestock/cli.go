package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// The command line is a tree of commands written with the standard flag
// package rather than spf13/cobra: what we need from cobra is flags and
// positional arguments in any order and per-command help, about 100 lines
// here, while cobra and pflag would change every flag's parsing (pflag
// refuses the single-dash -data-dir form scripts already use) and add two
// modules to a binary that ships to warehouse PCs.

// command is one node of the tree: a leaf runs, a parent dispatches to the
// subcommand named by its first argument.
type command struct {
	name    string // the path after "edgestock", e.g. "token revoke"
	args    string // positional arguments for the usage line, e.g. "ID"
	summary string // one line, shown in the parent's list and in -h
	// minArgs and maxArgs bound the positional arguments of a leaf;
	// anything else is a usage error naming the extra argument.
	minArgs, maxArgs int
	run              func(m *Main, ctx context.Context, c *command, args []string) error
	subs             []*command
}

// errHelp marks a request for help that was answered: exit 0.
var errHelp = flag.ErrHelp

// commands is the whole command line (SPEC §8).
func commands() []*command {
	return []*command{
		{name: "agent", summary: "run the warehouse agent", run: (*Main).runAgent},
		{name: "hub", summary: "run the central hub", run: (*Main).runHub},
		{name: "token", summary: "issue, list or revoke API tokens in a data dir (created if missing) or a hub's PostgreSQL", subs: []*command{
			{name: "token issue", summary: "issue a token and print it", run: (*Main).runTokenIssue},
			{name: "token list", summary: "list the tokens and their state", run: (*Main).runTokenList},
			{name: "token revoke", args: "ID", minArgs: 1, maxArgs: 1, summary: "revoke a token: a running agent refuses it from its next request", run: (*Main).runTokenRevoke},
		}},
		{name: "config", summary: "check a config file", subs: []*command{
			{name: "config check", args: "FILE", minArgs: 1, maxArgs: 1, summary: "validate an agent or hub config as the role would at start (exit 2 on errors)", run: (*Main).runConfigCheck},
		}},
		{name: "service", summary: "install and control the systemd unit or Windows service", subs: serviceCommands()},
		{name: "status", summary: "a running agent's status, or a hub's warehouses", run: (*Main).runStatus},
		{name: "stock", args: "[SKU]", maxArgs: 1, summary: "stock levels as a table, from an agent or a hub", run: (*Main).runStock},
		{name: "simulate", summary: "load for an agent or a hub: devices, or whole sites", subs: []*command{
			{name: "simulate devices", summary: "scanner and POS devices publishing over MQTT to an agent", run: (*Main).runSimulate},
			{name: "simulate sites", summary: "many light agents in this process, syncing with a hub (uplink or pull)", run: (*Main).runSimulateSites},
		}},
		{name: "version", summary: "print the version", run: func(m *Main, _ context.Context, c *command, args []string) error {
			if _, err := m.parse(m.flagSet(c), c, args); err != nil {
				return err
			}
			fmt.Fprintln(m.Stdout, versionString())
			return nil
		}},
	}
}

func serviceCommands() []*command {
	var subs []*command
	for _, a := range []struct{ action, summary string }{
		{"install", "install the service of a role (systemd unit, or Windows service), data in " + serviceDataDir("{role}")},
		{"uninstall", "remove the service of a role (its data stays)"},
		{"start", "start the service of a role"},
		{"stop", "stop the service of a role"},
		{"restart", "restart the service of a role"},
		{"status", "say whether the service of a role is running"},
	} {
		action := a.action
		subs = append(subs, &command{name: "service " + action, summary: a.summary,
			run: func(m *Main, _ context.Context, c *command, args []string) error {
				return m.runService(c, action, args)
			}})
	}
	return subs
}

// usage lists the commands of the tree, or of one parent.
func usage(cmds []*command, parent, summary string) string {
	var b strings.Builder
	if parent == "" {
		b.WriteString("usage: edgestock <command> [arguments] [flags]\n\ncommands:\n")
	} else {
		fmt.Fprintf(&b, "usage: edgestock %s <command> [arguments] [flags]\n\n%s\n\ncommands:\n", parent, summary)
	}
	w := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	for _, c := range cmds {
		name := strings.TrimSpace(strings.TrimPrefix(c.name, parent))
		fmt.Fprintf(w, "  %s\t%s\n", strings.TrimSpace(name+" "+c.args), c.summary)
	}
	_ = w.Flush()
	if parent == "" {
		b.WriteString("\nFlags and arguments may come in any order. Every command answers -h.\n" +
			"--version prints the version.\n")
	} else {
		fmt.Fprintf(&b, "\nSee edgestock %s <command> -h.\n", parent)
	}
	return b.String()
}

// dispatch runs the command args names among cmds, the subcommands of
// parent (summary says what parent does).
func (m *Main) dispatch(ctx context.Context, cmds []*command, parent, summary string, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(m.Stderr, usage(cmds, parent, summary))
		if parent == "" {
			return usageError{errors.New("no command given")}
		}
		return usageError{fmt.Errorf("%s: want a command", parent)}
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		if parent == "" && args[0] == "help" && len(args) > 1 {
			// edgestock help token revoke = edgestock token revoke -h
			return m.dispatch(ctx, cmds, parent, summary, append(append([]string{}, args[1:]...), "-h"))
		}
		fmt.Fprint(m.Stdout, usage(cmds, parent, summary))
		return errHelp
	}
	var names []string
	for _, c := range cmds {
		name := strings.TrimSpace(strings.TrimPrefix(c.name, parent))
		names = append(names, name)
		if name != args[0] {
			continue
		}
		if c.subs != nil {
			return m.dispatch(ctx, c.subs, c.name, c.summary, args[1:])
		}
		return c.run(m, ctx, c, args[1:])
	}
	for _, a := range args {
		if a == "-h" || a == "-help" || a == "--help" {
			fmt.Fprint(m.Stdout, usage(cmds, parent, summary))
			return errHelp
		}
	}
	where := "command"
	if parent != "" {
		where = parent + " command"
	}
	if strings.HasPrefix(args[0], "-") && parent != "" {
		return usageError{fmt.Errorf("%s: the command comes first, then flags and arguments in any order: edgestock %s %s [flags]",
			parent, parent, strings.Join(names, "|"))}
	}
	return usageError{fmt.Errorf("unknown %s %q (one of: %s; see edgestock %s -h)", where, args[0], strings.Join(names, ", "),
		strings.TrimSpace(parent))}
}

// flagSet is a quiet flag set for c: parse reports errors and help itself,
// once.
func (m *Main) flagSet(c *command) *flag.FlagSet {
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// parse parses flags and positional arguments in any order ("--" ends the
// flags) and checks the number of positional arguments. -h prints c's own
// help to stdout and returns errHelp.
func (m *Main) parse(fs *flag.FlagSet, c *command, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				m.help(fs, c)
				return nil, errHelp
			}
			return nil, usageError{fmt.Errorf("%s: %s (see edgestock %s -h)", c.name, flagError(err), c.name)}
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			positional = append(positional, rest...)
			break
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
	switch {
	case len(positional) > c.maxArgs && c.maxArgs == 0:
		return nil, usageError{fmt.Errorf("%s: unexpected argument %q: it takes none (see edgestock %s -h)", c.name, positional[0], c.name)}
	case len(positional) > c.maxArgs:
		return nil, usageError{fmt.Errorf("%s: unexpected argument %q: want %s (see edgestock %s -h)", c.name, positional[c.maxArgs], c.args, c.name)}
	case len(positional) < c.minArgs:
		return nil, usageError{fmt.Errorf("%s: want %s (see edgestock %s -h)", c.name, c.args, c.name)}
	}
	return positional, nil
}

// flagError rewords the flag package's errors with the "--" spelling the
// docs use, and says what an empty value usually means.
func flagError(err error) string {
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "flag needs an argument: -"); ok {
		return fmt.Sprintf("--%s needs a value (an unset shell variable, as in --%s $UNSET, gives none)", name, name)
	}
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: -"); ok {
		return fmt.Sprintf("unknown flag --%s", name)
	}
	return strings.Replace(msg, " -", " --", 1)
}

// help prints c's usage line, summary and flags to stdout.
func (m *Main) help(fs *flag.FlagSet, c *command) {
	line := "edgestock " + c.name
	if c.args != "" {
		line += " " + c.args
	}
	fmt.Fprintf(m.Stdout, "usage: %s [flags]\n\n%s\n", line, c.summary)
	first := true
	fs.VisitAll(func(f *flag.Flag) {
		if first {
			fmt.Fprint(m.Stdout, "\nflags:\n")
			first = false
		}
		name, text := flag.UnquoteUsage(f)
		head := "  --" + f.Name
		if name != "" {
			head += " " + name
		}
		fmt.Fprintf(m.Stdout, "%s\n    \t%s", head, text)
		if f.DefValue != "" && f.DefValue != "0" && f.DefValue != "false" && f.DefValue != "[]" {
			fmt.Fprintf(m.Stdout, " (default %s)", f.DefValue)
		}
		fmt.Fprintln(m.Stdout)
	})
}

// flagSet reports whether the command line set the flag name.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}
