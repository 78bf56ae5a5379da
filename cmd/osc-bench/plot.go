package main

import (
	"fmt"
	"html"
	"math"
	"os"
	"strings"
	"time"

	"osc/internal/load"
)

// panel is one loaded run in the plot: each write's latency (from its
// scheduled start) against the time it was due, with the run's phases.
type panel struct {
	title    string
	from, to time.Time // the run
	samples  []load.Sample
	phases   []phase
	baseline time.Duration // the writers' p99 without a migration
}

type phase struct {
	label    string
	from, to time.Time
	color    string
}

// Plot geometry, in SVG units.
const (
	plotWidth  = 960
	plotHeight = 240
	plotLeft   = 60
	plotRight  = 20
	plotTop    = 30
	plotBottom = 30
)

// writePlot draws the panels one above the other in an SVG file: latency on
// a log scale from 1 ms, phases shaded, the baseline p99 dashed.
func writePlot(path string, panels []panel) error {
	var b strings.Builder
	total := len(panels) * plotHeight
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="11">`+"\n", plotWidth, total)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", plotWidth, total)
	for i, p := range panels {
		drawPanel(&b, p, float64(i*plotHeight))
	}
	b.WriteString("</svg>\n")
	return os.WriteFile(path, []byte(b.String()), 0o644) //nolint:gosec // G306: a plot for the developer to open
}

func drawPanel(b *strings.Builder, p panel, top float64) {
	w := float64(plotWidth - plotLeft - plotRight)
	h := float64(plotHeight - plotTop - plotBottom)
	y0 := top + plotTop
	span := p.to.Sub(p.from).Seconds()
	if span <= 0 {
		span = 1
	}
	longest := time.Second
	for _, s := range p.samples {
		longest = max(longest, s.Took)
	}
	decades := math.Ceil(math.Log10(float64(longest) / float64(time.Millisecond)))
	x := func(t time.Time) float64 { return plotLeft + w*min(max(t.Sub(p.from).Seconds()/span, 0), 1) }
	y := func(d time.Duration) float64 {
		ms := max(float64(d)/float64(time.Millisecond), 1)
		return y0 + h - h*math.Log10(ms)/decades
	}
	fmt.Fprintf(b, `<text x="%d" y="%.0f" font-size="13" font-weight="bold">%s</text>`+"\n", plotLeft, y0-10, html.EscapeString(p.title))
	for _, ph := range p.phases {
		if ph.from.IsZero() || ph.to.IsZero() {
			continue
		}
		x1, x2 := x(ph.from), x(ph.to)
		fmt.Fprintf(b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s" fill-opacity="0.25"/>`+"\n",
			x1, y0, max(x2-x1, 1), h, ph.color)
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" fill="#333">%s</text>`+"\n", x1+2, y0+12, html.EscapeString(ph.label))
	}
	// Axes and decade lines.
	fmt.Fprintf(b, `<rect x="%d" y="%.1f" width="%.1f" height="%.1f" fill="none" stroke="#888"/>`+"\n", plotLeft, y0, w, h)
	for d := 0.0; d <= decades; d++ {
		lat := time.Duration(math.Pow(10, d)) * time.Millisecond
		yy := y(lat)
		fmt.Fprintf(b, `<line x1="%d" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", plotLeft, plotLeft+w, yy, yy)
		fmt.Fprintf(b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", plotLeft-4, yy+4, lat)
	}
	for s := 0.0; s <= span; s += tickStep(span) {
		xx := plotLeft + w*s/span
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle">%.0fs</text>`+"\n", xx, y0+h+14, s)
	}
	if p.baseline > 0 {
		yy := y(p.baseline)
		fmt.Fprintf(b, `<line x1="%d" x2="%.1f" y1="%.1f" y2="%.1f" stroke="green" stroke-dasharray="4 3"/>`+"\n", plotLeft, plotLeft+w, yy, yy)
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" fill="green" text-anchor="end">baseline p99 %s</text>`+"\n",
			plotLeft+w-2, yy-3, p.baseline.Round(time.Millisecond))
	}
	for _, s := range p.samples {
		if s.Start.Before(p.from) || s.Start.After(p.to) {
			continue
		}
		fmt.Fprintf(b, `<circle cx="%.1f" cy="%.1f" r="1.3" fill="#1f5fbf"/>`+"\n", x(s.Start), y(s.Took))
	}
}

// tickStep is a round number of seconds between time ticks: about ten.
func tickStep(span float64) float64 {
	for _, s := range []float64{1, 2, 5, 10, 15, 30, 60, 120, 300, 600} {
		if span/s <= 12 {
			return s
		}
	}
	return 1200
}

// plotPanels are the plot's panels for one database's loaded runs, with
// osc's phases.
func plotPanels(results []result) []panel {
	var baseline time.Duration
	for _, r := range results {
		if r.tool == "baseline" {
			baseline = r.load.P99
		}
	}
	var ps []panel
	for _, r := range results {
		if r.load == nil || r.tool == "baseline" {
			continue
		}
		p := panel{title: r.db + ": " + r.run, from: r.start.Add(-time.Second), to: r.start.Add(r.wall + time.Second),
			samples: r.load.Samples, baseline: baseline}
		if r.tool == "osc" {
			p.phases = []phase{
				{"copy", r.start, r.copyEnd, "#f2c14e"},
				{"checksum", r.ckFrom, r.ckTo, "#7fb069"},
				{"cut-over", r.cutFrom, r.cutTo, "#d1495b"},
			}
		} else {
			p.phases = []phase{{r.tool, r.start, r.start.Add(r.wall), "#aaaaaa"}}
		}
		ps = append(ps, p)
	}
	return ps
}
