//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly || windows)

package safetensors

import (
	"io"
	"os"
)

// mapFile reads the whole file into memory where mmap is not available.
func mapFile(f *os.File, size int) ([]byte, func() error, error) {
	b := make([]byte, size)
	if n, err := f.ReadAt(b, 0); n < size {
		if err == nil {
			err = io.ErrUnexpectedEOF
		}
		return nil, nil, err
	}
	return b, func() error { return nil }, nil
}
