package hardware

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/registry"
)

// sysCPU reads the CPU's name from the registry; Windows' physical core count
// needs GetLogicalProcessorInformationEx, so cores stays 0 (unknown).
func sysCPU() (string, int, error) {
	k, err := registry.OpenKey(registry.LOCAL_MACHINE, `HARDWARE\DESCRIPTION\System\CentralProcessor\0`, registry.QUERY_VALUE)
	if err != nil {
		return "", 0, fmt.Errorf("reading the CPU's registry key: %w", err)
	}
	defer k.Close()
	name, _, err := k.GetStringValue("ProcessorNameString")
	if err != nil {
		return "", 0, fmt.Errorf("reading ProcessorNameString: %w", err)
	}
	return name, 0, nil
}

// memoryStatusEx is MEMORYSTATUSEX (sysinfoapi.h).
type memoryStatusEx struct {
	length               uint32
	memoryLoad           uint32
	totalPhys            uint64
	availPhys            uint64
	totalPageFile        uint64
	availPageFile        uint64
	totalVirtual         uint64
	availVirtual         uint64
	availExtendedVirtual uint64
}

var procGlobalMemoryStatusEx = windows.NewLazySystemDLL("kernel32.dll").NewProc("GlobalMemoryStatusEx")

// sysMemory asks GlobalMemoryStatusEx for the physical RAM and the part of it
// available now.
func sysMemory() (int64, int64, error) {
	if err := procGlobalMemoryStatusEx.Find(); err != nil {
		return 0, 0, fmt.Errorf("GlobalMemoryStatusEx: %w", err)
	}
	var m memoryStatusEx
	m.length = uint32(unsafe.Sizeof(m))
	if r, _, err := procGlobalMemoryStatusEx.Call(uintptr(unsafe.Pointer(&m))); r == 0 {
		return 0, 0, fmt.Errorf("GlobalMemoryStatusEx: %w", err)
	}
	return int64(m.totalPhys), int64(m.availPhys), nil
}
