package agent_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/edgestock/edgestock/agent"
	"github.com/edgestock/edgestock/agent/agenttest"
	"github.com/edgestock/edgestock/internal/replenish"
)

type replenishmentPage struct {
	Items []agent.ReplenishmentItem `json:"items"`
	Next  string                    `json:"next"`
}

func (a *testAgent) replenishment(t *testing.T, query string) replenishmentPage {
	t.Helper()
	var p replenishmentPage
	require.Equal(t, http.StatusOK, a.Get(t, "/v1/replenishment?"+query, &p))
	return p
}

// alertsOf lists the alerts of kind for sku in the outbox.
func (a *testAgent) alertsOf(t *testing.T, kind, sku string) []agent.AlertView {
	t.Helper()
	var page struct{ Alerts []agent.AlertView }
	require.Equal(t, http.StatusOK, a.Get(t, "/v1/alerts?limit=1000", &page))
	var out []agent.AlertView
	for _, al := range page.Alerts {
		if al.Kind == kind && al.SKU == sku {
			out = append(out, al)
		}
	}
	return out
}

// Demand is learned from sales by their ts, backfilled or live; the
// figures follow replenishment.csv (reloaded), stockout_risk is raised
// once per crossing and cleared by a receive, and a restart neither
// forgets nor counts a sale twice.
func TestReplenishment_Agent(t *testing.T) {
	dir := t.TempDir()
	policies := filepath.Join(dir, "replenishment.csv")
	require.NoError(t, os.WriteFile(policies, []byte("sku,lead_time_days,target_days\nR-1,3,10\n"), 0o644))
	a := startAgent(t, dir, func(c *agent.Config) { c.Replenishment.TimeZone = "UTC" })
	post := func(body string) {
		t.Helper()
		status, _ := a.Post(t, "/v1/events", body)
		require.Equal(t, http.StatusOK, status)
	}
	post(`[{"id":"r1","type":"receive","sku":"R-1","qty":200},{"id":"r2","type":"receive","sku":"R-2","qty":100}]`)
	// 28 days of history, sent late: 5 a day of R-1, 1 a day of R-2. The
	// estimator itself is tested in internal/replenish: here its figures
	// must be those it gives for the same sales.
	var sales []string
	var want1, want2 replenish.Demand
	fc := replenish.Forecaster{Location: time.UTC}
	sent := time.Now()
	for d := 27; d >= 0; d-- {
		at := sent.Add(-time.Duration(d) * 24 * time.Hour).Truncate(time.Second)
		ts := at.UTC().Format(time.RFC3339)
		sales = append(sales, fmt.Sprintf(`{"id":"s1-%d","type":"sale","sku":"R-1","qty":5,"ts":%q}`, d, ts),
			fmt.Sprintf(`{"id":"s2-%d","type":"sale","sku":"R-2","qty":1,"ts":%q}`, d, ts))
		fc.Observe(&want1, at, sent, 5)
		fc.Observe(&want2, at, sent, 1)
	}
	post("[" + strings.Join(sales, ",") + "]")

	var r1 agent.ReplenishmentItem
	require.Eventually(t, func() bool {
		p := a.replenishment(t, "")
		if len(p.Items) != 2 {
			return false
		}
		r1 = p.Items[0]
		return r1.OnHand == 60 && p.Items[1].OnHand == 72
	}, 15*time.Second, 20*time.Millisecond)
	require.Equal(t, "R-1", r1.SKU)
	fig1, err := fc.Figures(want1, time.Now(), replenish.Stock{OnHand: 60, Available: 60}, replenish.Policy{LeadTimeDays: 3, TargetDays: 10, ServiceLevel: 0.95})
	require.NoError(t, err)
	require.InDelta(t, fig1.DailyDemand, r1.DailyDemand, 0.01)
	require.InDelta(t, 5, r1.DailyDemand, 2, "about 5 a day")
	require.Equal(t, 3.0, r1.LeadTimeDays, "from replenishment.csv")
	require.Equal(t, 10.0, r1.TargetDays)
	require.NotNil(t, r1.DaysOfCover)
	require.InDelta(t, fig1.DaysOfCover, *r1.DaysOfCover, 0.05, "60 units at about 5 a day")
	require.InDelta(t, fig1.ReorderPoint, r1.ReorderPoint, 0.05)
	require.Equal(t, int64(0), r1.SuggestedQty, "above the reorder point")
	require.False(t, r1.AtRisk)
	r2 := a.replenishment(t, "sku=R-2").Items[0]
	fig2, err := fc.Figures(want2, time.Now(), replenish.Stock{OnHand: 72, Available: 72}, replenish.Policy{LeadTimeDays: 7, TargetDays: 14, ServiceLevel: 0.95})
	require.NoError(t, err)
	require.InDelta(t, fig2.DailyDemand, r2.DailyDemand, 0.01)
	require.Equal(t, 7.0, r2.LeadTimeDays, "the configured default")
	require.Greater(t, *r2.DaysOfCover, 30.0, "72 units at about 1 a day")
	require.Equal(t, []agent.ReplenishmentItem{r1}, a.replenishment(t, "below-days=30").Items, "R-2 has more")
	first := a.replenishment(t, "limit=1")
	require.Equal(t, "R-1", first.Next)
	require.Equal(t, "R-2", a.replenishment(t, "limit=1&after=R-1").Items[0].SKU)

	// A live sale takes R-1 below its lead time: raised once.
	post(`{"id":"s-big","type":"sale","sku":"R-1","qty":55}`)
	require.Eventually(t, func() bool { return len(a.alertsOf(t, "stockout_risk", "R-1")) == 1 }, 15*time.Second, 20*time.Millisecond)
	raised := a.alertsOf(t, "stockout_risk", "R-1")[0]
	require.Equal(t, int64(5), *raised.Available)
	require.Equal(t, 3.0, *raised.LeadTimeDays)
	require.Less(t, *raised.DaysOfCover, 3.0)
	r1 = a.replenishment(t, "sku=R-1").Items[0]
	require.True(t, r1.AtRisk)
	require.Positive(t, r1.SuggestedQty, "below the reorder point")
	post(`{"id":"s-one","type":"sale","sku":"R-1","qty":1}`)
	require.Eventually(t, func() bool { return a.replenishment(t, "sku=R-1").Items[0].OnHand == 4 }, 15*time.Second, 20*time.Millisecond)
	// A receive that lifts cover above the lead time clears it.
	post(`{"id":"r3","type":"receive","sku":"R-1","qty":100}`)
	require.Eventually(t, func() bool { return len(a.alertsOf(t, "stockout_risk_cleared", "R-1")) == 1 }, 15*time.Second, 20*time.Millisecond)
	require.Len(t, a.alertsOf(t, "stockout_risk", "R-1"), 1, "raised once per crossing")
	require.False(t, a.replenishment(t, "sku=R-1").Items[0].AtRisk)

	// The file is watched: a new lead time applies within seconds.
	require.NoError(t, os.WriteFile(policies, []byte("sku,lead_time_days\nR-1,30\n"), 0o644))
	require.Eventually(t, func() bool { return a.replenishment(t, "sku=R-1").Items[0].LeadTimeDays == 30 }, 15*time.Second, 50*time.Millisecond)

	// A restart learns nothing twice.
	before := a.replenishment(t, "")
	require.NoError(t, a.Close(context.Background()))
	a = startAgent(t, dir, func(c *agent.Config) { c.Replenishment.TimeZone = "UTC" })
	time.Sleep(600 * time.Millisecond) // two passes of the follower: it must not need them, but it gets them
	after := a.replenishment(t, "")
	require.Len(t, after.Items, 2)
	for i := range after.Items {
		require.InDelta(t, before.Items[i].DailyDemand, after.Items[i].DailyDemand, 0.01, after.Items[i].SKU)
	}

	for _, q := range []string{"below-days=x", "below-days=-1", "sku=a%20b", "limit=0"} {
		require.Equal(t, http.StatusBadRequest, a.Get(t, "/v1/replenishment?"+q, nil), q)
	}
	var off struct{ Error struct{ Code string } }
	b := startAgent(t, t.TempDir(), func(c *agent.Config) { c.Replenishment.Enabled = false })
	require.Equal(t, http.StatusNotFound, b.Get(t, "/v1/replenishment", &off))
	require.Equal(t, "not_enabled", off.Error.Code)
}

// replenishment.csv names its columns, and every error names its line.
func TestReplenishment_File(t *testing.T) {
	for _, tc := range []struct{ csv, err string }{
		{"sku,lead_time_days\nA,2\n", ""},
		{"sku,lead_time_days,target_days\nA,2,\nB,1.5,20\n", ""},
		{"sku,lead\nA,2\n", "line 1: header must name"},
		{"sku,lead_time_days\nA,-1\n", "line 2: lead_time_days"},
		{"sku,lead_time_days,target_days\nA,1,x\n", "line 2: target_days"},
		{"sku,lead_time_days\nA,1\nb c,2\n", "line 3: sku"},
	} {
		dir := t.TempDir()
		require.NoError(t, os.WriteFile(filepath.Join(dir, "replenishment.csv"), []byte(tc.csv), 0o644))
		cfg := agent.DefaultConfig()
		cfg.Warehouse, cfg.DataDir = "wh1", dir
		cfg.HTTP.Listen, cfg.MQTT.Listen = "127.0.0.1:0", "127.0.0.1:0"
		cfg.Normalize()
		a := agent.New(cfg, agenttest.Logger())
		err := a.Open(t.Context())
		if tc.err == "" {
			require.NoError(t, err, tc.csv)
		} else {
			require.ErrorContains(t, err, tc.err, tc.csv)
		}
		_ = a.Close(context.Background())
	}
}

// Picks are demand as sales are (SPEC §12), and an event with no device
// time counts at its receive time; receives and adjustments are not
// demand.
func TestReplenishment_PicksAndNoTimestamp(t *testing.T) {
	a := startAgent(t, t.TempDir(), func(c *agent.Config) { c.Replenishment.TimeZone = "UTC" })
	status, _ := a.Post(t, "/v1/events", `[{"id":"r1","type":"receive","sku":"P-1","qty":100},{"id":"r2","type":"receive","sku":"P-2","qty":100},
		{"id":"r3","type":"receive","sku":"P-3","qty":100},{"id":"a3","type":"adjust","sku":"P-3","qty":-10}]`)
	require.Equal(t, http.StatusOK, status)
	status, _ = a.Post(t, "/v1/events", `[{"id":"p1","type":"pick","sku":"P-1","qty":4},{"id":"s2","type":"sale","sku":"P-2","qty":4}]`)
	require.Equal(t, http.StatusOK, status)
	demand := map[string]float64{}
	require.Eventually(t, func() bool {
		for _, it := range a.replenishment(t, "").Items {
			demand[it.SKU] = it.DailyDemand
		}
		return demand["P-1"] > 0 && demand["P-2"] > 0
	}, 15*time.Second, 20*time.Millisecond, "a pick and a sale with no ts both learned")
	require.InDelta(t, demand["P-2"], demand["P-1"], 1e-9, "a pick weighs as a sale of the same quantity at the same time")
	require.Zero(t, demand["P-3"], "receives and adjustments are not demand")
}
