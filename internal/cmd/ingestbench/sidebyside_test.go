package main

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/edgestock/edgestock/internal/testenv"
)

// The test binary stands in for ingestbench as the children it starts.
func TestMain(m *testing.M) {
	if runChild() {
		return
	}
	os.Exit(m.Run())
}

// The Redis side of the holds comparison does what the agent does for a
// hold: takes it only when the SKU has the quantity, answers a retried id
// as taken without taking twice, and refuses with 409 past the stock; and
// the load runs against it with every answer a 201.
func TestRedisFront_CheckAndDecrement(t *testing.T) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		testenv.Missing(t, "redis-server (apt-get install redis-server)")
	}
	rs, err := startRedis(t.TempDir())
	require.NoError(t, err)
	t.Cleanup(rs.kill)
	require.NoError(t, rs.stock([]string{"S"}, 2))
	front, err := startRedisFront(t.Context(), rs.addr)
	require.NoError(t, err)
	t.Cleanup(front.kill)
	hold := func(body string) int {
		resp, err := http.Post(front.base+"/v1/reservations", "application/json", strings.NewReader(body))
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	require.Equal(t, http.StatusCreated, hold(`{"id":"a","sku":"S","qty":1,"ttl":"1m"}`))
	require.Equal(t, http.StatusCreated, hold(`{"id":"a","sku":"S","qty":1,"ttl":"1m"}`), "a retried id is the same hold")
	require.Equal(t, http.StatusCreated, hold(`{"id":"b","sku":"S","qty":1,"ttl":"1m"}`))
	require.Equal(t, http.StatusConflict, hold(`{"id":"c","sku":"S","qty":1,"ttl":"1m"}`), "the stock is taken")
	require.Equal(t, http.StatusBadRequest, hold(`{"id":"d","sku":"S","qty":1,"ttl":"soon"}`))
	c, err := dialRedis(rs.addr)
	require.NoError(t, err)
	defer c.close()
	left, err := c.do("GET", "stock:S")
	require.NoError(t, err)
	require.Equal(t, "0", left, "two holds took two units, once each")

	require.NoError(t, rs.stock(skuNames(), 1000))
	run, err := holdLoad(t.Context(), front.base, "t", 2, 0, 300*time.Millisecond)
	require.NoError(t, err)
	require.Positive(t, run.n)
	require.Len(t, run.sorted, run.n)
}

// The reference broker acknowledges a QoS 1 publish.
func TestMochiReference_Acks(t *testing.T) {
	m, err := startMochi(t.Context())
	require.NoError(t, err)
	t.Cleanup(m.kill)
	c, err := dial(t.Context(), m.addr, "t", nil)
	require.NoError(t, err)
	defer c.close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	require.NoError(t, c.publish(ctx, eventsTopic("d1"), []byte(`{"id":"1","type":"receive","sku":"S","qty":1}`)))
}
