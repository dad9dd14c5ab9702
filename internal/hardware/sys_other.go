//go:build !darwin && !windows

package hardware

// sysCPU and sysMemory have nothing to ask here: Linux has /proc.
func sysCPU() (string, int, error)     { return "", 0, errUnsupported }
func sysMemory() (int64, int64, error) { return 0, 0, errUnsupported }
