package hardware

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// sysCPU asks sysctl for the CPU's brand string and physical cores.
func sysCPU() (string, int, error) {
	model, err := unix.Sysctl("machdep.cpu.brand_string")
	if err != nil {
		return "", 0, fmt.Errorf("sysctl machdep.cpu.brand_string: %w", err)
	}
	cores, err := unix.SysctlUint32("hw.physicalcpu")
	if err != nil {
		return model, 0, nil
	}
	return model, int(cores), nil
}

// sysMemory asks sysctl for the RAM (hw.memsize) and the share of it the
// kernel counts as free for new work (kern.memorystatus_level, the percentage
// memory_pressure(1) reports); without the latter, available is 0 (unknown).
func sysMemory() (int64, int64, error) {
	total, err := unix.SysctlUint64("hw.memsize")
	if err != nil {
		return 0, 0, fmt.Errorf("sysctl hw.memsize: %w", err)
	}
	level, err := unix.SysctlUint32("kern.memorystatus_level")
	if err != nil || level > 100 {
		return int64(total), 0, nil
	}
	return int64(total), int64(total / 100 * uint64(level)), nil
}
