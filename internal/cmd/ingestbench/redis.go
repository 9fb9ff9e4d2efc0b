package main

import (
	"bufio"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/edgestock/edgestock/internal/mosquitto"
)

// What a user would otherwise pick for cart holds: Redis with a Lua
// check-and-decrement, made durable with appendfsync always, behind a
// minimal Go HTTP front, so both sides pay HTTP and JSON (issue #18).

// holdScript takes a hold if the SKU has the quantity: KEYS stock:{sku}
// and hold:{id}, ARGV qty and the TTL in ms. A hold id seen before is
// answered as taken, as the agent answers a retried id.
const holdScript = `
if redis.call('EXISTS', KEYS[2]) == 1 then return 1 end
local avail = tonumber(redis.call('GET', KEYS[1]) or '0')
local qty = tonumber(ARGV[1])
if avail < qty then return 0 end
redis.call('DECRBY', KEYS[1], qty)
redis.call('SET', KEYS[2], qty, 'PX', ARGV[2])
return 1`

// redisFrontEnv, set, makes this program the HTTP front: "listen,redis".
const redisFrontEnv = "INGESTBENCH_REDIS_FRONT"

// redisServer is a redis-server child with an append-only file fsynced on
// every write, in its own directory.
type redisServer struct {
	addr string
	*child
}

// startRedis runs redis-server on a free port with appendfsync always.
func startRedis(dir string) (*redisServer, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("redis-server: %w (apt-get install redis-server)", err)
	}
	addr, err := mosquitto.FreeAddr()
	if err != nil {
		return nil, err
	}
	host, port, _ := net.SplitHostPort(addr)
	runDir := filepath.Join(dir, "redis")
	if err := os.MkdirAll(runDir, 0o755); err != nil {
		return nil, err
	}
	r := &redisServer{addr: addr}
	if r.child, err = startChild(exec.Command(bin, "--bind", host, "--port", port, "--dir", runDir, "--save", "",
		"--appendonly", "yes", "--appendfsync", "always", "--daemonize", "no", "--logfile", filepath.Join(runDir, "redis.log"))); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := dialRedis(addr)
		if err == nil {
			_, err = c.do("PING")
			c.close()
			if err == nil {
				return r, nil
			}
		}
		if time.Now().After(deadline) {
			r.kill()
			return nil, fmt.Errorf("redis-server on %s not up: %w", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stock sets each SKU's available quantity and drops every hold.
func (r *redisServer) stock(skus []string, qty int) error {
	c, err := dialRedis(r.addr)
	if err != nil {
		return err
	}
	defer c.close()
	if _, err := c.do("FLUSHALL"); err != nil {
		return err
	}
	for _, sku := range skus {
		if _, err := c.do("SET", "stock:"+sku, strconv.Itoa(qty)); err != nil {
			return err
		}
	}
	return nil
}

// redisConn is a minimal RESP2 client: enough for PING, SET, EVALSHA.
type redisConn struct {
	c net.Conn
	r *bufio.Reader
	w *bufio.Writer
}

func dialRedis(addr string) (*redisConn, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	return &redisConn{c: c, r: bufio.NewReader(c), w: bufio.NewWriter(c)}, nil
}

func (c *redisConn) close() { _ = c.c.Close() }

// do sends one command and reads its reply: a string or an integer.
func (c *redisConn) do(args ...string) (any, error) {
	fmt.Fprintf(c.w, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(c.w, "$%d\r\n%s\r\n", len(a), a)
	}
	if err := c.w.Flush(); err != nil {
		return nil, err
	}
	line, err := c.r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	line = strings.TrimSuffix(line, "\r\n")
	if line == "" {
		return nil, errors.New("redis: empty reply")
	}
	switch line[0] {
	case '+':
		return line[1:], nil
	case '-':
		return nil, errors.New("redis: " + line[1:])
	case ':':
		return strconv.ParseInt(line[1:], 10, 64)
	case '$':
		n, err := strconv.Atoi(line[1:])
		if err != nil || n < 0 {
			return nil, err
		}
		b := make([]byte, n+2)
		if _, err := io.ReadFull(c.r, b); err != nil {
			return nil, err
		}
		return string(b[:n]), nil
	}
	return nil, fmt.Errorf("redis: unexpected reply %q", line)
}

// runRedisFront serves POST /v1/reservations on listen, each hold one
// EVALSHA of holdScript on redis over a pool of connections; it runs until
// killed.
func runRedisFront(listen, redis string) error {
	sum := sha1.Sum([]byte(holdScript))
	sha := hex.EncodeToString(sum[:])
	// A pool as a client library keeps one: connections reused, more
	// dialled while all are busy.
	pool := make(chan *redisConn, 256)
	get := func() (*redisConn, error) {
		select {
		case c := <-pool:
			return c, nil
		default:
			return dialRedis(redis)
		}
	}
	put := func(c *redisConn) {
		select {
		case pool <- c:
		default:
			c.close()
		}
	}
	c, err := get()
	if err != nil {
		return err
	}
	if _, err := c.do("SCRIPT", "LOAD", holdScript); err != nil {
		return err
	}
	put(c)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/reservations", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			ID  string `json:"id"`
			SKU string `json:"sku"`
			Qty int64  `json:"qty"`
			TTL string `json:"ttl"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.ID == "" || req.SKU == "" || req.Qty <= 0 {
			http.Error(w, `{"error":{"code":"bad_request"}}`, http.StatusBadRequest)
			return
		}
		ttl, err := time.ParseDuration(req.TTL)
		if err != nil || ttl <= 0 {
			http.Error(w, `{"error":{"code":"bad_ttl"}}`, http.StatusBadRequest)
			return
		}
		c, err := get()
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		ok, err := c.do("EVALSHA", sha, "2", "stock:"+req.SKU, "hold:"+req.ID, strconv.FormatInt(req.Qty, 10), strconv.FormatInt(ttl.Milliseconds(), 10))
		if err != nil {
			c.close()
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		put(c)
		w.Header().Set("Content-Type", "application/json")
		if ok != int64(1) {
			w.WriteHeader(http.StatusConflict)
			fmt.Fprintf(w, `{"error":{"code":"insufficient_stock","message":"%s"}}`, req.SKU)
			return
		}
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, `{"id":%q,"sku":%q,"qty":%d}`, req.ID, req.SKU, req.Qty)
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	return http.ListenAndServe(listen, mux)
}

// redisFront is the HTTP front child.
type redisFront struct {
	base string
	*child
}

// startRedisFront runs this program as the HTTP front of redis.
func startRedisFront(ctx context.Context, redis string) (*redisFront, error) {
	addr, err := mosquitto.FreeAddr()
	if err != nil {
		return nil, err
	}
	f := &redisFront{base: "http://" + addr}
	if f.child, err = startSelf(redisFrontEnv + "=" + addr + "," + redis); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		if resp, err := httpClient.Get(f.base + "/readyz"); err == nil {
			resp.Body.Close()
			return f, nil
		}
		select {
		case <-ctx.Done():
			f.kill()
			return nil, errors.New("redis front not up")
		case <-f.exited:
			return nil, errors.New("redis front exited")
		case <-time.After(20 * time.Millisecond):
		}
	}
}
