package dashboard_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/edgestock/edgestock/agent/agenttest"
	"github.com/edgestock/edgestock/internal/auth"
	"github.com/edgestock/edgestock/internal/testenv"
	"github.com/edgestock/edgestock/sync/hub"
)

// browser starts a headless Chromium for the test (Debian's chromium,
// installed by .ci/run) and returns its context.
func browser(t *testing.T) context.Context {
	t.Helper()
	var path string
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		testenv.Missing(t, "chromium (apt-get install chromium)")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox,
		chromedp.Flag("disable-dev-shm-usage", true))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	// An uncaught exception or a console error (a refused script, a
	// failed request) fails the test.
	var mu sync.Mutex
	var errs []string
	require.NoError(t, chromedp.Listen(ctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch e := ev.(type) {
		case *runtime.EventExceptionThrown:
			errs = append(errs, fmt.Sprintf("exception: %s (line %d)", e.ExceptionDetails.Text, e.ExceptionDetails.LineNumber))
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.ConsoleAPICalledTypeError {
				errs = append(errs, fmt.Sprint("console.error: ", e.Args))
			}
		}
	}))
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		require.Empty(t, errs, "the page logged errors")
	})
	return ctx
}

// run runs steps within a minute.
func run(t *testing.T, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	err := chromedp.Do(ctx, steps...)
	if err != nil {
		page, _ := chromedp.Run(context.WithoutCancel(ctx), chromedp.Evaluate[string](`document.querySelector("main").innerText`))
		t.Fatalf("%v; the page shows:\n%s", err, page)
	}
}

// eval reads a JavaScript expression's value.
func eval(t *testing.T, ctx context.Context, js string) string {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[string](js))
	require.NoError(t, err)
	return v
}

// until waits until the JavaScript expression js is true.
func until(js string) chromedp.Action[chromedp.Void] {
	return chromedp.Poll[chromedp.Void](js, chromedp.WithPollingTimeout(20*time.Second), chromedp.WithPollingInterval(50*time.Millisecond))
}

// textIs waits until the element sel's text is want.
func textIs(sel, want string) chromedp.Action[chromedp.Void] {
	return until(fmt.Sprintf(`(() => { const e = document.querySelector(%q); return !!e && e.textContent.trim() === %q; })()`, sel, want))
}

// present waits until sel matches an element.
func present(sel string) chromedp.Action[chromedp.Void] {
	return until(fmt.Sprintf(`!!document.querySelector(%q)`, sel))
}

func post(t *testing.T, url, token, body string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Less(t, resp.StatusCode, 300, "%s: %s", url, b)
}

// The agent's dashboard shows levels, devices and alerts, and follows a
// change made through the API without a reload.
func TestBrowser_AgentDashboard(t *testing.T) {
	ctx := browser(t)
	a := agenttest.Start(t, "wh1", t.TempDir(), nil)
	post(t, a.Base+"/v1/events?device=till-1", "", `[{"id":"r1","type":"receive","sku":"B-1","qty":5},{"id":"r2","type":"receive","sku":"C-1","qty":1}]`)

	run(t, ctx,
		chromedp.Navigate(a.Base+"/"),
		textIs(`#levels tr[data-sku="B-1"] td.onhand`, "5"),
		present(`#devices tr[data-device="till-1"]`),
		textIs(`#warehouse`, "wh1"),
	)
	loaded := eval(t, ctx, `document.body.dataset.loaded`)
	require.NotEmpty(t, loaded)

	post(t, a.Base+"/v1/events?device=till-1", "", `{"id":"s1","type":"sale","sku":"B-1","qty":7}`)
	run(t, ctx,
		textIs(`#levels tr[data-sku="B-1"] td.onhand`, "-2"),
		present(`#alerts li[data-kind="negative_stock"]`),
		present(`#levels tr[data-sku="B-1"] svg.spark polyline`), // 5, then -2
		// The search keeps B-… and hides C-1.
		chromedp.SendKeys(`#search`, "B", chromedp.NodeVisible),
		present(`#levels tr[data-sku="B-1"]`),
		until(`!document.querySelector('#levels tr[data-sku="C-1"]')`),
	)
	require.Equal(t, loaded, eval(t, ctx, `document.body.dataset.loaded`), "updated in place, not reloaded")
}

// The hub's dashboard asks for a token when the API needs one, then
// shows warehouses, stock, a channel's ATS, orders and alerts as they
// happen.
func TestBrowser_HubDashboard(t *testing.T) {
	ctx := browser(t)
	a := agenttest.Start(t, "wh1", t.TempDir(), nil)
	h := hub.NewServer(hub.Config{DataDir: t.TempDir(), HTTP: "127.0.0.1:0", Auth: "required",
		Agents: []hub.Agent{{Warehouse: "wh1", URL: a.Base}}, Timing: hub.Timing{PollWait: time.Second, RetryMax: time.Second}},
		agenttest.Logger())
	require.NoError(t, h.Open(t.Context()))
	t.Cleanup(func() { _ = h.Close(context.Background()) })
	base := "http://" + h.HTTPAddr()
	view, _, err := h.IssueToken(t.Context(), "dashboard", []string{auth.ScopeStockRead}, time.Hour)
	require.NoError(t, err)
	ops, _, err := h.IssueToken(t.Context(), "ops", []string{auth.ScopeAdmin}, time.Hour)
	require.NoError(t, err)
	post(t, a.Base+"/v1/events", "", `{"id":"r1","type":"receive","sku":"H-1","qty":4}`)

	run(t, ctx,
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(`#token-form`),
		chromedp.SendKeys(`#token-input`, view, chromedp.NodeVisible),
		chromedp.Click(`#token-form button`, chromedp.NodeVisible),
		present(`#warehouses tr[data-warehouse="wh1"][data-online="true"]`),
		textIs(`#stock tr[data-sku="H-1"] td.total`, "4"),
	)
	loaded := eval(t, ctx, `document.body.dataset.loaded`)

	post(t, a.Base+"/v1/allotments", "", `{"sku":"H-1","channel":"web","qty":2}`)
	run(t, ctx,
		chromedp.SetValue(`#channels`, "web"),
		until(`document.querySelector("#channels").dispatchEvent(new Event("change"))`),
		textIs(`#stock tr[data-sku="H-1"] td.ats[data-channel="web"]`, "2"),
	)
	post(t, base+"/v1/orders", ops, `{"id":"o1","channel":"web","lines":[{"sku":"H-1","qty":1}]}`)
	post(t, a.Base+"/v1/events", "", `{"id":"r2","type":"receive","sku":"H-1","qty":6}`)
	run(t, ctx,
		present(`#orders tr[data-line="o1.1"]`),
		textIs(`#stock tr[data-sku="H-1"] td.ats[data-channel="web"]`, "1"),
		textIs(`#stock tr[data-sku="H-1"] td.total`, "10"),
	)
	// The warehouse goes down: its row says so, and the hub's alert shows.
	require.NoError(t, a.Close(context.Background()))
	run(t, ctx,
		present(`#warehouses tr[data-warehouse="wh1"][data-online="false"]`),
		present(`#alerts li[data-kind="warehouse_offline"]`),
	)
	require.Equal(t, loaded, eval(t, ctx, `document.body.dataset.loaded`), "updated in place, not reloaded")
}
