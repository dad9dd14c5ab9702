package plot

import (
	"bytes"
	"image/png"
	"math"
	"testing"
)

func TestWritePNGDrawsSeries(t *testing.T) {
	c := &Chart{Title: "loss", XLabel: "step", YLabel: "loss", Width: 400, Height: 300, Series: []Series{
		{Name: "train", X: []float64{0, 1, 2, 3}, Y: []float64{4, 3, 2.5, math.NaN()}},
		{Name: "val", X: []float64{1, 3}, Y: []float64{3.5, 2.8}, Markers: true},
	}}
	var buf bytes.Buffer
	if err := c.WritePNG(&buf); err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() != 400 || b.Dy() != 300 {
		t.Fatalf("size %v", b)
	}
	// Both series' colours appear in the plot area.
	found := map[[3]uint32]bool{}
	for y := marginT; y < 300-marginB; y++ {
		for x := marginL + 1; x < 400-marginR-160; x++ {
			r, g, b, _ := img.At(x, y).RGBA()
			found[[3]uint32{r >> 8, g >> 8, b >> 8}] = true
		}
	}
	for _, col := range []struct{ r, g, b uint32 }{{31, 119, 180}, {255, 127, 14}} {
		if !found[[3]uint32{col.r, col.g, col.b}] {
			t.Errorf("colour %v not drawn", col)
		}
	}
}

func TestEmptyChart(t *testing.T) {
	var buf bytes.Buffer
	if err := (&Chart{}).WritePNG(&buf); err != nil || buf.Len() == 0 {
		t.Fatal(err)
	}
}
