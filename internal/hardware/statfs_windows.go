package hardware

import (
	"fmt"

	"golang.org/x/sys/windows"
)

// statfs asks GetDiskFreeSpaceEx for the space this user may still write
// (quotas included) and the volume's size.
func statfs(path string) (free, total int64, err error) {
	p, err := windows.UTF16PtrFromString(path)
	if err != nil {
		return 0, 0, fmt.Errorf("disk space at %s: %w", path, err)
	}
	var avail, size, totalFree uint64
	if err := windows.GetDiskFreeSpaceEx(p, &avail, &size, &totalFree); err != nil {
		return 0, 0, fmt.Errorf("GetDiskFreeSpaceEx: %w", err)
	}
	return int64(avail), int64(size), nil
}
