package main

import (
	"bytes"
	"fmt"
	"html"
	"math"
	"strconv"
)

// Series is one line of a plot.
type Series struct {
	Name string
	X, Y []float64
	Dash bool // drawn dashed (references such as the offered load or the floor)
}

// Plot is a line chart rendered as a standalone SVG file: axes with ticks
// and units, a title and a legend.
type Plot struct {
	Title, XLabel, YLabel string
	LogX, LogY            bool
	Series                []Series
}

var palette = []string{"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#7f7f7f"}

const (
	plotW, plotH                     = 760, 440
	marginL, marginR, marginT, marge = 80, 24, 44, 56
)

// SVG renders the plot. Series with no finite points are left out; a plot
// with nothing to draw still renders its frame and says so.
func (p *Plot) SVG() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", plotW, plotH, plotW, plotH)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", plotW, plotH)
	fmt.Fprintf(&b, `<text x="%d" y="24" text-anchor="middle" font-size="15" font-weight="bold">%s</text>`+"\n", plotW/2, esc(p.Title))

	x0, x1, y0, y1, ok := p.bounds()
	left, right, top, bottom := float64(marginL), float64(plotW-marginR), float64(marginT), float64(plotH-marge)
	fmt.Fprintf(&b, `<rect x="%g" y="%g" width="%g" height="%g" fill="none" stroke="#333"/>`+"\n", left, top, right-left, bottom-top)
	fmt.Fprintf(&b, `<text x="%g" y="%d" text-anchor="middle">%s</text>`+"\n", (left+right)/2, plotH-14, esc(p.XLabel))
	fmt.Fprintf(&b, `<text transform="translate(18 %g) rotate(-90)" text-anchor="middle">%s</text>`+"\n", (top+bottom)/2, esc(p.YLabel))
	if !ok {
		fmt.Fprintf(&b, `<text x="%g" y="%g" text-anchor="middle" fill="#888">no data</text>`+"\n</svg>\n", (left+right)/2, (top+bottom)/2)
		return b.Bytes()
	}
	sx := scaler(x0, x1, left, right, p.LogX)
	sy := scaler(y0, y1, bottom, top, p.LogY)
	for _, t := range ticks(x0, x1, p.LogX) {
		x := sx(t)
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%g" x2="%.1f" y2="%g" stroke="#ddd"/>`+"\n", x, top, x, bottom)
		fmt.Fprintf(&b, `<text x="%.1f" y="%g" text-anchor="middle">%s</text>`+"\n", x, bottom+16, fmtTick(t))
	}
	for _, t := range ticks(y0, y1, p.LogY) {
		y := sy(t)
		fmt.Fprintf(&b, `<line x1="%g" y1="%.1f" x2="%g" y2="%.1f" stroke="#ddd"/>`+"\n", left, y, right, y)
		fmt.Fprintf(&b, `<text x="%g" y="%.1f" text-anchor="end">%s</text>`+"\n", left-6, y+4, fmtTick(t))
	}
	type entry struct {
		name, color, dash string
	}
	var legend []entry
	for i, s := range p.Series {
		color := palette[i%len(palette)]
		var pts bytes.Buffer
		n := 0
		for j := range s.X {
			if !p.usable(s.X[j], s.Y[j]) {
				continue
			}
			fmt.Fprintf(&pts, "%.1f,%.1f ", sx(s.X[j]), sy(s.Y[j]))
			n++
		}
		if n == 0 {
			continue
		}
		dash := ""
		if s.Dash {
			dash = ` stroke-dasharray="6 4"`
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2"%s points="%s"/>`+"\n", color, dash, bytes.TrimSpace(pts.Bytes()))
		if n <= 12 { // mark the measured points of sparse series
			for j := range s.X {
				if p.usable(s.X[j], s.Y[j]) {
					fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>`+"\n", sx(s.X[j]), sy(s.Y[j]), color)
				}
			}
		}
		legend = append(legend, entry{s.Name, color, dash})
	}
	// The legend goes over the lines on a translucent white box, so that
	// curves under it (e.g. near the left edge) stay visible but do not
	// garble the names.
	if len(legend) > 0 {
		wide := 0
		for _, e := range legend {
			wide = max(wide, len([]rune(e.name)))
		}
		fmt.Fprintf(&b, `<rect x="%g" y="%g" width="%g" height="%d" fill="white" fill-opacity="0.85" stroke="#ccc"/>`+"\n",
			left+6, top+4, 46+7*float64(wide), 16*len(legend)+4)
	}
	legendY := top + 16
	for _, e := range legend {
		fmt.Fprintf(&b, `<line x1="%g" y1="%g" x2="%g" y2="%g" stroke="%s" stroke-width="2"%s/>`, left+12, legendY-4, left+40, legendY-4, e.color, e.dash)
		fmt.Fprintf(&b, `<text x="%g" y="%g">%s</text>`+"\n", left+46, legendY, esc(e.name))
		legendY += 16
	}
	b.WriteString("</svg>\n")
	return b.Bytes()
}

func esc(s string) string { return html.EscapeString(s) }

func (p *Plot) usable(x, y float64) bool {
	if math.IsNaN(x) || math.IsNaN(y) || math.IsInf(x, 0) || math.IsInf(y, 0) {
		return false
	}
	return (!p.LogX || x > 0) && (!p.LogY || y > 0)
}

// bounds returns the data range, padded to round values; ok is false when
// there is no usable point.
func (p *Plot) bounds() (x0, x1, y0, y1 float64, ok bool) {
	x0, y0 = math.Inf(1), math.Inf(1)
	x1, y1 = math.Inf(-1), math.Inf(-1)
	for _, s := range p.Series {
		for j := range s.X {
			if j >= len(s.Y) || !p.usable(s.X[j], s.Y[j]) {
				continue
			}
			x0, x1 = math.Min(x0, s.X[j]), math.Max(x1, s.X[j])
			y0, y1 = math.Min(y0, s.Y[j]), math.Max(y1, s.Y[j])
			ok = true
		}
	}
	if !ok {
		return 0, 1, 0, 1, false
	}
	x0, x1 = padRange(x0, x1, p.LogX, false)
	y0, y1 = padRange(y0, y1, p.LogY, true)
	return x0, x1, y0, y1, true
}

// padRange widens [lo, hi] to round limits: decades on a log axis; on a
// linear one, from 0 (when fromZero and the data is positive) to a nice
// step above hi.
func padRange(lo, hi float64, log, fromZero bool) (float64, float64) {
	if log {
		return math.Pow(10, math.Floor(math.Log10(lo))), math.Pow(10, math.Ceil(math.Log10(hi)+1e-9))
	}
	if fromZero && lo >= 0 {
		lo = 0
	}
	if hi <= lo {
		hi = lo + 1
	}
	step := niceStep((hi - lo) / 5)
	return math.Floor(lo/step) * step, math.Ceil(hi/step) * step
}

func niceStep(raw float64) float64 {
	if raw <= 0 {
		return 1
	}
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if raw <= m*mag {
			return m * mag
		}
	}
	return 10 * mag
}

// ticks returns tick values: every decade (and 2, 5 within it when the
// range is at most two decades) on a log axis, nice steps on a linear one.
func ticks(lo, hi float64, log bool) []float64 {
	var out []float64
	if log {
		few := math.Log10(hi/lo) <= 2.01
		for d := lo; d <= hi*1.0001 && len(out) < 64; d *= 10 {
			out = append(out, d)
			if few {
				for _, m := range []float64{2, 5} {
					if d*m < hi {
						out = append(out, d*m)
					}
				}
			}
		}
		return out
	}
	step := niceStep((hi - lo) / 5)
	for v := lo; v <= hi+step/1e6 && len(out) < 64; v += step {
		out = append(out, v)
	}
	return out
}

func scaler(lo, hi, a, b float64, log bool) func(float64) float64 {
	if log {
		llo, lhi := math.Log10(lo), math.Log10(hi)
		return func(v float64) float64 { return a + (math.Log10(v)-llo)/(lhi-llo)*(b-a) }
	}
	return func(v float64) float64 { return a + (v-lo)/(hi-lo)*(b-a) }
}

// fmtTick writes a tick value compactly: 0.5, 20, 1.5k, 2M.
func fmtTick(v float64) string {
	a := math.Abs(v)
	switch {
	case a >= 1e6:
		return strconv.FormatFloat(v/1e6, 'g', 4, 64) + "M"
	case a >= 1e4:
		return strconv.FormatFloat(v/1e3, 'g', 4, 64) + "k"
	}
	return strconv.FormatFloat(v, 'g', 4, 64)
}
