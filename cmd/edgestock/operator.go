package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/edgestock/edgestock/agent"
	"github.com/edgestock/edgestock/sync"
	"github.com/edgestock/edgestock/sync/hub"
)

// apiClient talks to a running agent's HTTP API for the operator commands.
type apiClient struct {
	base, token string
}

// apiFlags defines --url and --token on fs; the client is ready once fs
// has been parsed.
func apiFlags(fs *flag.FlagSet) func() *apiClient {
	base := fs.String("url", "http://127.0.0.1:7070", "the agent's or the hub's HTTP API")
	// The default stays out of the flag, so -h never prints a secret.
	token := fs.String("token", "", "a bearer token (default $EDGESTOCK_TOKEN)")
	return func() *apiClient {
		if *token == "" {
			*token = os.Getenv("EDGESTOCK_TOKEN")
		}
		return &apiClient{base: strings.TrimRight(*base, "/"), token: *token}
	}
}

func (c *apiClient) get(ctx context.Context, path string, out any) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w (is the agent or hub running at --url?)", c.base, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error struct{ Code, Message string }
		}
		_ = json.Unmarshal(body, &e)
		msg := e.Error.Message
		switch {
		case msg != "":
		case len(bytes.TrimSpace(body)) > 0:
			msg = strings.TrimSpace(string(body[:min(len(body), 200)]))
		case resp.StatusCode == http.StatusNotFound:
			msg = "no such resource here (is --url an edgestock agent or hub?)"
		case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
			msg = "pass a token with --token or $EDGESTOCK_TOKEN"
		default:
			msg = "the server sent no explanation; its log may say more"
		}
		return fmt.Errorf("GET %s%s: %s: %s", c.base, path, resp.Status, msg)
	}
	return json.Unmarshal(body, out)
}

// role asks /healthz which role answers at the URL: "agent" or "hub"
// (agents older than the role field answer without one: "agent").
func (c *apiClient) role(ctx context.Context) (string, error) {
	var h struct{ Role string }
	if err := c.get(ctx, "/healthz", &h); err != nil {
		return "", err
	}
	if h.Role == "" {
		return "agent", nil
	}
	return h.Role, nil
}

// runStatus prints an agent's status, or a hub's warehouses.
func (m *Main) runStatus(ctx context.Context, cmd *command, args []string) error {
	fs := m.flagSet(cmd)
	client := apiFlags(fs)
	if _, err := m.parse(fs, cmd, args); err != nil {
		return err
	}
	c := client()
	role, err := c.role(ctx)
	if err != nil {
		return err
	}
	if role == "hub" {
		return m.hubStatus(ctx, c)
	}
	var st agent.Status
	if err := c.get(ctx, "/v1/status", &st); err != nil {
		return err
	}
	w := tabwriter.NewWriter(m.Stdout, 0, 4, 2, ' ', 0)
	contact := "never"
	if st.LastHubContact != nil {
		contact = fmt.Sprintf("%s (%s ago)", st.LastHubContact.Format(time.RFC3339), time.Since(*st.LastHubContact).Round(time.Second))
	}
	store := "ok"
	if !st.StoreOK {
		store = "FAILING: acknowledgements held"
	}
	for _, row := range [][2]string{
		{"role", "agent"},
		{"version", st.Version},
		{"warehouse", st.Warehouse},
		{"replica", st.Replica},
		{"uptime", (time.Duration(st.UptimeSeconds) * time.Second).String()},
		{"events/s", fmt.Sprintf("%.1f (last minute; %d applied since start)", st.EventsPerSecond, st.EventsApplied)},
		{"store", store},
		{"quarantine", fmt.Sprint(st.Quarantine)},
		{"active holds", fmt.Sprint(st.ActiveHolds)},
		{"pending deltas", fmt.Sprint(st.PendingDeltas)},
		{"last hub contact", contact},
		{"config generation", fmt.Sprint(st.ConfigGeneration)},
	} {
		fmt.Fprintf(w, "%s\t%s\n", row[0], row[1])
	}
	return w.Flush()
}

// hubStatus prints the hub's warehouses: who is online, how far behind.
func (m *Main) hubStatus(ctx context.Context, c *apiClient) error {
	var list struct{ Warehouses []hub.WarehouseStatus }
	if err := c.get(ctx, "/v1/warehouses", &list); err != nil {
		return err
	}
	fmt.Fprintf(m.Stdout, "role: hub (%s)\n", c.base)
	w := tabwriter.NewWriter(m.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "WAREHOUSE\tSTATE\tLAST CONTACT\tLAG\tURL\tLAST ERROR")
	for _, wh := range list.Warehouses {
		state, contact, lag := "offline", "never", "-"
		if wh.Online {
			state = "online"
		}
		if wh.LastContact != nil {
			contact = wh.LastContact.Format(time.RFC3339)
		}
		if wh.LagSeconds != nil {
			lag = (time.Duration(*wh.LagSeconds * float64(time.Second))).Round(time.Second).String()
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", wh.Warehouse, state, contact, lag, wh.URL, wh.LastError)
	}
	return w.Flush()
}

// stockPageSize is how many SKUs one list request asks for (the APIs'
// maximum); stock pages on until the list ends.
const stockPageSize = 1000

// runStock prints one SKU or every SKU as a table: an agent's view
// (this warehouse, its holds, the company total), or a hub's (per
// warehouse).
func (m *Main) runStock(ctx context.Context, cmd *command, args []string) error {
	fs := m.flagSet(cmd)
	client := apiFlags(fs)
	repl := fs.Bool("replenishment", false, "demand, days of cover and what to order per SKU (GET /v1/replenishment)")
	below := fs.Float64("below-days", 0, "with --replenishment: only SKUs whose days of cover are below it")
	skus, err := m.parse(fs, cmd, args)
	if err != nil {
		return err
	}
	c := client()
	if *repl {
		return m.printReplenishment(ctx, c, skus, *below)
	}
	role, err := c.role(ctx)
	if err != nil {
		return err
	}
	if role == "hub" {
		views, err := stockViews[hub.StockView](ctx, c, skus)
		if err != nil {
			return err
		}
		w := tabwriter.NewWriter(m.Stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(w, "SKU\tON HAND\tWAREHOUSES\t")
		for _, v := range views {
			whs := make([]string, 0, len(v.Warehouses))
			for wh, s := range v.Warehouses {
				whs = append(whs, fmt.Sprintf("%s=%d", wh, s.OnHand))
			}
			sort.Strings(whs)
			fmt.Fprintf(w, "%s\t%d\t%s\t\n", v.SKU, v.OnHand, strings.Join(whs, " "))
		}
		return w.Flush()
	}
	views, err := stockViews[agent.StockView](ctx, c, skus)
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(m.Stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "SKU\tON HAND\tRESERVED\tAVAILABLE\tGLOBAL\tLOW\tLOCATIONS\t")
	for _, v := range views {
		locs := make([]string, 0, len(v.Locations))
		for l, n := range v.Locations {
			locs = append(locs, fmt.Sprintf("%s=%d", l, n))
		}
		sort.Strings(locs)
		low := ""
		if v.LowStock {
			low = "LOW"
		}
		fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%d\t%s\t%s\t\n", v.SKU, v.OnHand, v.Reserved, v.Available, v.Global.OnHand, low, strings.Join(locs, " "))
	}
	return w.Flush()
}

// printReplenishment prints GET /v1/replenishment as a table: an agent's
// SKUs, or a hub's per warehouse with their total (*).
func (m *Main) printReplenishment(ctx context.Context, c *apiClient, skus []string, below float64) error {
	q := url.Values{"limit": {strconv.Itoa(stockPageSize)}}
	switch len(skus) {
	case 0:
	case 1:
		q.Set("sku", skus[0])
	default:
		return usageError{errors.New("stock --replenishment: give one SKU, or none for all")}
	}
	warned := map[string]bool{}
	if below > 0 {
		q.Set("below-days", strconv.FormatFloat(below, 'f', -1, 64))
	}
	w := tabwriter.NewWriter(m.Stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "SKU\tWAREHOUSE\tON HAND\tAVAILABLE\tDEMAND/DAY\tCOVER DAYS\tSTOCKOUT\tLEAD DAYS\tREORDER AT\tORDER\tRISK\t")
	for {
		var page struct {
			sync.ReplenishmentPage
			Unavailable []hub.UnavailableWarehouse `json:"unavailable"`
		}
		if err := c.get(ctx, "/v1/replenishment?"+q.Encode(), &page); err != nil {
			return err
		}
		for _, u := range page.Unavailable {
			if warned[u.Warehouse] {
				continue
			}
			warned[u.Warehouse] = true
			fmt.Fprintf(m.Stderr, "warning: warehouse %s could not be asked (left out of the totals): %s\n", u.Warehouse, u.Error)
		}
		for _, it := range page.Items {
			cover, out := "-", "-" // no demand expected
			if it.DaysOfCover != nil {
				cover = strconv.FormatFloat(*it.DaysOfCover, 'f', 1, 64)
			}
			if it.StockoutAt != nil {
				out = it.StockoutAt.Local().Format("2006-01-02 15:04")
			}
			risk := ""
			if it.AtRisk {
				risk = "RISK"
			}
			fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%.2f\t%s\t%s\t%g\t%.1f\t%d\t%s\t\n", it.SKU, it.Warehouse, it.OnHand, it.Available,
				it.DailyDemand, cover, out, it.LeadTimeDays, it.ReorderPoint, it.SuggestedQty, risk)
		}
		if page.Next == "" || page.Next == q.Get("after") {
			return w.Flush()
		}
		q.Set("after", page.Next)
	}
}

// stockViews reads one SKU's view, or every page of the list, decoded as
// the role at c answers them.
func stockViews[V any](ctx context.Context, c *apiClient, skus []string) ([]V, error) {
	if len(skus) == 1 {
		var v V
		if err := c.get(ctx, "/v1/stock/"+url.PathEscape(skus[0]), &v); err != nil {
			return nil, err
		}
		return []V{v}, nil
	}
	var all []V
	after := ""
	for {
		var page struct {
			Items []V
			Next  string
		}
		if err := c.get(ctx, fmt.Sprintf("/v1/stock?limit=%d&after=%s", stockPageSize, url.QueryEscape(after)), &page); err != nil {
			return nil, err
		}
		all = append(all, page.Items...)
		if page.Next == "" || page.Next == after {
			return all, nil
		}
		after = page.Next
	}
}
