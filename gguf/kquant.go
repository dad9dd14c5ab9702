package gguf

import (
	"encoding/binary"
	"fmt"
	"math"
	"runtime"
	"sync"

	"github.com/bidora/bidora/safetensors"
)

// This file holds the block formats of llama.cpp's Q4_K_M mix: Q4_K and
// Q6_K (super-blocks of QK_K = 256 values) and Q5_0, the type a Q4_K matrix
// falls back to when its rows are not a multiple of 256 long. The byte layouts
// are ggml's block_q4_K, block_q6_K and block_q5_0; the quantisers follow
// ggml's reference (non-imatrix) algorithms, so a file written here
// dequantises in llama.cpp to what DecodeQ4_K, DecodeQ6_K and DecodeQ5_0
// return.

// QK_K is the super-block length of the k-quants.
const QK_K = 256

// Block sizes in bytes.
const (
	// Q4_K: f16 d, f16 dmin, 12 bytes of eight 6-bit scales and eight 6-bit
	// mins (one pair per 32 values), 128 bytes of 4-bit quants.
	Q4_KBlockBytes = 2 + 2 + 12 + QK_K/2
	// Q6_K: 128 bytes of low 4 bits, 64 bytes of high 2 bits, 16 int8 scales
	// (one per 16 values), f16 d.
	Q6_KBlockBytes = QK_K/2 + QK_K/4 + QK_K/16 + 2
	// Q5_0: f16 d, 32 high bits, 16 bytes of low nibbles, for 32 values.
	Q5_0BlockSize  = 32
	Q5_0BlockBytes = 2 + 4 + Q5_0BlockSize/2
)

// groupMaxEps is the amplitude below which a group quantises to zeros.
const groupMaxEps = 1e-15

// nearestInt rounds as ggml's nearest_int: to nearest, ties to even, in
// float32 (valid for |f| ≤ 2²²).
func nearestInt(f float32) int {
	v := f + 12582912
	return int(math.Float32bits(v)&0x7fffff) - 0x400000
}

func f16(f float32) uint16     { return safetensors.F32ToF16(f) }
func fromF16(h uint16) float32 { return safetensors.F16ToF32(h) }

// makeQKX2 finds a scale and a min (as a value ≥ 0 subtracted) for n values
// quantised to 0..nmax, minimising the weighted squared error over a small
// grid of candidate scales (ggml's make_qkx2_quants with use_mad false).
func makeQKX2(x, w []float32, nmax int, L, aux []uint8, rmin, rdelta float32, nstep int) (scale, theMin float32) {
	n := len(x)
	lo, hi := x[0], x[0]
	sumW := w[0]
	sumX := sumW * x[0]
	for i := 1; i < n; i++ {
		lo = min(lo, x[i])
		hi = max(hi, x[i])
		sumW += w[i]
		sumX += w[i] * x[i]
	}
	if lo > 0 {
		lo = 0
	}
	if hi == lo {
		for i := range L[:n] {
			L[i] = 0
		}
		return 0, -lo
	}
	iscale := float32(nmax) / (hi - lo)
	scale = 1 / iscale
	var best float32
	for i := 0; i < n; i++ {
		l := max(0, min(nmax, nearestInt(iscale*(x[i]-lo))))
		L[i] = uint8(l)
		d := scale*float32(l) + lo - x[i]
		best += w[i] * d * d
	}
	for is := 0; is <= nstep; is++ {
		iscale = (rmin + rdelta*float32(is) + float32(nmax)) / (hi - lo)
		var sumL, sumL2, sumXL float32
		for i := 0; i < n; i++ {
			l := max(0, min(nmax, nearestInt(iscale*(x[i]-lo))))
			aux[i] = uint8(l)
			fl := float32(l)
			sumL += w[i] * fl
			sumL2 += w[i] * fl * fl
			sumXL += w[i] * fl * x[i]
		}
		D := sumW*sumL2 - sumL*sumL
		if D <= 0 {
			continue
		}
		thisScale := (sumW*sumXL - sumX*sumL) / D
		thisMin := (sumL2*sumX - sumL*sumXL) / D
		if thisMin > 0 {
			thisMin = 0
			thisScale = sumXL / sumL2
		}
		var e float32
		for i := 0; i < n; i++ {
			d := thisScale*float32(aux[i]) + thisMin - x[i]
			e += w[i] * d * d
		}
		if e < best {
			copy(L[:n], aux[:n])
			best, scale, lo = e, thisScale, thisMin
		}
	}
	return scale, -lo
}

// makeQX finds a signed scale for n values quantised to -nmax..nmax-1
// (stored in L offset by nmax), weighting by x² and trying 18 scales around
// -nmax/max (ggml's make_qx_quants with rmse_type 1).
func makeQX(x []float32, nmax int, L []uint8) float32 {
	var mx, amax float32
	for _, v := range x {
		if a := float32(math.Abs(float64(v))); a > amax {
			amax, mx = a, v
		}
	}
	if amax < groupMaxEps {
		for i := range x {
			L[i] = 0
		}
		return 0
	}
	quant := func(iscale float32) (sumLX, sumL2 float32) {
		for _, v := range x {
			l := max(-nmax, min(nmax-1, nearestInt(iscale*v)))
			w := v * v
			sumLX += w * v * float32(l)
			sumL2 += w * float32(l*l)
		}
		return
	}
	fill := func(iscale float32) {
		for i, v := range x {
			L[i] = uint8(nmax + max(-nmax, min(nmax-1, nearestInt(iscale*v))))
		}
	}
	iscale := -float32(nmax) / mx
	fill(iscale)
	sumLX, sumL2 := quant(iscale)
	var scale float32
	if sumL2 != 0 {
		scale = sumLX / sumL2
	}
	best := scale * sumLX
	for is := -9; is <= 9; is++ {
		if is == 0 {
			continue
		}
		iscale = -(float32(nmax) + 0.1*float32(is)) / mx
		sumLX, sumL2 = quant(iscale)
		if sumL2 > 0 && sumLX*sumLX > best*sumL2 {
			fill(iscale)
			scale = sumLX / sumL2
			best = scale * sumLX
		}
	}
	return scale
}

// EncodeQ4_K quantises vals (a multiple of 256 of them) as ggml's Q4_K:
// per 256 values, eight groups of 32 with an asymmetric 4-bit code
// x ≈ d·sc·q − dmin·m, where sc and m are 6-bit and d, dmin f16.
func EncodeQ4_K(vals []float32) ([]byte, error) {
	if len(vals)%QK_K != 0 {
		return nil, fmt.Errorf("Q4_K needs a multiple of %d values, got %d", QK_K, len(vals))
	}
	out := make([]byte, len(vals)/QK_K*Q4_KBlockBytes)
	parallelBlocks(len(vals)/QK_K, func(b0, b1 int) {
		encodeQ4_K(out[b0*Q4_KBlockBytes:b1*Q4_KBlockBytes], vals[b0*QK_K:b1*QK_K])
	})
	return out, nil
}

func encodeQ4_K(out []byte, vals []float32) {
	var (
		L       [QK_K]uint8
		aux     [32]uint8
		weights [32]float32
		scales  [8]float32
		mins    [8]float32
	)
	for b := 0; b < len(vals)/QK_K; b++ {
		x := vals[b*QK_K : (b+1)*QK_K]
		o := out[b*Q4_KBlockBytes : (b+1)*Q4_KBlockBytes]
		var sumX2 float32
		for _, v := range x {
			sumX2 += v * v
		}
		avX := float32(math.Sqrt(float64(sumX2 / QK_K)))
		var maxScale, maxMin float32
		for j := 0; j < 8; j++ {
			g := x[32*j : 32*j+32]
			for l, v := range g {
				weights[l] = avX + float32(math.Abs(float64(v)))
			}
			scales[j], mins[j] = makeQKX2(g, weights[:], 15, L[32*j:32*j+32], aux[:], -1, 0.1, 20)
			maxScale = max(maxScale, scales[j])
			maxMin = max(maxMin, mins[j])
		}
		var invScale, invMin float32
		if maxScale > 0 {
			invScale = 63 / maxScale
		}
		if maxMin > 0 {
			invMin = 63 / maxMin
		}
		sc := o[4:16]
		for j := 0; j < 8; j++ {
			ls := uint8(min(63, nearestInt(invScale*scales[j])))
			lm := uint8(min(63, nearestInt(invMin*mins[j])))
			if j < 4 {
				sc[j] = ls
				sc[j+4] = lm
			} else {
				sc[j+4] = ls&0xF | (lm&0xF)<<4
				sc[j-4] |= (ls >> 4) << 6
				sc[j] |= (lm >> 4) << 6
			}
		}
		binary.LittleEndian.PutUint16(o[0:], f16(maxScale/63))
		binary.LittleEndian.PutUint16(o[2:], f16(maxMin/63))
		d, dmin := fromF16(binary.LittleEndian.Uint16(o[0:])), fromF16(binary.LittleEndian.Uint16(o[2:]))
		for j := 0; j < 8; j++ {
			s, m := scaleMinK4(j, sc)
			dj := d * float32(s)
			if dj == 0 {
				continue
			}
			dm := dmin * float32(m)
			for i := 0; i < 32; i++ {
				L[32*j+i] = uint8(max(0, min(15, nearestInt((x[32*j+i]+dm)/dj))))
			}
		}
		q := o[16:]
		for j := 0; j < QK_K; j += 64 {
			for l := 0; l < 32; l++ {
				q[j/2+l] = L[j+l] | L[j+l+32]<<4
			}
		}
	}
}

// scaleMinK4 unpacks the 6-bit scale and min of group j (0..7) of a Q4_K
// block's 12 scale bytes.
func scaleMinK4(j int, q []byte) (sc, m uint8) {
	if j < 4 {
		return q[j] & 63, q[j+4] & 63
	}
	return q[j+4]&0xF | (q[j-4]>>6)<<4, q[j+4]>>4 | (q[j]>>6)<<4
}

// DecodeQ4_K expands Q4_K blocks to float32.
func DecodeQ4_K(data []byte) ([]float32, error) {
	if len(data)%Q4_KBlockBytes != 0 {
		return nil, fmt.Errorf("Q4_K data of %d bytes is not whole blocks of %d", len(data), Q4_KBlockBytes)
	}
	out := make([]float32, len(data)/Q4_KBlockBytes*QK_K)
	for b := 0; b < len(data)/Q4_KBlockBytes; b++ {
		o := data[b*Q4_KBlockBytes:]
		d, dmin := fromF16(binary.LittleEndian.Uint16(o[0:])), fromF16(binary.LittleEndian.Uint16(o[2:]))
		sc, q, y := o[4:16], o[16:16+QK_K/2], out[b*QK_K:]
		for j := 0; j < QK_K/64; j++ {
			s1, m1 := scaleMinK4(2*j, sc)
			s2, m2 := scaleMinK4(2*j+1, sc)
			d1, dm1 := d*float32(s1), dmin*float32(m1)
			d2, dm2 := d*float32(s2), dmin*float32(m2)
			for l := 0; l < 32; l++ {
				y[64*j+l] = d1*float32(q[32*j+l]&0xF) - dm1
				y[64*j+32+l] = d2*float32(q[32*j+l]>>4) - dm2
			}
		}
	}
	return out, nil
}

// EncodeQ6_K quantises vals (a multiple of 256 of them) as ggml's Q6_K:
// per 256 values, sixteen groups of 16 with a symmetric 6-bit code
// x ≈ d·sc·(q − 32), sc an int8 and d f16.
func EncodeQ6_K(vals []float32) ([]byte, error) {
	if len(vals)%QK_K != 0 {
		return nil, fmt.Errorf("Q6_K needs a multiple of %d values, got %d", QK_K, len(vals))
	}
	out := make([]byte, len(vals)/QK_K*Q6_KBlockBytes)
	parallelBlocks(len(vals)/QK_K, func(b0, b1 int) {
		encodeQ6_K(out[b0*Q6_KBlockBytes:b1*Q6_KBlockBytes], vals[b0*QK_K:b1*QK_K])
	})
	return out, nil
}

func encodeQ6_K(out []byte, vals []float32) {
	var (
		L      [QK_K]uint8
		scales [QK_K / 16]float32
	)
	for b := 0; b < len(vals)/QK_K; b++ {
		x := vals[b*QK_K : (b+1)*QK_K]
		o := out[b*Q6_KBlockBytes : (b+1)*Q6_KBlockBytes]
		ql, qh, sc := o[0:128], o[128:192], o[192:208]
		var maxScale, maxAbs float32
		for g := 0; g < QK_K/16; g++ {
			scales[g] = makeQX(x[16*g:16*g+16], 32, L[16*g:16*g+16])
			if a := float32(math.Abs(float64(scales[g]))); a > maxAbs {
				maxAbs, maxScale = a, scales[g]
			}
		}
		if maxAbs < groupMaxEps {
			continue // all zero, d = 0
		}
		iscale := -128 / maxScale
		binary.LittleEndian.PutUint16(o[208:], f16(1/iscale))
		d := fromF16(binary.LittleEndian.Uint16(o[208:]))
		for g := 0; g < QK_K/16; g++ {
			sc[g] = byte(int8(min(127, nearestInt(iscale*scales[g]))))
		}
		for g := 0; g < QK_K/16; g++ {
			dg := d * float32(int8(sc[g]))
			if dg == 0 {
				continue
			}
			for i := 0; i < 16; i++ {
				L[16*g+i] = uint8(32 + max(-32, min(31, nearestInt(x[16*g+i]/dg))))
			}
		}
		for h := 0; h < 2; h++ { // two halves of 128
			Lh, l4, h2 := L[128*h:], ql[64*h:], qh[32*h:]
			for l := 0; l < 32; l++ {
				l4[l] = Lh[l]&0xF | (Lh[l+64]&0xF)<<4
				l4[l+32] = Lh[l+32]&0xF | (Lh[l+96]&0xF)<<4
				h2[l] = Lh[l]>>4 | (Lh[l+32]>>4)<<2 | (Lh[l+64]>>4)<<4 | (Lh[l+96]>>4)<<6
			}
		}
	}
}

// DecodeQ6_K expands Q6_K blocks to float32.
func DecodeQ6_K(data []byte) ([]float32, error) {
	if len(data)%Q6_KBlockBytes != 0 {
		return nil, fmt.Errorf("Q6_K data of %d bytes is not whole blocks of %d", len(data), Q6_KBlockBytes)
	}
	out := make([]float32, len(data)/Q6_KBlockBytes*QK_K)
	for b := 0; b < len(data)/Q6_KBlockBytes; b++ {
		o := data[b*Q6_KBlockBytes:]
		d := fromF16(binary.LittleEndian.Uint16(o[208:]))
		for h := 0; h < 2; h++ {
			ql, qh, sc, y := o[64*h:], o[128+32*h:], o[192+8*h:], out[b*QK_K+128*h:]
			for l := 0; l < 32; l++ {
				is := l / 16
				q1 := int(ql[l]&0xF|(qh[l]&3)<<4) - 32
				q2 := int(ql[l+32]&0xF|((qh[l]>>2)&3)<<4) - 32
				q3 := int(ql[l]>>4|((qh[l]>>4)&3)<<4) - 32
				q4 := int(ql[l+32]>>4|((qh[l]>>6)&3)<<4) - 32
				y[l] = d * float32(int8(sc[is])) * float32(q1)
				y[l+32] = d * float32(int8(sc[is+2])) * float32(q2)
				y[l+64] = d * float32(int8(sc[is+4])) * float32(q3)
				y[l+96] = d * float32(int8(sc[is+6])) * float32(q4)
			}
		}
	}
	return out, nil
}

// EncodeQ5_0 quantises vals (a multiple of 32 of them) as ggml's Q5_0: per
// 32 values an f16 scale d = max/−16 (max the value of largest magnitude) and
// 5-bit codes q with x ≈ d·(q − 16).
func EncodeQ5_0(vals []float32) ([]byte, error) {
	if len(vals)%Q5_0BlockSize != 0 {
		return nil, fmt.Errorf("Q5_0 needs a multiple of %d values, got %d", Q5_0BlockSize, len(vals))
	}
	out := make([]byte, len(vals)/Q5_0BlockSize*Q5_0BlockBytes)
	for b := 0; b < len(vals)/Q5_0BlockSize; b++ {
		x := vals[b*Q5_0BlockSize : (b+1)*Q5_0BlockSize]
		o := out[b*Q5_0BlockBytes : (b+1)*Q5_0BlockBytes]
		var amax, mx float32
		for _, v := range x {
			if a := float32(math.Abs(float64(v))); a > amax {
				amax, mx = a, v
			}
		}
		d := mx / -16
		var id float32
		if d != 0 {
			id = 1 / d
		}
		binary.LittleEndian.PutUint16(o, f16(d))
		var qh uint32
		for j := 0; j < 16; j++ {
			// C's (int8_t) conversion truncates toward zero; x·id+16.5 ≥ 0.5.
			x0 := uint8(min(31, int(int8(x[j]*id+16.5))))
			x1 := uint8(min(31, int(int8(x[j+16]*id+16.5))))
			o[6+j] = x0&0xF | (x1&0xF)<<4
			qh |= uint32(x0>>4&1) << j
			qh |= uint32(x1>>4&1) << (j + 16)
		}
		binary.LittleEndian.PutUint32(o[2:], qh)
	}
	return out, nil
}

// DecodeQ5_0 expands Q5_0 blocks to float32.
func DecodeQ5_0(data []byte) ([]float32, error) {
	if len(data)%Q5_0BlockBytes != 0 {
		return nil, fmt.Errorf("Q5_0 data of %d bytes is not whole blocks of %d", len(data), Q5_0BlockBytes)
	}
	out := make([]float32, len(data)/Q5_0BlockBytes*Q5_0BlockSize)
	for b := 0; b < len(data)/Q5_0BlockBytes; b++ {
		o := data[b*Q5_0BlockBytes:]
		d := fromF16(binary.LittleEndian.Uint16(o))
		qh := binary.LittleEndian.Uint32(o[2:])
		y := out[b*Q5_0BlockSize:]
		for j := 0; j < 16; j++ {
			x0 := int(o[6+j]&0xF) | int(qh>>j&1)<<4
			x1 := int(o[6+j]>>4) | int(qh>>(j+16)&1)<<4
			y[j] = d * float32(x0-16)
			y[j+16] = d * float32(x1-16)
		}
	}
	return out, nil
}

// parallelBlocks runs fn over [0, n) blocks split into one contiguous range
// per CPU (one range when n is small).
func parallelBlocks(n int, fn func(b0, b1 int)) {
	workers := min(runtime.GOMAXPROCS(0), n/64)
	if workers <= 1 {
		fn(0, n)
		return
	}
	var wg sync.WaitGroup
	for w := range workers {
		b0, b1 := n*w/workers, n*(w+1)/workers
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(b0, b1)
		}()
	}
	wg.Wait()
}

// DecodeTensor expands data of ggml type t to float32 (F32, F16, BF16,
// Q8_0, Q5_0, Q4_K, Q6_K).
func DecodeTensor(data []byte, t TensorType) ([]float32, error) {
	switch t {
	case F32, F16, BF16:
		n := map[TensorType]int{F32: 4, F16: 2, BF16: 2}[t]
		if len(data)%n != 0 {
			return nil, fmt.Errorf("%s data of %d bytes is not whole values", t, len(data))
		}
		out := make([]float32, len(data)/n)
		for i := range out {
			switch t {
			case F32:
				out[i] = math.Float32frombits(binary.LittleEndian.Uint32(data[4*i:]))
			case F16:
				out[i] = fromF16(binary.LittleEndian.Uint16(data[2*i:]))
			default:
				out[i] = safetensors.BF16ToF32(binary.LittleEndian.Uint16(data[2*i:]))
			}
		}
		return out, nil
	case Q8_0:
		return DecodeQ8_0(data)
	case Q5_0:
		return DecodeQ5_0(data)
	case Q4_K:
		return DecodeQ4_K(data)
	case Q6_K:
		return DecodeQ6_K(data)
	}
	return nil, fmt.Errorf("cannot decode tensor type %s", t)
}
