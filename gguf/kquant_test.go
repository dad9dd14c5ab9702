package gguf

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"

	"github.com/bidora/bidora/safetensors"
)

// refDecode is an independent float64 reading of ggml's block layouts,
// element by element from its index (the package's decoders walk the
// blocks in ggml's loop order instead).
func refDecode(t *testing.T, data []byte, typ TensorType, n int) []float64 {
	t.Helper()
	h := func(b []byte) float64 { return float64(safetensors.F16ToF32(binary.LittleEndian.Uint16(b))) }
	out := make([]float64, n)
	for i := range out {
		switch typ {
		case Q4_K:
			blk := data[(i/QK_K)*Q4_KBlockBytes:]
			e := i % QK_K
			g := e / 32 // group of 32: scale and min
			sc := blk[4:16]
			var s, m int
			if g < 4 {
				s, m = int(sc[g]&63), int(sc[g+4]&63)
			} else {
				s = int(sc[g+4]&15) | int(sc[g-4]>>6)<<4
				m = int(sc[g+4]>>4) | int(sc[g]>>6)<<4
			}
			// 64 values per 32 bytes: the first 32 in the low nibbles.
			b := blk[16+(e/64)*32+e%32]
			q := int(b & 15)
			if g%2 == 1 {
				q = int(b >> 4)
			}
			out[i] = h(blk[0:])*float64(s)*float64(q) - h(blk[2:])*float64(m)
		case Q6_K:
			blk := data[(i/QK_K)*Q6_KBlockBytes:]
			e := i % QK_K
			half, r := e/128, e%128
			quarter, l := r/32, r%32 // which of the four 32-runs in the half
			lowByte := blk[64*half+32*(quarter%2)+l]
			low := int(lowByte & 15)
			if quarter >= 2 {
				low = int(lowByte >> 4)
			}
			high := int(blk[128+32*half+l]>>(2*quarter)) & 3
			q := low | high<<4 - 32
			s := int(int8(blk[192+e/16]))
			out[i] = h(blk[208:]) * float64(s) * float64(q)
		case Q5_0:
			blk := data[(i/32)*Q5_0BlockBytes:]
			e := i % 32
			qh := binary.LittleEndian.Uint32(blk[2:])
			b := blk[6+e%16]
			q := int(b & 15)
			if e >= 16 {
				q = int(b >> 4)
			}
			q |= int(qh>>e&1) << 4
			out[i] = h(blk) * float64(q-16)
		default:
			t.Fatalf("no reference for %s", typ)
		}
	}
	return out
}

func TestKQuantLayoutGolden(t *testing.T) {
	// Q5_0: values −8 … 7.5 in steps of 0.5: d = −8/−16 = 0.5, q = j.
	x := make([]float32, 32)
	for j := range x {
		x[j] = float32(j-16) * 0.5
	}
	b, err := EncodeQ5_0(x)
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{0x00, 0x38, 0x00, 0x00, 0xff, 0xff}
	for j := 0; j < 16; j++ {
		want = append(want, byte(j)|byte(j)<<4)
	}
	if !slices.Equal(b, want) {
		t.Errorf("Q5_0 bytes\n got %x\nwant %x", b, want)
	}
	// Q4_K: every group of 32 holds 0 … 15 twice, so each group's scale is
	// 1 and its min 0: sc = 63 in each 6-bit field, d = f16(1/63), dmin 0.
	x = make([]float32, QK_K)
	for i := range x {
		x[i] = float32(i % 16)
	}
	if b, err = EncodeQ4_K(x); err != nil {
		t.Fatal(err)
	}
	want = binary.LittleEndian.AppendUint16(nil, safetensors.F32ToF16(1.0/63))
	want = append(want, 0, 0)                                               // dmin
	want = append(want, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 15, 15, 15, 15) // scales
	for j := 0; j < 4; j++ {
		for l := 0; l < 32; l++ {
			want = append(want, byte(l%16)*0x11)
		}
	}
	if !slices.Equal(b, want) {
		t.Errorf("Q4_K bytes\n got %x\nwant %x", b, want)
	}
	got, _ := DecodeQ4_K(b)
	for i := range x {
		if math.Abs(float64(got[i]-x[i])) > 4e-3 { // d·63 = 1 up to f16 rounding
			t.Fatalf("Q4_K value %d decodes to %g, want %g", i, got[i], x[i])
		}
	}
}

// TestKQuantRoundTrip quantises Gaussian rows (with outliers and an all-zero
// block) and checks (a) the decoders against refDecode, and (b) the error
// against the float64 input: the RMS error relative to the RMS value and a
// per-value bound from each type's step.
func TestKQuantRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const n = 16 * QK_K
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(rng.NormFloat64() * 0.02)
		if i%97 == 0 {
			x[i] *= 8 // outliers
		}
	}
	for i := 5 * QK_K; i < 6*QK_K; i++ {
		x[i] = 0
	}
	for i := 7 * QK_K; i < 8*QK_K; i++ {
		x[i] = 0.01 + float32(i%7)*1e-3 // all positive: the min matters
	}
	for _, c := range []struct {
		typ     TensorType
		enc     func([]float32) ([]byte, error)
		dec     func([]byte) ([]float32, error)
		maxRel  float64 // RMS error / RMS value
		stepTol float64 // |error| ≤ stepTol × the block's max |x|
	}{
		{Q4_K, EncodeQ4_K, DecodeQ4_K, 0.11, 0.12},
		{Q6_K, EncodeQ6_K, DecodeQ6_K, 0.035, 0.025},
		// Q5_0 maps the largest magnitude to −16·d, so values of the other
		// sign clamp at +15·d: the error reaches d = max|x|/16 there.
		{Q5_0, EncodeQ5_0, DecodeQ5_0, 0.08, 1.0 / 16 * 1.01},
	} {
		t.Run(c.typ.String(), func(t *testing.T) {
			b, err := c.enc(x)
			if err != nil {
				t.Fatal(err)
			}
			if size, _ := c.typ.rowBytes(n); uint64(len(b)) != size {
				t.Fatalf("%d bytes, want %d", len(b), size)
			}
			got, err := c.dec(b)
			if err != nil {
				t.Fatal(err)
			}
			if d, _ := DecodeTensor(b, c.typ); !slices.Equal(d, got) {
				t.Error("DecodeTensor differs")
			}
			ref := refDecode(t, b, c.typ, n)
			block := 32
			if c.typ != Q5_0 {
				block = QK_K
			}
			var se, sx float64
			for i := range x {
				if math.Abs(float64(got[i])-ref[i]) > 1e-6*math.Abs(ref[i])+1e-12 {
					t.Fatalf("value %d: decoder %g, reference layout %g", i, got[i], ref[i])
				}
				e := ref[i] - float64(x[i])
				se += e * e
				sx += float64(x[i]) * float64(x[i])
				var amax float64
				for _, v := range x[i/block*block : (i/block+1)*block] {
					amax = max(amax, math.Abs(float64(v)))
				}
				if math.Abs(e) > c.stepTol*amax+1e-9 {
					t.Fatalf("value %d: %g quantised to %g, error above %g × block max %g", i, x[i], ref[i], c.stepTol, amax)
				}
			}
			rel := math.Sqrt(se / sx)
			t.Logf("%s: RMS error / RMS value %.4f (%.2f bits per value)", c.typ, rel, float64(8*len(b))/n)
			if rel > c.maxRel {
				t.Errorf("RMS error / RMS value %.4f, want ≤ %g", rel, c.maxRel)
			}
			for i := 5 * QK_K; i < 6*QK_K; i++ {
				if got[i] != 0 {
					t.Fatalf("zero block: value %d decodes to %g", i, got[i])
				}
			}
		})
	}
	if _, err := EncodeQ4_K(x[:100]); err == nil {
		t.Error("Q4_K of 100 values: no error")
	}
}

func TestTensorTypeQ4_K_M(t *testing.T) {
	// 24 layers: useMoreBits picks 0-2, 21-23 and 3+3k+2 = 5, 8, … 20.
	var more []int
	for l := 0; l < 24; l++ {
		if TensorTypeQ4_K_M("blk."+strconv.Itoa(l)+".attn_v.weight", 1024, 24, true) == Q6_K {
			more = append(more, l)
		}
	}
	if want := []int{0, 1, 2, 5, 8, 11, 14, 17, 20, 21, 22, 23}; !slices.Equal(more, want) {
		t.Errorf("Q6_K attn_v layers %v, want %v", more, want)
	}
	for _, c := range []struct {
		name   string
		cols   int
		layers int
		tied   bool
		want   TensorType
	}{
		{"token_embd.weight", 1024, 24, true, Q6_K},
		{"token_embd.weight", 1024, 24, false, Q4_K},
		{"token_embd.weight", 896, 24, true, Q8_0}, // Qwen2.5-0.5B: 896 = 3.5 × 256
		{"blk.3.attn_k.weight", 896, 24, true, Q5_0},
		{"output.weight", 4096, 32, false, Q6_K},
		{"token_embd.weight", 288, 6, true, Q8_0}, // output rows not ×256: Q8_0
		{"blk.0.ffn_down.weight", 4864, 24, true, Q6_K},
		{"blk.3.ffn_down.weight", 4864, 24, true, Q4_K},
		{"blk.0.ffn_down.weight", 768, 6, true, Q4_K}, // 6/8 = 0 layers at the start
		{"blk.1.ffn_down.weight", 768, 6, true, Q4_K},
		{"blk.2.ffn_down.weight", 768, 6, true, Q6_K}, // (2−0)%3 == 2
		{"blk.5.ffn_down.weight", 768, 6, true, Q6_K}, // ≥ 7·6/8
		{"blk.1.attn_q.weight", 288, 6, true, Q5_0},
		{"blk.1.ffn_up.weight", 256, 6, true, Q4_K},
		{"blk.1.ffn_up.weight", 100, 6, true, F16},
		{"output.weight", 100, 6, false, F16},
	} {
		if got := TensorTypeQ4_K_M(c.name, c.cols, c.layers, c.tied); got != c.want {
			t.Errorf("%s (%d columns, %d layers, tied %v): %s, want %s", c.name, c.cols, c.layers, c.tied, got, c.want)
		}
	}
}
