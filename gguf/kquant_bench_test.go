package gguf

import (
	"math/rand/v2"
	"testing"
)

func benchEncode(b *testing.B, enc func([]float32) ([]byte, error)) {
	rng := rand.New(rand.NewPCG(1, 2))
	x := make([]float32, 1<<20)
	for i := range x {
		x[i] = float32(rng.NormFloat64() * 0.02)
	}
	b.SetBytes(4 << 20)
	for b.Loop() {
		if _, err := enc(x); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeQ4_K(b *testing.B) { benchEncode(b, EncodeQ4_K) }
func BenchmarkEncodeQ6_K(b *testing.B) { benchEncode(b, EncodeQ6_K) }
func BenchmarkEncodeQ5_0(b *testing.B) { benchEncode(b, EncodeQ5_0) }
func BenchmarkEncodeQ8_0(b *testing.B) { benchEncode(b, EncodeQ8_0) }
