package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/edgestock/edgestock/agent"
)

// apiClient talks to a running agent's HTTP API for the operator commands.
type apiClient struct {
	base, token string
}

func (m *Main) apiFlags(name string, args []string) (*apiClient, *flag.FlagSet, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(m.Stderr)
	url := fs.String("url", "http://127.0.0.1:7070", "the agent's HTTP API")
	token := fs.String("token", os.Getenv("EDGESTOCK_TOKEN"), "a bearer token (default $EDGESTOCK_TOKEN)")
	if err := parseFlags(fs, args); err != nil {
		return nil, nil, err
	}
	return &apiClient{base: strings.TrimRight(*url, "/"), token: *token}, fs, nil
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
		return fmt.Errorf("%s: %w (is the agent running?)", c.base, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error struct{ Code, Message string }
		}
		_ = json.Unmarshal(body, &e)
		return fmt.Errorf("%s%s: %s: %s", c.base, path, resp.Status, e.Error.Message)
	}
	return json.Unmarshal(body, out)
}

// runStatus prints the agent's status.
func (m *Main) runStatus(ctx context.Context, args []string) error {
	c, _, err := m.apiFlags("status", args)
	if err != nil {
		return err
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

// runStock prints one SKU or a page of SKUs as a table.
func (m *Main) runStock(ctx context.Context, args []string) error {
	c, fs, err := m.apiFlags("stock", args)
	if err != nil {
		return err
	}
	var views []agent.StockView
	switch fs.NArg() {
	case 0:
		var page struct{ Items []agent.StockView }
		if err := c.get(ctx, "/v1/stock?limit=1000", &page); err != nil {
			return err
		}
		views = page.Items
	case 1:
		var v agent.StockView
		if err := c.get(ctx, "/v1/stock/"+fs.Arg(0), &v); err != nil {
			return err
		}
		views = []agent.StockView{v}
	default:
		return usageError{errors.New("stock: at most one SKU")}
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
