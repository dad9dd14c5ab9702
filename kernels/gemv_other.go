//go:build !amd64 && !arm64

package kernels

// archGemv: no assembly GEMV kernels on this architecture; the pure-Go twin runs.
func archGemv(string) (*gemvOps[BF16], *gemvOps[float32]) { return nil, nil }
