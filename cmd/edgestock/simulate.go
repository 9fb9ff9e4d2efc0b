package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/edgestock/edgestock/internal/ingest"
)

// simStats counts what a simulation did.
type simStats struct {
	sent, acked                   atomic.Int64
	applied, duplicates, rejected atomic.Int64
	resultsSeen                   atomic.Int64
}

// runSimulate is `edgestock simulate`: scanner and POS devices publishing
// over MQTT at a steady rate, with a share of duplicates and malformed
// payloads. Each publish asks for its result on an MQTT v5 response topic,
// so the summary's applied/duplicate/rejected are the agent's own verdicts.
func (m *Main) runSimulate(ctx context.Context, c *command, args []string) error {
	fs := m.flagSet(c)
	mqttURL := fs.String("mqtt-url", "mqtt://127.0.0.1:1883", "the agent's broker")
	warehouse := fs.String("warehouse", "wh1", "warehouse ID in the topics")
	prefix := fs.String("topic-prefix", "edgestock", "topic prefix")
	devices := fs.Int("devices", 4, "simulated devices (half scanners, half POS terminals)")
	rate := fs.Float64("rate", 100, "publishes per second, all devices together")
	duration := fs.Duration("duration", 10*time.Second, "how long to publish (with --events: only if given)")
	events := fs.Int64("events", 0, "stop after this many publishes, all devices together (0: run for --duration)")
	skus := fs.Int("skus", 100, "distinct SKUs")
	token := fs.String("token", os.Getenv("EDGESTOCK_TOKEN"), "an admin token of the agent: each device logs in as sim-N with it (default $EDGESTOCK_TOKEN; none: anonymous, which the broker must allow)")
	dupShare := fs.Float64("duplicates", 0.05, "share of publishes that resend an earlier event")
	badShare := fs.Float64("malformed", 0.02, "share of publishes that are malformed")
	if _, err := m.parse(fs, c, args); err != nil {
		return err
	}
	if *devices < 1 || *rate <= 0 || *skus < 1 || *events < 0 || *dupShare < 0 || *badShare < 0 || *dupShare+*badShare >= 1 {
		return usageError{errors.New("simulate: need devices >= 1, rate > 0, skus >= 1, events >= 0, and duplicates + malformed < 1")}
	}
	total := int64(*rate * duration.Seconds())
	deadline := time.Now().Add(*duration)
	if *events > 0 {
		total = *events
		if !flagSet(fs, "duration") {
			deadline = time.Time{} // no time limit: the count ends the run
		}
	}
	// budget is how many publishes are left when --events counts them.
	var budget atomic.Int64
	budget.Store(*events)
	u, err := url.Parse(*mqttURL)
	if err != nil || u.Host == "" {
		return usageError{fmt.Errorf("simulate: --mqtt-url %q", *mqttURL)}
	}
	var st simStats
	runID := fmt.Sprintf("%x", time.Now().UnixNano())
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	clients := make([]*paho.Client, *devices)
	// The agent answers a Response Topic only in the device's own subtree.
	replyTopic := func(d int) string {
		return fmt.Sprintf("%s/%s/devices/sim-%d/replies/%s", *prefix, *warehouse, d, runID)
	}
	for d := range *devices {
		c, err := simDial(ctx, u.Host, fmt.Sprintf("sim-%s-%d", runID, d), fmt.Sprintf("sim-%d", d), *token, replyTopic(d), &st)
		if err != nil {
			return fmt.Errorf("simulate: connect %s: %w", u.Host, err)
		}
		clients[d] = c
		defer c.Disconnect(&paho.Disconnect{})
	}
	perDevice := time.Duration(float64(time.Second) * float64(*devices) / *rate)
	for d, c := range clients {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(d)))
			device := fmt.Sprintf("sim-%d", d)
			kind := "scanner"
			if d%2 == 1 {
				kind = "pos"
			}
			reply := replyTopic(d)
			var sent []string
			t := time.NewTicker(perDevice)
			defer t.Stop()
			for n := 0; deadline.IsZero() || time.Now().Before(deadline); n++ {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
				if *events > 0 && budget.Add(-1) < 0 {
					return
				}
				var payload string
				switch r := rng.Float64(); {
				case r < *badShare:
					payload = `{"id":"broken-` + fmt.Sprint(n) + `","type":` // truncated JSON
				case r < *badShare+*dupShare && len(sent) > 0:
					payload = sent[rng.IntN(len(sent))]
				default:
					typ := "receive"
					if kind == "pos" {
						typ = "sale"
					}
					payload = fmt.Sprintf(`{"id":"%s-%s-%d","type":%q,"sku":"SIM-%d","qty":%d}`, runID, device, n, typ, rng.IntN(*skus), 1+rng.IntN(3))
					sent = append(sent, payload)
				}
				st.sent.Add(1)
				_, err := c.Publish(ctx, &paho.Publish{Topic: *prefix + "/" + *warehouse + "/devices/" + device + "/events", QoS: 1,
					Payload: []byte(payload), Properties: &paho.PublishProperties{ResponseTopic: reply}})
				if err == nil {
					st.acked.Add(1)
				}
			}
		})
	}
	progress := time.NewTicker(time.Second)
	defer progress.Stop()
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	for running := true; running; {
		select {
		case <-finished:
			running = false
		case <-progress.C:
			fmt.Fprintf(m.Stderr, "\r%s sent %d/%d acked %d", bar(st.sent.Load(), total), st.sent.Load(), total, st.acked.Load())
		}
	}
	// Results follow their acks closely; wait until each acked publish has one.
	settle := time.Now().Add(10 * time.Second)
	for st.resultsSeen.Load() < st.acked.Load() && time.Now().Before(settle) {
		time.Sleep(20 * time.Millisecond)
	}
	fmt.Fprintln(m.Stderr)
	fmt.Fprintf(m.Stdout, "sent %d, acked %d, applied %d, duplicates %d, rejected %d\n",
		st.sent.Load(), st.acked.Load(), st.applied.Load(), st.duplicates.Load(), st.rejected.Load())
	if st.sent.Load() != st.acked.Load() || st.acked.Load() != st.applied.Load()+st.duplicates.Load()+st.rejected.Load() {
		return errors.New("simulate: the counts do not add up (sent = acked = applied + duplicates + rejected)")
	}
	return nil
}

func bar(n, total int64) string {
	const width = 30
	filled := int(min(n, total) * width / max(total, 1))
	b := make([]byte, width)
	for i := range b {
		b[i] = '.'
		if i < filled {
			b[i] = '#'
		}
	}
	return "[" + string(b) + "]"
}

// simDial connects one simulated device; results on its response topic
// are counted.
func simDial(ctx context.Context, host, clientID, device, token, replyTopic string, st *simStats) (*paho.Client, error) {
	conn, err := net.DialTimeout("tcp", host, 5*time.Second)
	if err != nil {
		return nil, err
	}
	c := paho.NewClient(paho.ClientConfig{ClientID: clientID, Conn: conn, OnPublishReceived: []func(paho.PublishReceived) (bool, error){
		func(pr paho.PublishReceived) (bool, error) {
			var r ingest.Result
			if json.Unmarshal(pr.Packet.Payload, &r) == nil {
				switch r.Status {
				case ingest.StatusApplied:
					st.applied.Add(1)
				case ingest.StatusDuplicate:
					st.duplicates.Add(1)
				case ingest.StatusRejected:
					st.rejected.Add(1)
				}
				st.resultsSeen.Add(1)
			}
			return true, nil
		}}})
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	login := &paho.Connect{ClientID: clientID, KeepAlive: 30, CleanStart: true}
	if token != "" {
		login.Username, login.UsernameFlag = device, true
		login.Password, login.PasswordFlag = []byte(token), true
	}
	if _, err := c.Connect(cctx, login); err != nil {
		_ = conn.Close()
		return nil, err
	}
	if _, err := c.Subscribe(cctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: replyTopic, QoS: 1}}}); err != nil {
		_ = c.Disconnect(&paho.Disconnect{})
		return nil, err
	}
	return c, nil
}
