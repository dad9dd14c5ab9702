// Package plot draws small line charts as PNG (training and validation loss curves)
// with nothing but the standard image packages and a fixed bitmap font.
package plot

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io"
	"math"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// Series is one line: points (X[i], Y[i]) drawn in Color, named in the legend.
type Series struct {
	Name  string
	X, Y  []float64
	Color color.RGBA
	// Markers draws a dot at each point (for sparse series such as validation loss).
	Markers bool
}

// Chart is a titled line chart.
type Chart struct {
	Title, XLabel, YLabel string
	Width, Height         int
	Series                []Series
}

// Colors used by default for the first series.
var (
	Blue   = color.RGBA{31, 119, 180, 255}
	Orange = color.RGBA{255, 127, 14, 255}
	Green  = color.RGBA{44, 160, 44, 255}
)

const (
	marginL, marginR, marginT, marginB = 70, 20, 40, 50
)

// WritePNG renders the chart. Non-finite points are skipped.
func (c *Chart) WritePNG(w io.Writer) error {
	W, H := c.Width, c.Height
	if W == 0 {
		W = 800
	}
	if H == 0 {
		H = 480
	}
	img := image.NewRGBA(image.Rect(0, 0, W, H))
	draw.Draw(img, img.Bounds(), image.White, image.Point{}, draw.Src)
	x0, x1, y0, y1 := c.bounds()
	px := func(x float64) int { return marginL + int((x-x0)/(x1-x0)*float64(W-marginL-marginR)+0.5) }
	py := func(y float64) int { return H - marginB - int((y-y0)/(y1-y0)*float64(H-marginT-marginB)+0.5) }
	grey, black := color.RGBA{220, 220, 220, 255}, color.RGBA{0, 0, 0, 255}
	for i := 0; i <= 5; i++ {
		yv := y0 + (y1-y0)*float64(i)/5
		line(img, marginL, py(yv), W-marginR, py(yv), grey)
		label(img, 4, py(yv)+4, fmt.Sprintf("%.3g", yv), black)
		xv := x0 + (x1-x0)*float64(i)/5
		line(img, px(xv), marginT, px(xv), H-marginB, grey)
		label(img, px(xv)-10, H-marginB+16, fmt.Sprintf("%.4g", xv), black)
	}
	line(img, marginL, H-marginB, W-marginR, H-marginB, black)
	line(img, marginL, marginT, marginL, H-marginB, black)
	label(img, marginL, 20, c.Title, black)
	label(img, W/2-20, H-10, c.XLabel, black)
	label(img, 4, marginT-10, c.YLabel, black)
	for si, s := range c.Series {
		col := s.Color
		if col.A == 0 {
			col = []color.RGBA{Blue, Orange}[si%2]
		}
		prevOK := false
		var lx, ly int
		for i := range s.X {
			if i >= len(s.Y) || !finite(s.X[i]) || !finite(s.Y[i]) {
				prevOK = false
				continue
			}
			x, y := px(s.X[i]), py(s.Y[i])
			if prevOK {
				line(img, lx, ly, x, y, col)
			}
			if s.Markers {
				for dx := -2; dx <= 2; dx++ {
					for dy := -2; dy <= 2; dy++ {
						img.Set(x+dx, y+dy, col)
					}
				}
			}
			lx, ly, prevOK = x, y, true
		}
		ly0 := marginT + 8 + 16*si
		line(img, W-marginR-150, ly0, W-marginR-130, ly0, col)
		label(img, W-marginR-125, ly0+4, s.Name, black)
	}
	return png.Encode(w, img)
}

func (c *Chart) bounds() (x0, x1, y0, y1 float64) {
	x0, y0 = math.Inf(1), math.Inf(1)
	x1, y1 = math.Inf(-1), math.Inf(-1)
	for _, s := range c.Series {
		for i := range s.X {
			if i < len(s.Y) && finite(s.X[i]) && finite(s.Y[i]) {
				x0, x1 = math.Min(x0, s.X[i]), math.Max(x1, s.X[i])
				y0, y1 = math.Min(y0, s.Y[i]), math.Max(y1, s.Y[i])
			}
		}
	}
	if math.IsInf(x0, 1) {
		return 0, 1, 0, 1
	}
	if x1 == x0 {
		x1 = x0 + 1
	}
	if y1 == y0 {
		y0, y1 = y0-0.5, y1+0.5
	}
	pad := (y1 - y0) * 0.05
	return x0, x1, y0 - pad, y1 + pad
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// line draws with Bresenham's algorithm.
func line(img *image.RGBA, x0, y0, x1, y1 int, c color.RGBA) {
	dx, dy := abs(x1-x0), -abs(y1-y0)
	sx, sy := sign(x1-x0), sign(y1-y0)
	err := dx + dy
	for {
		img.SetRGBA(x0, y0, c)
		if x0 == x1 && y0 == y1 {
			return
		}
		if e2 := 2 * err; e2 >= dy {
			err += dy
			x0 += sx
		} else if e2 <= dx {
			err += dx
			y0 += sy
		}
	}
}

func label(img *image.RGBA, x, y int, s string, c color.RGBA) {
	d := &font.Drawer{Dst: img, Src: image.NewUniform(c), Face: basicfont.Face7x13, Dot: fixed.P(x, y)}
	d.DrawString(s)
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

func sign(v int) int {
	switch {
	case v > 0:
		return 1
	case v < 0:
		return -1
	}
	return 0
}
