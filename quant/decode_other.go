//go:build !amd64 && !arm64

package quant

func archDecoders() []*decoderSet { return nil }
