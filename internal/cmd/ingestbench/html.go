package main

import (
	"fmt"
	"html/template"
	"io"
	"math"
	"strings"
)

// The report as a page of its own: the summary table, then each latency
// distribution as CDF curves (one per run) and each ratio run by run, as
// inline SVG (no script, no CDN).

var page = template.Must(template.New("report").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>edgestock benchmark {{.Date}}</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:2em;max-width:70em;color:#222}
table{border-collapse:collapse}td,th{border-bottom:1px solid #ddd;padding:.3em .6em;text-align:left;vertical-align:top}
.no{color:#b00}.yes{color:#070}svg{background:#fafafa;border:1px solid #ddd;margin:.5em 0}
code{font-size:12px}
</style></head><body>
<h1>edgestock benchmark</h1>
<p>{{.Date}} · {{range $k, $v := .Machine}}{{$k}}: <code>{{$v}}</code> · {{end}}</p>
<h2>Summary</h2>
<table><tr><th>figure</th><th>value</th><th>goal</th><th>met</th><th>runs</th></tr>
{{range .Figures}}<tr><td>{{.Name}}</td><td>{{.Value}} {{.Unit}}</td><td>{{.Goal}}</td>
<td class="{{if .Met}}yes{{else}}no{{end}}">{{if .Met}}yes{{else}}no{{end}}</td><td>{{.Runs}}</td></tr>
{{end}}</table>
{{range .Charts}}<h2>{{.Title}}</h2>{{.SVG}}{{end}}
<p>Figures, their goals and how to reproduce them: docs/BENCHMARKS.md. Raw data: bench.json.</p>
</body></html>
`))

type chart struct {
	Title string
	SVG   template.HTML
}

// writeHTML renders the page for j.
func writeHTML(w io.Writer, j benchJSON) error {
	type fig struct {
		Name, Unit, Goal, Value, Runs string
		Met                           bool
	}
	data := struct {
		Date    string
		Machine map[string]string
		Figures []fig
		Charts  []chart
	}{Date: j.Date.Format("2006-01-02 15:04 MST"), Machine: j.Machine}
	for _, f := range j.Figures {
		var runs []string
		for _, x := range f.Runs {
			runs = append(runs, fmtValue(x, f.Unit))
		}
		data.Figures = append(data.Figures, fig{Name: f.Name, Unit: f.Unit, Goal: f.Goal, Value: fmtValue(f.Value, f.Unit),
			Runs: strings.Join(runs, " "), Met: f.Met})
		if len(f.Runs) > 1 {
			data.Charts = append(data.Charts, chart{Title: f.Name + " (" + f.Unit + "), run by run", SVG: bars(f.Runs, f.Unit)})
		}
	}
	for _, name := range []string{"commit latency (ms)", "paced holds (ms)", "holds: agent vs Redis (ms)"} {
		if s := j.Latencies[name]; len(s) > 0 {
			data.Charts = append(data.Charts, chart{Title: "CDF: " + name, SVG: cdfSVG(s)})
		}
	}
	return page.Execute(w, data)
}

const chartW, chartH, pad = 640, 240, 40

var palette = []string{"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"}

// cdfSVG draws each series' quantiles: x latency (ms, up to the largest
// p99.9-ish point), y the share of requests at or below it.
func cdfSVG(ss []series) template.HTML {
	xmax := 0.0
	for _, s := range ss {
		if n := len(s.Quantiles); n > 1 {
			xmax = math.Max(xmax, s.Quantiles[n-2]) // p99: the max would flatten the rest
		}
	}
	if xmax <= 0 {
		xmax = 1
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg width="%d" height="%d" viewBox="0 0 %d %d" xmlns="http://www.w3.org/2000/svg" font-size="11">`, chartW, chartH+30, chartW, chartH+30)
	axes(&b, fmt.Sprintf("%.1f ms (the slowest run's p99)", xmax), "100 %")
	for i, s := range ss {
		var pts []string
		for q, x := range s.Quantiles {
			px := pad + math.Min(x/xmax, 1)*(chartW-2*pad)
			py := chartH - float64(q)/100*(chartH-pad)
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", px, py))
		}
		color := palette[i%len(palette)]
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.5" points="%s"/>`, color, strings.Join(pts, " "))
		fmt.Fprintf(&b, `<text x="%d" y="%d" fill="%s">%s</text>`, chartW-pad-90, pad+12*i, color, template.HTMLEscapeString(s.Run))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// bars draws one bar per run.
func bars(runs []float64, unit string) template.HTML {
	ymax := 0.0
	for _, x := range runs {
		ymax = math.Max(ymax, math.Abs(x))
	}
	if ymax == 0 {
		ymax = 1
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg width="%d" height="%d" viewBox="0 0 %d %d" xmlns="http://www.w3.org/2000/svg" font-size="11">`, chartW, chartH+30, chartW, chartH+30)
	axes(&b, "runs", fmtValue(ymax, unit))
	w := float64(chartW-2*pad) / float64(len(runs))
	for i, x := range runs {
		h := math.Abs(x) / ymax * (chartH - pad)
		color := palette[0]
		if x < 0 { // drawn up like the rest, in grey
			color = "#999"
		}
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"/>`, pad+float64(i)*w+2, chartH-h, w-4, h, color)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f">%s</text>`, pad+float64(i)*w+4, chartH-h-3, fmtValue(x, unit))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

func axes(b *strings.Builder, xlabel, ylabel string) {
	fmt.Fprintf(b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#888"/>`, pad, chartH, chartW-pad, chartH)
	fmt.Fprintf(b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#888"/>`, pad, pad, pad, chartH)
	fmt.Fprintf(b, `<text x="%d" y="%d">0</text><text x="%d" y="%d" text-anchor="end">%s</text>`, pad, chartH+15, chartW-pad, chartH+15, template.HTMLEscapeString(xlabel))
	fmt.Fprintf(b, `<text x="4" y="%d">%s</text>`, pad, template.HTMLEscapeString(ylabel))
}
