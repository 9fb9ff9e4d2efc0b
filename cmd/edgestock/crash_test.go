package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/edgestock/edgestock/internal/store"
	"github.com/edgestock/edgestock/internal/testenv"
)

// childEnv makes the test binary run Main with the given arguments: the
// crash tests start the agent as a real child process they can SIGKILL.
const childEnv = "EDGESTOCK_TEST_CHILD_ARGS"

func TestMain(m *testing.M) {
	if args := os.Getenv(childEnv); args != "" {
		ctx, stop := signalContext()
		code := (&Main{Stdout: os.Stdout, Stderr: os.Stderr}).Run(ctx, strings.Split(args, "\x1f"))
		stop()
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// child is an agent process.
type child struct {
	cmd  *exec.Cmd
	base string
	done chan error
}

func startChild(t *testing.T, args ...string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+strings.Join(args, "\x1f"))
	if testing.Verbose() {
		cmd.Stderr = os.Stderr
	}
	require.NoError(t, cmd.Start())
	c := &child{cmd: cmd, done: make(chan error, 1)}
	go func() { c.done <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-c.done; c.done <- nil })
	for i, a := range args {
		if a == "--http" {
			c.base = "http://" + args[i+1]
		}
	}
	require.Eventually(t, func() bool {
		resp, err := http.Get(c.base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		// 401: ready, but this agent requires a token even for /readyz.
		return resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized
	}, 20*time.Second, 20*time.Millisecond, "agent did not become ready")
	return c
}

func (c *child) kill(t *testing.T) {
	t.Helper()
	require.NoError(t, c.cmd.Process.Signal(syscall.SIGKILL))
	<-c.done
	c.done <- nil
}

type loggedEvent struct {
	Seq    int64  `json:"seq"`
	Device string `json:"device"`
	ID     string `json:"id"`
	Delta  int64  `json:"delta"`
}

func (c *child) eventLog(t *testing.T) []loggedEvent {
	t.Helper()
	var all []loggedEvent
	since := int64(0)
	for {
		var page struct {
			Events []loggedEvent
			Next   int64
		}
		resp, err := http.Get(fmt.Sprintf("%s/v1/events?since=%d&limit=1000", c.base, since))
		require.NoError(t, err)
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&page))
		resp.Body.Close()
		if len(page.Events) == 0 {
			return all
		}
		all = append(all, page.Events...)
		since = page.Next
	}
}

func (c *child) onHand(t *testing.T, sku string) int64 {
	t.Helper()
	resp, err := http.Get(c.base + "/v1/stock/" + sku)
	require.NoError(t, err)
	defer resp.Body.Close()
	var v struct {
		OnHand int64 `json:"on_hand"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&v))
	return v.OnHand
}

// device publishes numbered events, remembers which were acknowledged, and
// after a failure resends what was not, as a real scanner does.
type device struct {
	mu     sync.Mutex
	acked  map[string]bool
	next   int
	unsent []int // sent but not acknowledged: resent first
}

func eventBody(i int) []byte {
	if i%4 == 3 {
		return fmt.Appendf(nil, `{"id":"e%d","type":"sale","sku":"SKU-C","qty":1}`, i)
	}
	return fmt.Appendf(nil, `{"id":"e%d","type":"receive","sku":"SKU-C","qty":%d}`, i, i%3+1)
}

// run publishes with inFlight concurrent publishes until an error or stop.
func (d *device) run(addr string, inFlight int, stop <-chan struct{}) {
	c, err := testenv.DialErr(context.Background(), addr, "crash-dev")
	if err != nil {
		return
	}
	defer c.Close()
	var wg sync.WaitGroup
	runCtx, cancelRun := context.WithCancel(context.Background())
	wg.Go(func() { <-stop; cancelRun(); _ = c.Conn.Close() }) // the agent was killed: fail what is in flight now
	for range inFlight {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				d.mu.Lock()
				var i int
				if len(d.unsent) > 0 {
					i, d.unsent = d.unsent[0], d.unsent[1:]
				} else {
					i = d.next
					d.next++
				}
				d.mu.Unlock()
				ctx, cancel := context.WithTimeout(runCtx, 5*time.Second)
				err := c.PublishQoS1(ctx, "edgestock/wh1/devices/crash-dev/events", eventBody(i))
				cancel()
				d.mu.Lock()
				if err == nil {
					d.acked[fmt.Sprint("e", i)] = true
				} else {
					d.unsent = append(d.unsent, i)
				}
				d.mu.Unlock()
				if err != nil {
					return
				}
			}
		})
	}
	wg.Wait()
}

// crashTest SIGKILLs the agent at random moments while a device publishes,
// then checks every acknowledged event was applied exactly once.
func crashTest(t *testing.T, rounds int, agentArgs []string, deviceAddr string) {
	dir := t.TempDir()
	httpAddr := testenv.FreeAddr(t)
	args := append([]string{"agent", "--warehouse", "wh1", "--data-dir", dir, "--http", httpAddr}, agentArgs...)
	d := &device{acked: map[string]bool{}}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	for round := range rounds {
		t.Logf("round %d: starting at %s", round, time.Now().Format("15:04:05.000"))
		c := startChild(t, args...)
		if deviceAddr == "" { // embedded broker: the agent is the broker
			deviceAddr = argValue(args, "--mqtt-listen")
		}
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() { d.run(deviceAddr, 8, stop) })
		time.Sleep(time.Duration(100+rng.IntN(400)) * time.Millisecond)
		c.kill(t)
		t.Logf("round %d: killed at %s", round, time.Now().Format("15:04:05.000"))
		close(stop)
		wg.Wait()
		t.Logf("round %d: %d acknowledged so far", round, len(d.acked))
	}
	c := startChild(t, args...)
	// With an external broker, acknowledged means queued at the broker: wait
	// for the agent to drain it.
	var log []loggedEvent
	require.Eventually(t, func() bool {
		log = c.eventLog(t)
		seen := map[string]bool{}
		for _, e := range log {
			seen[e.ID] = true
		}
		for id := range d.acked {
			if !seen[id] {
				return false
			}
		}
		return true
	}, 60*time.Second, 200*time.Millisecond, "every acknowledged event is applied")
	require.NotEmpty(t, d.acked)
	seen := map[string]bool{}
	var sum int64
	for _, e := range log {
		require.False(t, seen[e.ID], "event %s applied twice", e.ID)
		seen[e.ID] = true
		sum += e.Delta
	}
	require.Equal(t, sum, c.onHand(t, "SKU-C"), "on_hand is the sum of the applied events")
	require.NoError(t, c.cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, <-c.done, "graceful stop exits 0")
	c.done <- nil

	db, err := store.Open(t.Context(), dir, store.Options{Warehouse: "wh1"})
	require.NoError(t, err)
	defer db.Close()
	verdict, err := db.IntegrityCheck(t.Context())
	require.NoError(t, err)
	require.Equal(t, "ok", verdict)
	t.Logf("%d rounds: %d events acknowledged, %d applied", rounds, len(d.acked), len(log))
}

func argValue(args []string, name string) string {
	for i, a := range args {
		if a == name {
			return args[i+1]
		}
	}
	return ""
}

func TestCrash_EmbeddedBroker(t *testing.T) {
	crashTest(t, 10, []string{"--mqtt-listen", testenv.FreeAddr(t), "--mqtt-anonymous", "allow"}, "")
}

func TestCrash_Mosquitto(t *testing.T) {
	m := testenv.StartMosquitto(t)
	crashTest(t, 10, []string{"--mqtt-url", m.URL()}, m.Addr)
}

// With an external broker the agent's will marks it offline when it dies.
func TestCrash_WillMarksOffline(t *testing.T) {
	m := testenv.StartMosquitto(t)
	sub := testenv.Dial(t, m.Addr, "watcher")
	sub.SubscribeQoS1(t, "edgestock/wh1/status")
	c := startChild(t, "agent", "--warehouse", "wh1", "--data-dir", t.TempDir(), "--http", testenv.FreeAddr(t), "--mqtt-url", m.URL())
	state := func() string {
		select {
		case msg := <-sub.Received:
			var s struct{ State string }
			require.NoError(t, json.Unmarshal(msg.Payload, &s))
			return s.State
		case <-time.After(10 * time.Second):
			return "nothing"
		}
	}
	require.Equal(t, "online", state())
	c.kill(t)
	require.Equal(t, "offline", state(), "the broker publishes the will")
}
