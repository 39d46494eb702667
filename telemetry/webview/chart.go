package webview

import (
	"bytes"
	"fmt"
	"image/color"
	"slices"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"
)

// The charts, drawn with gonum.org/v1/plot as SVG documents that the pages
// show as images: a browser runs no script and loads nothing for an SVG
// shown as an image, and every text in them is escaped by the SVG canvas
// (and passed through visible first).

var (
	colorOK     = color.RGBA{R: 0x2b, G: 0x7a, B: 0x4b, A: 0xff}
	colorFailed = color.RGBA{R: 0xc2, G: 0x3b, B: 0x22, A: 0xff}
	colorP50    = color.RGBA{R: 0x4a, G: 0x90, B: 0xd9, A: 0xff}
	colorP90    = color.RGBA{R: 0x1f, G: 0x5f, B: 0xa8, A: 0xff}
	colorP99    = color.RGBA{R: 0x0b, G: 0x2e, B: 0x59, A: 0xff}
	chartFont   = font.Font{Typeface: "Liberation", Variant: "Sans"}
)

const (
	chartWidth     = 420 // points
	chartHeight    = 200
	maxChartNames  = 12 // event names in the durations chart
	maxChartLabel  = 28 // bytes of an event name in a chart label
	throughputBin  = 5  // seconds per point of the throughput chart
	failureRateBin = 10 // seconds per point of the failure-rate chart
)

// newPlot returns a plot in the view's style.
func newPlot(title, xLabel, yLabel string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = xLabel
	p.Y.Label.Text = yLabel
	for _, f := range []*font.Font{
		&p.Title.TextStyle.Font, &p.X.Label.TextStyle.Font, &p.Y.Label.TextStyle.Font,
		&p.X.Tick.Label.Font, &p.Y.Tick.Label.Font, &p.Legend.TextStyle.Font,
	} {
		f.Typeface, f.Variant = chartFont.Typeface, chartFont.Variant
	}
	p.Title.TextStyle.Font.Size = vg.Points(11)
	p.Legend.TextStyle.Font.Size = vg.Points(9)
	p.Legend.Top = true
	p.Legend.Left = true
	p.Legend.XOffs, p.Legend.YOffs = vg.Points(6), -vg.Points(4)
	p.Legend.Padding = vg.Points(1)
	p.Add(plotter.NewGrid())
	return p
}

// svg renders p as an SVG document of the given size in points.
func svg(p *plot.Plot, w, h vg.Length) ([]byte, error) {
	c := vgsvg.New(w, h)
	p.Draw(draw.New(c))
	var b bytes.Buffer
	if _, err := c.WriteTo(&b); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// minutesAgo is the x of a second of secs, in minutes before the last one.
func minutesAgo(i, n int) float64 { return -float64(n-1-i) / 60 }

// throughputChart draws runs per second, completed and failed, averaged
// over bins of throughputBin seconds.
func throughputChart(secs []second) ([]byte, error) {
	p := newPlot("Event runs per second", "minutes (0 = now)", "runs/s")
	var ok, failed plotter.XYs
	for i := 0; i+throughputBin <= len(secs); i += throughputBin {
		var c, f uint32
		for _, s := range secs[i : i+throughputBin] {
			c, f = c+s.completed, f+s.failed
		}
		x := minutesAgo(i+throughputBin-1, len(secs))
		ok = append(ok, plotter.XY{X: x, Y: float64(c) / throughputBin})
		failed = append(failed, plotter.XY{X: x, Y: float64(f) / throughputBin})
	}
	if err := addLine(p, ok, colorOK, "completed"); err != nil {
		return nil, err
	}
	if err := addLine(p, failed, colorFailed, "failed"); err != nil {
		return nil, err
	}
	p.Y.Min = 0
	return svg(p, chartWidth, chartHeight)
}

// failureRateChart draws the share of runs that failed, per bin of
// failureRateBin seconds that had runs.
func failureRateChart(secs []second) ([]byte, error) {
	p := newPlot(fmt.Sprintf("Failed runs, %% per %d s", failureRateBin), "minutes (0 = now)", "% failed")
	var pts plotter.XYs
	for i := 0; i+failureRateBin <= len(secs); i += failureRateBin {
		var c, f uint32
		for _, s := range secs[i : i+failureRateBin] {
			c, f = c+s.completed, f+s.failed
		}
		if c+f > 0 {
			pts = append(pts, plotter.XY{X: minutesAgo(i+failureRateBin-1, len(secs)), Y: 100 * float64(f) / float64(c+f)})
		}
	}
	if err := addLine(p, pts, colorFailed, ""); err != nil {
		return nil, err
	}
	p.X.Min, p.X.Max = minutesAgo(0, len(secs)), 0
	p.Y.Min, p.Y.Max = 0, 100
	return svg(p, chartWidth, chartHeight)
}

func addLine(p *plot.Plot, pts plotter.XYs, c color.Color, legend string) error {
	if len(pts) == 0 {
		return nil
	}
	l, err := plotter.NewLine(pts)
	if err != nil {
		return err
	}
	l.Color = c
	l.Width = vg.Points(1.5)
	p.Add(l)
	if legend != "" {
		p.Legend.Add(legend, l)
	}
	return nil
}

// durationsChart draws the 50th, 90th and 99th percentile durations of the
// event names with the most runs, as horizontal bars.
func durationsChart(names []nameSummary) ([]byte, error) {
	names = slices.Clone(names)
	slices.SortStableFunc(names, func(a, b nameSummary) int {
		return int(min(max(int64(b.Completed+b.Failed)-int64(a.Completed+a.Failed), -1), 1))
	})
	names = names[:min(len(names), maxChartNames)]
	slices.Reverse(names) // the busiest on top
	p := newPlot("Duration percentiles (recent runs)", "milliseconds", "")
	labels := make([]string, len(names))
	p50, p90, p99 := make(plotter.Values, len(names)), make(plotter.Values, len(names)), make(plotter.Values, len(names))
	for i, n := range names {
		labels[i] = chartLabel(n.Name)
		p50[i], p90[i], p99[i] = ms(n.P50), ms(n.P90), ms(n.P99)
	}
	height := vg.Length(60 + 30*max(len(names), 1))
	if len(names) > 0 {
		w := vg.Points(7)
		for i, s := range []struct {
			v      plotter.Values
			c      color.Color
			legend string
		}{{p99, colorP99, "p99"}, {p90, colorP90, "p90"}, {p50, colorP50, "p50"}} {
			b, err := plotter.NewBarChart(s.v, w)
			if err != nil {
				return nil, err
			}
			b.Horizontal = true
			b.Color = s.c
			b.LineStyle.Width = 0
			b.Offset = vg.Length(i-1) * w
			p.Add(b)
			p.Legend.Add(s.legend, b)
		}
		p.NominalY(labels...)
		p.Legend.Left = false
		p.Legend.XOffs = -vg.Points(6)
	}
	p.X.Min = 0
	return svg(p, chartWidth, height)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// chartLabel is the label of an event name in a chart: visible, and cut.
func chartLabel(name string) string {
	if name == otherNames {
		return "(other names)"
	}
	return visible(clip(name, maxChartLabel), false)
}
