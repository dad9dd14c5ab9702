//go:build unix

package dataset

import (
	"os"
	"syscall"
)

// releaseFIFO ends an open of the FIFO path for reading that is waiting for a writer:
// opening it for writing without blocking succeeds while that reader waits, and closing
// it again leaves the reader at end of file.
func releaseFIFO(path string) {
	if w, err := os.OpenFile(path, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
		w.Close()
	}
}
