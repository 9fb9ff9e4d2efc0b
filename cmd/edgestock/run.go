package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"github.com/edgestock/edgestock/agent"
	"github.com/edgestock/edgestock/internal/auth"
	"github.com/edgestock/edgestock/internal/store"
	"github.com/edgestock/edgestock/internal/store/pgstore"
	"github.com/edgestock/edgestock/sync/hub"
)

// Exit codes (SPEC §8).
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

// shutdownTimeout bounds a graceful stop; past it, what was not acknowledged
// is left for devices to resend.
const shutdownTimeout = 15 * time.Second

// Main is the command line: Run is testable, main only exits.
type Main struct {
	Stdout, Stderr io.Writer
}

// usageError marks errors that exit with code 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// Run executes one command and returns the process exit code.
func (m *Main) Run(ctx context.Context, args []string) int {
	var err error
	if len(args) > 0 && (args[0] == "--version" || args[0] == "-version") {
		args = append([]string{"version"}, args[1:]...)
	}
	err = m.dispatch(ctx, commands(), "", "", args)
	switch {
	case err == nil || errors.Is(err, errHelp):
		return exitOK
	case errors.As(err, new(usageError)):
		fmt.Fprintf(m.Stderr, "edgestock: %v\n", err)
		return exitUsage
	default:
		fmt.Fprintf(m.Stderr, "edgestock: %v\n", err)
		return exitFailure
	}
}

func versionString() string {
	v := version
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v += " (" + s.Value[:12] + ")"
			}
		}
	}
	return "edgestock " + v
}

// agentGCPercent is the agent's GOGC unless the environment sets one: the
// agent's live heap is small (a few MiB: the store's state lives in
// SQLite), so collecting at +50 % instead of +100 % lowers its peak RSS
// at no cost measured in throughput (docs/BENCHMARKS.md).
const agentGCPercent = 50

// agentGC sets agentGCPercent unless GOGC is set.
func agentGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(agentGCPercent)
	}
}

func (m *Main) runAgent(ctx context.Context, c *command, args []string) error {
	fs := m.flagSet(c)
	configPath := fs.String("config", "", "YAML config file (configs/agent.yaml shows every key)")
	warehouse := fs.String("warehouse", "", "warehouse ID (default: the host name)")
	dataDir := fs.String("data-dir", "", "data directory (default ./edgestock-data)")
	mqttURL := fs.String("mqtt-url", "", "external MQTT 5 broker, e.g. mqtt://127.0.0.1:1883 (default: embedded broker)")
	mqttListen := fs.String("mqtt-listen", "", "embedded broker address (default 127.0.0.1:1883)")
	mqttAnonymous := fs.String("mqtt-anonymous", "", "allow or deny anonymous clients on the embedded broker (default deny)")
	httpAddr := fs.String("http", "", "HTTP API address (default 127.0.0.1:7070)")
	logLevel := fs.String("log-level", "", "debug, info, warn or error")
	logFormat := fs.String("log-format", "", "text or json")
	hubURLs := fs.String("hub", "", "dial the hub instead of waiting for it (sites behind NAT): URL[,URL…], the next tried when one fails")
	hubToken := fs.String("hub-token", "", "the hub's uplink token for this warehouse, or @FILE (edgestock token issue --role hub --scope uplink --warehouse ID)")
	if _, err := m.parse(fs, c, args); err != nil {
		return err
	}
	agentGC()
	cfg := agent.DefaultConfig()
	if *configPath != "" {
		var err error
		if cfg, err = agent.LoadConfig(*configPath); err != nil {
			return usageError{err}
		}
	}
	// Flags win over the file, at start and at every reload.
	overrides := func(cfg *agent.Config) {
		for flagValue, field := range map[*string]*string{
			warehouse: &cfg.Warehouse, dataDir: &cfg.DataDir, mqttURL: &cfg.MQTT.URL,
			mqttListen: &cfg.MQTT.Listen, mqttAnonymous: &cfg.MQTT.Anonymous, httpAddr: &cfg.HTTP.Listen, logLevel: &cfg.Log.Level, logFormat: &cfg.Log.Format,
		} {
			if *flagValue != "" {
				*field = *flagValue
			}
		}
		if *hubURLs != "" {
			cfg.Hub.URL = *hubURLs
		}
		if *hubToken != "" {
			cfg.Hub.Token = *hubToken
		}
	}
	overrides(&cfg)
	cfg.Normalize()
	if err := cfg.Validate(); err != nil {
		return usageError{fmt.Errorf("invalid config:\n%w", err)}
	}
	if err := checkFirstToken(ctx, cfg); err != nil {
		return err
	}
	level := new(slog.LevelVar)
	level.Set(cfg.LogLevel())
	logger := newLogger(m.Stderr, cfg.Log.Format, level)
	tuneGC()
	agent.Version = version
	a := agent.New(cfg, logger)
	if *configPath != "" {
		a.Reload = agent.Reload{Path: *configPath, Overrides: overrides, LogLevel: level}
	}
	err := runUntilDone(ctx, a, logger)
	if errors.Is(err, store.ErrWrongWarehouse) {
		return usageError{err} // a config mismatch: restarting cannot fix it
	}
	return err
}

// checkFirstToken refuses, as bad usage and before anything is created, an
// agent whose HTTP API listens beyond loopback while no token has been
// issued: every request would be refused (SPEC §6). The agent checks again
// when it opens its store.
func checkFirstToken(ctx context.Context, cfg agent.Config) error {
	if auth.IsLoopback(cfg.HTTP.Listen) {
		return nil
	}
	advice := fmt.Sprintf("http.listen %s is not a loopback address and no token has been issued in %s: every request would be refused. "+
		"Issue one first: edgestock token issue --name ops --scope admin --warehouse %s --data-dir %s",
		cfg.HTTP.Listen, absPath(cfg.DataDir), cfg.Warehouse, cfg.DataDir)
	if _, err := os.Stat(filepath.Join(cfg.DataDir, store.FileName)); errors.Is(err, os.ErrNotExist) {
		return usageError{errors.New(advice)}
	}
	// Beside: another agent may be running on this data dir (its lock is
	// taken in Open, after this check), and this look must not decide
	// anything about its replica or checkpoint under it.
	db, err := store.Open(ctx, cfg.DataDir, store.Options{Warehouse: cfg.Warehouse, Beside: true})
	if errors.Is(err, store.ErrWrongWarehouse) {
		return usageError{err}
	}
	if err != nil {
		return err
	}
	has, err := db.HasTokens(ctx)
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	switch {
	case err != nil:
		return err
	case !has:
		return usageError{errors.New(advice)}
	}
	return nil
}

// absPath is p made absolute for messages, so an operator sees which
// directory was looked at whatever the working directory was.
func absPath(p string) string {
	if abs, err := filepath.Abs(p); err == nil {
		return abs
	}
	return p
}

// lifecycle is what a role runs: the agent or the hub.
type lifecycle interface {
	Open(context.Context) error
	Close(context.Context) error
}

// runUntilDone opens s, serves until ctx ends (SIGINT, SIGTERM), then
// closes it within shutdownTimeout.
func runUntilDone(ctx context.Context, s lifecycle, logger *slog.Logger) error {
	if err := s.Open(ctx); err != nil {
		return err
	}
	<-ctx.Done()
	logger.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	return s.Close(sctx)
}

// gcPercent trades memory for CPU: the agent's live heap is a few MiB, so
// collecting at 4x instead of 2x of it costs little memory and, measured
// with BenchmarkAgent_MosquittoIngest, saves about 7 % of ingest CPU.
const gcPercent = 400

// tuneGC applies gcPercent unless the operator set GOGC.
func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
}

// newLogger logs to w as text, or JSON when format is "json".
func newLogger(w io.Writer, format string, level slog.Leveler) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// agentFlags collects repeated --agent WH=URL flags.
type agentFlags []string

func (a *agentFlags) String() string     { return strings.Join(*a, ",") }
func (a *agentFlags) Set(v string) error { *a = append(*a, v); return nil }

func (m *Main) runHub(ctx context.Context, c *command, args []string) error {
	fs := m.flagSet(c)
	configPath := fs.String("config", "", "YAML config file (configs/hub.yaml shows every key)")
	dataDir := fs.String("data-dir", "", "data directory (default ./edgestock-hub-data)")
	storeURL := fs.String("store", "", "store: sqlite (default, in --data-dir) or a postgres:// URL")
	name := fs.String("name", "", "this hub process's name on a shared PostgreSQL: one replica across restarts")
	httpAddr := fs.String("http", "", "HTTP API address (default 127.0.0.1:7080)")
	logLevel := fs.String("log-level", "", "debug, info, warn or error (default info)")
	logFormat := fs.String("log-format", "", "text or json (default text)")
	var agents, tokens agentFlags
	fs.Var(&agents, "agent", "an agent to sync with, WAREHOUSE=URL (repeatable)")
	fs.Var(&tokens, "agent-token", "the sync token for an agent, WAREHOUSE=@FILE to read it from a file (repeatable); "+
		"or set $"+agentTokenEnvPrefix+"{WAREHOUSE}, e.g. "+agentTokenEnv("wh1")+": a token on the command line shows in ps")
	if _, err := m.parse(fs, c, args); err != nil {
		return err
	}
	cfg := hub.DefaultFileConfig()
	if *configPath != "" {
		var err error
		if cfg, err = hub.LoadFileConfig(*configPath); err != nil {
			return usageError{err}
		}
	}
	for flagValue, field := range map[*string]*string{name: &cfg.Name, dataDir: &cfg.DataDir, storeURL: &cfg.Store, httpAddr: &cfg.HTTP,
		logLevel: &cfg.Log.Level, logFormat: &cfg.Log.Format} {
		if *flagValue != "" {
			*field = *flagValue
		}
	}
	for _, a := range agents {
		wh, u, err := hub.ParseAgentFlag(a)
		if err != nil {
			return usageError{err}
		}
		cfg.Agents[wh] = u
	}
	for _, a := range tokens {
		wh, tok, err := hub.ParseAgentFlag(a)
		if err != nil {
			return usageError{fmt.Errorf("--agent-token: %w", err)}
		}
		cfg.AgentTokens[wh] = tok
	}
	if err := resolveAgentTokens(&cfg, os.LookupEnv); err != nil {
		return usageError{err}
	}
	sc, err := cfg.Validate()
	if err != nil {
		return usageError{fmt.Errorf("invalid config:\n%w", err)}
	}
	level := new(slog.LevelVar)
	if err := level.UnmarshalText([]byte(cfg.Log.Level)); err != nil {
		return usageError{fmt.Errorf("log.level: %q must be debug, info, warn or error", cfg.Log.Level)}
	}
	logger := newLogger(m.Stderr, cfg.Log.Format, level)
	tuneGC()
	h := hub.NewServer(sc, logger)
	err = runUntilDone(ctx, h, logger)
	if errors.Is(err, auth.ErrNoToken) || errors.Is(err, store.ErrWrongWarehouse) || errors.Is(err, pgstore.ErrNameInUse) {
		return usageError{err} // a config to mend first: restarting cannot fix it
	}
	return err
}

// agentTokenEnvPrefix names the environment variables holding the hub's
// sync tokens, one per warehouse: EDGESTOCK_AGENT_TOKEN_WH1.
const agentTokenEnvPrefix = "EDGESTOCK_AGENT_TOKEN_"

// agentTokenEnv is the variable for a warehouse: upper case, with '.' and
// '-' (valid in IDs, not in shell names) as '_'.
func agentTokenEnv(warehouse string) string {
	return agentTokenEnvPrefix + strings.NewReplacer(".", "_", "-", "_").Replace(strings.ToUpper(warehouse))
}

// resolveAgentTokens reads "@FILE" tokens from their files and fills the
// tokens of agents that have none from the environment, so no token needs
// to be on the command line (where ps shows it) or in the config file.
func resolveAgentTokens(cfg *hub.FileConfig, lookupEnv func(string) (string, bool)) error {
	for wh := range cfg.Agents {
		if _, ok := cfg.AgentTokens[wh]; ok {
			continue
		}
		if tok, ok := lookupEnv(agentTokenEnv(wh)); ok && tok != "" {
			cfg.AgentTokens[wh] = tok
		}
	}
	for wh, tok := range cfg.AgentTokens {
		var err error
		if cfg.AgentTokens[wh], err = auth.FromFile(tok); err != nil {
			return fmt.Errorf("agent-tokens.%s: %w", wh, err)
		}
	}
	return nil
}

// runConfigCheck is `edgestock config check FILE [--role agent|hub]`: the
// file is parsed strictly and validated as the role would at start; errors
// name the key (and the line, for YAML errors) and exit 2.
func (m *Main) runConfigCheck(_ context.Context, c *command, args []string) error {
	fs := m.flagSet(c)
	role := fs.String("role", "", "agent or hub (default: hub when the file name contains \"hub\", else agent)")
	pos, err := m.parse(fs, c, args)
	if err != nil {
		return err
	}
	file := pos[0]
	if *role == "" {
		*role = "agent"
		if strings.Contains(filepath.Base(file), "hub") {
			*role = "hub"
		}
	}
	switch *role {
	case "agent":
		cfg, err := agent.LoadConfig(file)
		if err == nil {
			cfg.Normalize()
			err = cfg.Validate()
		}
		if err != nil {
			return usageError{fmt.Errorf("%s:\n%w", file, err)}
		}
	case "hub":
		cfg, err := hub.LoadFileConfig(file)
		if err == nil {
			err = resolveAgentTokens(&cfg, func(string) (string, bool) { return "", false })
		}
		if err == nil {
			_, err = cfg.Validate()
		}
		if err != nil {
			return usageError{fmt.Errorf("%s:\n%w", file, err)}
		}
	default:
		return usageError{fmt.Errorf("config check: --role %q must be agent or hub", *role)}
	}
	fmt.Fprintf(m.Stdout, "%s: ok (%s)\n", file, *role)
	return nil
}
