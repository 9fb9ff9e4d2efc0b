package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/edgestock/edgestock/internal/testenv"
)

// post sends body to url and returns the status and the answer.
func post(t *testing.T, url, body string) (int, string) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

func getField(t *testing.T, url string, out any) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, url)
	require.NoError(t, json.NewDecoder(resp.Body).Decode(out))
}

// race runs n requests at once and counts the answers by status.
func race(n int, do func(i int) int) map[int]int {
	var mu sync.Mutex
	out := map[int]int{}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			s := do(i)
			mu.Lock()
			out[s]++
			mu.Unlock()
		})
	}
	close(start)
	wg.Wait()
	return out
}

// The channel guarantee end to end, on real processes (issue #15): 10
// received, safety 1, amazon allotted 5 and ebay 2; the agent is killed
// (-9); 30 buyers per channel race at the hub and exactly 5 + 2 are sold;
// the agent restarts, learns the orders, and of 30 racing local holds
// exactly 2 are granted; everything picked, on_hand ends at 1.
func TestCrash_ChannelsNeverSellTwice(t *testing.T) {
	dir, agentHTTP := t.TempDir(), testenv.FreeAddr(t)
	agentArgs := []string{"agent", "--warehouse", "wh1", "--data-dir", dir, "--http", agentHTTP, "--mqtt-listen", testenv.FreeAddr(t)}
	a := startChild(t, agentArgs...)
	h := startChild(t, "hub", "--data-dir", t.TempDir(), "--http", testenv.FreeAddr(t), "--agent", "wh1="+a.base)

	status, body := post(t, a.base+"/v1/events", `{"id":"r1","type":"receive","sku":"SKU-B","qty":10}`)
	require.Equal(t, http.StatusOK, status, body)
	req, err := http.NewRequest(http.MethodPut, a.base+"/v1/safety/SKU-B", strings.NewReader(`{"qty":1}`))
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	for channel, qty := range map[string]int{"amazon": 5, "ebay": 2} {
		status, body = post(t, a.base+"/v1/allotments", fmt.Sprintf(`{"id":"%s","sku":"SKU-B","channel":"%s","qty":%d}`, channel, channel, qty))
		require.Equal(t, http.StatusCreated, status, body)
		require.Eventually(t, func() bool {
			var ats struct{ ATS int }
			getField(t, h.base+"/v1/ats/SKU-B?channel="+channel, &ats)
			return ats.ATS == qty
		}, 20*time.Second, 50*time.Millisecond, "%s's rights reach the hub", channel)
	}
	a.kill(t)

	sold := map[string][]string{}
	var mu sync.Mutex
	for channel, want := range map[string]int{"amazon": 5, "ebay": 2} {
		got := race(30, func(i int) int {
			id := fmt.Sprintf("%s-%d", channel, i)
			status, body := post(t, h.base+"/v1/orders", fmt.Sprintf(`{"id":"%s","channel":"%s","lines":[{"sku":"SKU-B","qty":1}]}`, id, channel))
			if status == http.StatusCreated {
				mu.Lock()
				sold[channel] = append(sold[channel], id+".1")
				mu.Unlock()
			} else if status != http.StatusConflict {
				t.Errorf("order %s: %d %s", id, status, body)
			}
			return status
		})
		require.Equal(t, map[int]int{http.StatusCreated: want, http.StatusConflict: 30 - want}, got, channel)
	}

	a = startChild(t, agentArgs...)
	require.Eventually(t, func() bool {
		var v struct{ Committed int }
		getField(t, a.base+"/v1/stock/SKU-B", &v)
		return v.Committed == 7
	}, 60*time.Second, 100*time.Millisecond, "the orders reach the restarted agent")
	var holds []string
	got := race(30, func(i int) int {
		id := fmt.Sprint("cart-", i)
		status, _ := post(t, a.base+"/v1/reservations", fmt.Sprintf(`{"id":"%s","sku":"SKU-B","qty":1}`, id))
		if status == http.StatusCreated {
			mu.Lock()
			holds = append(holds, id)
			mu.Unlock()
		}
		return status
	})
	require.Equal(t, map[int]int{http.StatusCreated: 2, http.StatusConflict: 28}, got, "10 − 1 safety − 7 sold: 2 for local carts")

	for _, id := range append(append(sold["amazon"], sold["ebay"]...), holds...) {
		status, body := post(t, a.base+"/v1/reservations/"+id+"/commit", "")
		require.Equal(t, http.StatusOK, status, "%s: %s", id, body)
	}
	var v struct {
		OnHand     int `json:"on_hand"`
		Committed  int `json:"committed"`
		Unallotted int `json:"unallotted"`
	}
	getField(t, a.base+"/v1/stock/SKU-B", &v)
	require.Equal(t, 1, v.OnHand, "everything promised was there: the safety unit is left")
	require.Equal(t, 0, v.Committed)
	require.Equal(t, 1, v.Unallotted)
}
