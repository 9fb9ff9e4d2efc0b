// Package uplink carries the hub's sync with an agent over a connection
// the agent dials (SPEC §11): warehouse PCs sit behind NAT and firewalls
// that take no inbound connection, so the agent opens one to the hub,
// upgrades it from HTTP/1.1, and from then on the roles turn round: the
// hub is the HTTP/2 client and the agent the server, over that one
// connection. The sync protocol itself is unchanged (the same deltas,
// merges, cursors and relays as when the hub dials the agent), only its
// transport is; HTTP/2 lets the hub's long poll, its pushes and a relayed
// request share the connection.
//
// Why not WebSocket? The hub would have to carry requests and answers in
// messages of its own; over an upgraded connection it speaks plain
// HTTP/2, and every handler, timeout and error path of the pull mode
// serves the uplink too. TLS comes from the hub's listener (https URL);
// the agent verifies the hub's certificate, and the hub the agent's
// uplink token, bound to one warehouse.
package uplink

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Path is the hub's route an agent dials; Protocol the Upgrade token.
const (
	Path     = "/v1/uplink"
	Protocol = "edgestock-uplink/1"
	// WarehouseHeader names the warehouse the agent says it is; the hub
	// holds it to the token's.
	WarehouseHeader = "X-Edgestock-Warehouse"
)

// h2c is HTTP/2 without TLS: the tunnel is already the agent's TLS
// connection to the hub (or loopback).
func h2c() *http.Protocols {
	p := new(http.Protocols)
	p.SetUnencryptedHTTP2(true)
	return p
}

// Dial opens an uplink to the hub at base (http or https URL) as
// warehouse with token: the connection, upgraded, on which the agent
// then serves the hub (Serve). tlsCfg verifies an https hub (nil: the
// system roots).
func Dial(ctx context.Context, base, warehouse, token string, tlsCfg *tls.Config) (net.Conn, error) {
	u, err := url.Parse(base)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("hub url %q: want http(s)://host:port", base)
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), map[string]string{"http": "80", "https": "443"}[u.Scheme])
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return nil, err
	}
	if u.Scheme == "https" {
		cfg := tlsCfg.Clone()
		if cfg == nil {
			cfg = &tls.Config{}
		}
		cfg.ServerName, cfg.NextProtos = u.Hostname(), []string{"http/1.1"} // an Upgrade is HTTP/1.1's
		tc := tls.Client(conn, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, err
		}
		conn = tc
	}
	if deadline, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(deadline)
	}
	req, err := http.NewRequest(http.MethodGet, strings.TrimRight(base, "/")+Path, nil)
	if err != nil {
		conn.Close()
		return nil, err
	}
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", Protocol)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set(WarehouseHeader, warehouse)
	if err := req.Write(conn); err != nil {
		conn.Close()
		return nil, err
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		conn.Close()
		return nil, err
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		conn.Close()
		return nil, &RefusedError{Status: resp.StatusCode, Message: strings.TrimSpace(string(msg))}
	}
	_ = conn.SetDeadline(time.Time{})
	return &bufferedConn{Conn: conn, r: br}, nil
}

// RefusedError is the hub's answer to an uplink it did not take.
type RefusedError struct {
	Status  int
	Message string
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("hub refused the uplink: %d %s: %s", e.Status, http.StatusText(e.Status), e.Message)
}

// Lasting reports whether asking again cannot help until someone acts:
// the token is refused.
func (e *RefusedError) Lasting() bool {
	return e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden
}

// bufferedConn reads what the reader of the upgrade buffered first.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// Serve serves h to the hub over conn, as HTTP/2, until the connection
// ends or ctx does.
func Serve(ctx context.Context, conn net.Conn, h http.Handler) error {
	l := &oneConn{conn: NotifyClose(conn), done: make(chan struct{})}
	// Pings find a hub gone silent (no FIN: a crash of its machine, a NAT
	// that forgot the flow) within about 25 s, as the hub finds the agent.
	srv := &http.Server{Handler: h, Protocols: h2c(), HTTP2: &http.HTTP2Config{SendPingTimeout: 15 * time.Second, PingTimeout: 10 * time.Second}}
	stop := context.AfterFunc(ctx, func() {
		// A merge in flight ends before the agent closes its store; a long
		// poll does not hold the shutdown up.
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if srv.Shutdown(sctx) != nil {
			_ = srv.Close()
		}
	})
	defer stop()
	err := srv.Serve(l)
	if errors.Is(err, http.ErrServerClosed) || errors.Is(err, net.ErrClosed) {
		return ctx.Err()
	}
	return err
}

// oneConn is a listener that yields conn once, then waits until it is
// closed: http.Server then returns.
type oneConn struct {
	conn *ClosingConn
	once sync.Once
	done chan struct{}
	shut sync.Once
}

func (l *oneConn) Accept() (net.Conn, error) {
	var c net.Conn
	l.once.Do(func() { c = l.conn })
	if c != nil {
		return c, nil
	}
	select {
	case <-l.conn.Closed():
	case <-l.done:
	}
	return nil, net.ErrClosed
}

func (l *oneConn) Close() error {
	l.shut.Do(func() { close(l.done) })
	return nil
}

func (l *oneConn) Addr() net.Addr { return l.conn.LocalAddr() }

// ClosingConn is a connection that says when it is closed.
type ClosingConn struct {
	net.Conn
	once   sync.Once
	closed chan struct{}
}

// NotifyClose wraps conn.
func NotifyClose(conn net.Conn) *ClosingConn {
	return &ClosingConn{Conn: conn, closed: make(chan struct{})}
}

// Closed is closed once Close is called.
func (c *ClosingConn) Closed() <-chan struct{} { return c.closed }

func (c *ClosingConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return c.Conn.Close()
}

// Accept takes an agent's uplink request at the hub: it answers 101 and
// returns the connection, on which the hub is then the client. The
// caller has checked the request (token, warehouse).
func Accept(w http.ResponseWriter, r *http.Request) (net.Conn, error) {
	if !strings.EqualFold(r.Header.Get("Upgrade"), Protocol) {
		return nil, fmt.Errorf("Upgrade: want %s", Protocol)
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return nil, fmt.Errorf("hijack: %w (an uplink needs HTTP/1.1)", err)
	}
	_ = conn.SetDeadline(time.Time{})
	if _, err := brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: " + Protocol + "\r\n\r\n"); err != nil {
		conn.Close()
		return nil, err
	}
	if err := brw.Flush(); err != nil {
		conn.Close()
		return nil, err
	}
	if brw.Reader.Buffered() > 0 { // the agent sends nothing until the hub speaks
		return &bufferedConn{Conn: conn, r: brw.Reader}, nil
	}
	return conn, nil
}

// Slot holds an agent's current uplink at the hub, for the HTTP/2
// transport to the agent to dial: Dial waits for one.
type Slot struct {
	mu     sync.Mutex
	closed bool          // the hub is shutting down
	conn   net.Conn      // offered, not yet taken
	live   net.Conn      // taken: the transport's connection
	ready  chan struct{} // closed when conn is set
}

// NewSlot returns an empty slot.
func NewSlot() *Slot { return &Slot{ready: make(chan struct{})} }

// Offer makes conn the agent's uplink; an older one is closed (the agent
// came back before the hub saw its old connection die).
func (s *Slot) Offer(conn net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, old := range []net.Conn{s.conn, s.live} {
		if old != nil {
			old.Close()
		}
	}
	s.conn, s.live = conn, nil
	close(s.ready)
	s.ready = make(chan struct{})
}

// Drop closes the uplink if it is conn (its token was revoked, say).
func (s *Slot) Drop(conn net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == conn || s.live == conn {
		conn.Close()
		if s.conn == conn {
			s.conn = nil
		}
	}
}

// Close closes the uplink (the hub is shutting down).
func (s *Slot) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range []net.Conn{s.conn, s.live} {
		if c != nil {
			c.Close()
		}
	}
	s.conn, s.live, s.closed = nil, nil, true
	close(s.ready) // Dial returns
	s.ready = make(chan struct{})
}

// dialWait bounds how long Dial waits for an uplink: the HTTP transport
// dials on a context no request's timeout ends, so a wait without a bound
// would leave a goroutine behind for every request to an absent agent.
const dialWait = 2 * time.Second

// ErrNoUplink is Dial's error when the agent has no uplink to this hub.
var ErrNoUplink = errors.New("the agent has no uplink to this hub process")

// Dial returns the uplink offered last, waiting for one up to dialWait.
func (s *Slot) Dial(ctx context.Context, _, _ string) (net.Conn, error) {
	timer := time.NewTimer(dialWait)
	defer timer.Stop()
	for {
		s.mu.Lock()
		if c := s.conn; c != nil {
			s.conn, s.live = nil, c
			s.mu.Unlock()
			return c, nil
		}
		ready, closed := s.ready, s.closed
		s.mu.Unlock()
		if closed {
			return nil, ErrNoUplink
		}
		select {
		case <-ready:
		case <-timer.C:
			return nil, ErrNoUplink
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: %w", ErrNoUplink, ctx.Err())
		}
	}
}

// Offered returns a channel closed at the next uplink offered: a loop
// that backs off after ErrNoUplink wakes at once when the agent dials.
func (s *Slot) Offered() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ready
}

// Transport is an HTTP/2 transport to the agent over s's uplinks: a
// request to an agent without one fails within dialWait (ErrNoUplink).
func Transport(s *Slot) *http.Transport {
	return &http.Transport{
		Protocols:   h2c(),
		DialContext: s.Dial,
		HTTP2: &http.HTTP2Config{
			SendPingTimeout: 15 * time.Second, // an uplink that dies silently is found within 25 s
			PingTimeout:     10 * time.Second,
		},
		DisableCompression: true,
	}
}
