package main

import (
	"fmt"
	"image/color"
	"math"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

const (
	// plotWidth and plotHeight are the size of every PNG.
	plotWidth, plotHeight = 7 * vg.Inch, 4.5 * vg.Inch
	// lineWidth is the width of every curve.
	lineWidth = 1.5
	// titleWidth is how many characters of sources a title's line holds.
	titleWidth = 100
	// legendRoom is the share of the highest value added above it for
	// each line of a legend at the top.
	legendRoom = 0.08
)

// newPlot returns a plot with a grid, its title (the sources on a second
// line) and its axes' labels.
func newPlot(title string, sources []string, x, y string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title + "\n" + wrap(sources, titleWidth)
	p.Title.TextStyle.Font.Size = 10
	p.X.Label.Text = x
	p.Y.Label.Text = y
	p.X.Min, p.Y.Min = 0, 0
	p.X.Tick.Marker = plot.TickerFunc(niceTicks)
	p.Y.Tick.Marker = plot.TickerFunc(niceTicks)
	p.Add(plotter.NewGrid())
	p.Legend.Top = true
	p.Legend.Left = true
	return p
}

// addCurve adds c as the i-th line of p, with its legend.
func addCurve(p *plot.Plot, i int, c curve) error {
	l, err := plotter.NewLine(xys(c.xs, c.ys))
	if err != nil {
		return fmt.Errorf("%s: %w", c.label, err)
	}
	l.Color = plotutil.Color(i)
	l.Dashes = plotutil.Dashes(i)
	l.Width = vg.Points(lineWidth)
	p.Add(l)
	p.Legend.Add(c.label, l)
	return nil
}

// xys pairs xs with ys.
func xys(xs, ys []float64) plotter.XYs {
	out := make(plotter.XYs, len(xs))
	for i := range xs {
		out[i] = plotter.XY{X: xs[i], Y: ys[i]}
	}
	return out
}

// drawMemory draws reroll's memory against the cluster size: each figure
// of the points as a line with its points marked, and the sizing guide
// dashed.
func drawMemory(points []sizePoint, file string) error {
	var sources []string
	for _, pt := range points {
		sources = append(sources, pt.source)
	}
	p := newPlot("reroll's memory against the cluster size", sources, "Deployments watched (above), ConfigMaps and Secrets cached (below)", "MiB")
	figures := []struct {
		label string
		value func(sizePoint) float64
	}{
		{"peak RSS at the end", func(s sizePoint) float64 { return s.endPeak }},
		{"peak RSS once all adopted", func(s sizePoint) float64 { return s.adoptedPeak }},
		{"peak RSS at /readyz", func(s sizePoint) float64 { return s.readyPeak }},
		{"heap in use once all adopted", func(s sizePoint) float64 { return s.adoptedHeap }},
		{"sizing guide: 35 MiB + 2 KB per object + 5 KB per workload", func(s sizePoint) float64 { return sizingGuide(s.workloads, s.objects) }},
	}
	var ticks []plot.Tick
	for _, pt := range points {
		ticks = append(ticks, plot.Tick{Value: pt.workloads, Label: fmt.Sprintf("%s\n%s", thousands(pt.workloads), thousands(pt.objects))})
	}
	p.X.Tick.Marker = plot.ConstantTicks(ticks)
	// Room for the last tick's label.
	p.X.Max = 1.08 * points[len(points)-1].workloads
	for i, f := range figures {
		c := curve{label: f.label}
		for _, pt := range points {
			c.xs = append(c.xs, pt.workloads)
			c.ys = append(c.ys, f.value(pt))
		}
		if err := addMarkedCurve(p, i, c, i == len(figures)-1); err != nil {
			return err
		}
	}
	return p.Save(plotWidth, plotHeight, file)
}

// addMarkedCurve adds c as the i-th line of p with its points marked, or
// as a grey dashed line without marks when guide is set.
func addMarkedCurve(p *plot.Plot, i int, c curve, guide bool) error {
	if guide {
		l, err := plotter.NewLine(xys(c.xs, c.ys))
		if err != nil {
			return err
		}
		l.Color = color.Gray{Y: 0x80}
		l.Dashes = []vg.Length{vg.Points(6), vg.Points(4)}
		l.Width = vg.Points(lineWidth)
		p.Add(l)
		p.Legend.Add(c.label, l)
		return nil
	}
	l, s, err := plotter.NewLinePoints(xys(c.xs, c.ys))
	if err != nil {
		return err
	}
	l.Color, s.Color = plotutil.Color(i), plotutil.Color(i)
	l.Width = vg.Points(lineWidth)
	s.Shape = draw.CircleGlyph{}
	p.Add(l, s)
	p.Legend.Add(c.label, l, s)
	return nil
}

// drawCurves draws curves, one line each, in a plot of the given title,
// sources and axes, with room above the highest for the legend (and no
// ticks there).
func drawCurves(curves []curve, title string, sources []string, x, y, file string) error {
	p := newPlot(title, sources, x, y)
	top := 0.0
	for i, c := range curves {
		if err := addCurve(p, i, c); err != nil {
			return err
		}
		for _, v := range c.ys {
			top = math.Max(top, v)
		}
	}
	p.Y.Max = top * (1 + legendRoom*float64(len(curves)))
	p.Y.Tick.Marker = plot.TickerFunc(func(lo, _ float64) []plot.Tick { return niceTicks(lo, top) })
	return p.Save(plotWidth, plotHeight, file)
}

// niceTicks returns about eight labelled ticks between lo and hi, at
// multiples of 1, 2, 2.5 or 5 times a power of ten.
func niceTicks(lo, hi float64) []plot.Tick {
	if !(hi > lo) {
		return nil
	}
	raw := (hi - lo) / 8
	power := math.Pow(10, math.Floor(math.Log10(raw)))
	step := 10 * power
	for _, m := range []float64{1, 2, 2.5, 5} {
		if m*power >= raw {
			step = m * power
			break
		}
	}
	decimals := max(0, -int(math.Floor(math.Log10(step))))
	var ticks []plot.Tick
	for k := math.Ceil(lo / step); k*step <= hi+step/1e6; k++ {
		v := k*step + 0 // + 0 turns -0 into 0
		ticks = append(ticks, plot.Tick{Value: v, Label: strconv.FormatFloat(v, 'f', decimals, 64)})
	}
	return ticks
}

// wrap joins items with ", " into lines of at most width characters,
// unless an item alone is longer.
func wrap(items []string, width int) string {
	var lines []string
	line := ""
	for _, it := range items {
		switch {
		case line == "":
			line = it
		case len(line)+2+len(it) <= width:
			line += ", " + it
		default:
			lines = append(lines, line+",")
			line = it
		}
	}
	return strings.Join(append(lines, line), "\n")
}

// thousands formats n as an integer with thousands separated by commas.
func thousands(n float64) string {
	s := fmt.Sprintf("%.0f", n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
