// Package hardware reports what the machine offers a training run: CPU model,
// cores and SIMD features, RAM (and the container's cgroup memory limit), free
// disk space and NVIDIA GPUs. Every source is injectable so tests run on fake
// /proc and /sys trees. Where there is no /proc (macOS, Windows) the CPU and
// memory come from the system's own calls (SysCPU, SysMemory).
package hardware

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Info is a hardware report.
type Info struct {
	OS     string `json:"os"`
	Arch   string `json:"arch"`
	CPU    CPU    `json:"cpu"`
	Memory Memory `json:"memory"`
	Disk   *Disk  `json:"disk,omitempty"`
	GPUs   []GPU  `json:"gpus"`
	// Warnings lists sources that could not be read; the report is still usable.
	Warnings []string `json:"warnings,omitempty"`
}

// CPU describes the processor.
type CPU struct {
	Model string `json:"model"`
	// Cores is the number of physical cores (0 when unknown).
	Cores int `json:"cores"`
	// Threads is the number of logical CPUs the OS lists.
	Threads int `json:"threads"`
	// Usable is the number of CPUs this process may run on (affinity and cgroup quota).
	Usable int `json:"usable"`
	// Features lists the SIMD features the kernels care about, e.g. "avx2", "avx512bf16", "neon".
	Features []string `json:"features"`
}

// Memory is in bytes.
type Memory struct {
	Total     int64 `json:"total_bytes"`
	Available int64 `json:"available_bytes"`
	// CgroupLimit is the container's memory limit (0 when unlimited).
	CgroupLimit int64 `json:"cgroup_limit_bytes,omitempty"`
	// CgroupUsage is the container's current usage (0 when unknown).
	CgroupUsage int64 `json:"cgroup_usage_bytes,omitempty"`
}

// Usable is the memory a new run can count on: the available RAM, capped by
// what the cgroup limit leaves.
func (m Memory) Usable() int64 {
	u := m.Available
	if m.CgroupLimit > 0 {
		left := max(m.CgroupLimit-m.CgroupUsage, 0)
		if u == 0 || left < u {
			u = left
		}
	}
	return u
}

// Disk is the free space where outputs go.
type Disk struct {
	Path  string `json:"path"`
	Free  int64  `json:"free_bytes"`
	Total int64  `json:"total_bytes"`
}

// GPU is one NVIDIA GPU as nvidia-smi reports it.
type GPU struct {
	Name        string `json:"name"`
	MemoryBytes int64  `json:"memory_bytes"`
	Driver      string `json:"driver"`
}

// Sources says where Detect reads from. The zero value reads the real machine.
type Sources struct {
	// Root is prefixed to /proc and /sys paths ("" = the real root).
	Root string
	// Run runs a command and returns its standard output (default os/exec).
	Run func(ctx context.Context, name string, args ...string) ([]byte, error)
	// Features returns the SIMD features (default: golang.org/x/sys/cpu).
	Features func() []string
	// Statfs returns free and total bytes of the file system holding path.
	Statfs func(path string) (free, total int64, err error)
	// NumCPU is the number of usable CPUs (default runtime.NumCPU).
	NumCPU func() int
	// SysCPU returns the CPU model and physical cores (0 when unknown) where
	// there is no /proc/cpuinfo (default: sysctl on macOS, the registry on
	// Windows; an error elsewhere).
	SysCPU func() (model string, cores int, err error)
	// SysMemory returns total and available RAM in bytes where there is no
	// /proc/meminfo (default: sysctl on macOS, GlobalMemoryStatusEx on
	// Windows; an error elsewhere).
	SysMemory func() (total, available int64, err error)
	// OS and Arch default to runtime.GOOS and runtime.GOARCH.
	OS, Arch string
}

// Detect reports the real machine; diskDir is where outputs will go ("" skips the disk).
func Detect(ctx context.Context, diskDir string) Info {
	return Sources{}.Detect(ctx, diskDir)
}

// Detect reports the machine described by s.
func (s Sources) Detect(ctx context.Context, diskDir string) Info {
	s.fill()
	info := Info{OS: s.OS, Arch: s.Arch, GPUs: []GPU{}}
	warn := func(err error) { info.Warnings = append(info.Warnings, err.Error()) }

	cpu, err := s.cpu()
	if err != nil {
		warn(err)
	}
	info.CPU = cpu
	if mem, err := s.memory(); err != nil {
		warn(err)
		info.Memory = mem
	} else {
		info.Memory = mem
	}
	if diskDir != "" {
		if d, err := s.disk(diskDir); err != nil {
			warn(err)
		} else {
			info.Disk = d
		}
	}
	gpus, err := s.gpus(ctx)
	if err != nil {
		warn(err)
	}
	if gpus != nil {
		info.GPUs = gpus
	}
	return info
}

func (s *Sources) fill() {
	if s.Run == nil {
		s.Run = runCommand
	}
	if s.Features == nil {
		s.Features = cpuFeatures
	}
	if s.Statfs == nil {
		s.Statfs = statfs
	}
	if s.NumCPU == nil {
		s.NumCPU = runtime.NumCPU
	}
	if s.SysCPU == nil {
		s.SysCPU = sysCPU
	}
	if s.SysMemory == nil {
		s.SysMemory = sysMemory
	}
	if s.OS == "" {
		s.OS = runtime.GOOS
	}
	if s.Arch == "" {
		s.Arch = runtime.GOARCH
	}
}

func (s *Sources) path(p string) string { return filepath.Join(s.Root, filepath.FromSlash(p)) }

func runCommand(ctx context.Context, name string, args ...string) ([]byte, error) {
	if _, err := exec.LookPath(name); err != nil {
		return nil, errNotFound
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return exec.CommandContext(ctx, name, args...).Output()
}

// errNotFound means the command is not installed: no GPU, not a failure.
var errNotFound = errors.New("command not found")

// cpu reads /proc/cpuinfo: the model name, logical CPUs and distinct
// (physical id, core id) pairs; cgroup cpu.max caps the usable count. Without
// /proc/cpuinfo it asks SysCPU.
func (s *Sources) cpu() (CPU, error) {
	c := CPU{Features: s.Features(), Usable: s.NumCPU()}
	if c.Features == nil {
		c.Features = []string{}
	}
	f, err := os.Open(s.path("/proc/cpuinfo"))
	if err != nil {
		c.Threads = c.Usable
		if errors.Is(err, os.ErrNotExist) {
			if model, cores, serr := s.SysCPU(); serr == nil {
				c.Model, c.Cores = model, cores
				return c, nil
			} else if !errors.Is(serr, errUnsupported) {
				err = serr
			}
		}
		return c, fmt.Errorf("reading CPU info: %w", err)
	}
	defer f.Close()
	cores := map[string]bool{}
	var phys, core string
	flush := func() {
		if core != "" {
			cores[phys+"/"+core] = true
		}
		phys, core = "", ""
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			flush()
			continue
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch k {
		case "processor":
			c.Threads++
		case "model name", "Model", "Hardware":
			if c.Model == "" {
				c.Model = v
			}
		case "physical id":
			phys = v
		case "core id":
			core = v
		}
	}
	flush()
	if err := sc.Err(); err != nil {
		return c, fmt.Errorf("reading %s: %w", s.path("/proc/cpuinfo"), err)
	}
	c.Cores = len(cores)
	if c.Cores == 0 {
		c.Cores = c.Threads
	}
	if c.Threads == 0 {
		c.Threads = c.Usable
	}
	if q := s.cpuQuota(); q > 0 && q < c.Usable {
		c.Usable = q
	}
	return c, nil
}

// cpuQuota reads cgroup v2 cpu.max ("max 100000" or "200000 100000") as whole CPUs, rounding up.
func (s *Sources) cpuQuota() int {
	data, err := os.ReadFile(s.cgroupFile("cpu.max"))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(data))
	if len(f) != 2 || f[0] == "max" {
		return 0
	}
	quota, err1 := strconv.ParseFloat(f[0], 64)
	period, err2 := strconv.ParseFloat(f[1], 64)
	if err1 != nil || err2 != nil || period <= 0 {
		return 0
	}
	return int(quota/period + 0.999)
}

// cgroupFile locates a cgroup v2 file for this process: /proc/self/cgroup's
// "0::/path" under /sys/fs/cgroup, else the cgroup root (as inside containers).
func (s *Sources) cgroupFile(name string) string {
	if data, err := os.ReadFile(s.path("/proc/self/cgroup")); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if rest, ok := strings.CutPrefix(line, "0::"); ok && rest != "/" && rest != "" {
				p := s.path("/sys/fs/cgroup" + rest + "/" + name)
				if _, err := os.Stat(p); err == nil {
					return p
				}
			}
		}
	}
	return s.path("/sys/fs/cgroup/" + name)
}

// memory reads MemTotal and MemAvailable from /proc/meminfo and the cgroup
// limit: v2 memory.max / memory.current, else v1 memory.limit_in_bytes /
// usage_in_bytes. Without /proc/meminfo it asks SysMemory.
func (s *Sources) memory() (Memory, error) {
	var m Memory
	data, err := os.ReadFile(s.path("/proc/meminfo"))
	if errors.Is(err, os.ErrNotExist) {
		total, avail, serr := s.SysMemory()
		if serr == nil {
			if total <= 0 {
				return m, errors.New("reading memory info: the system reports no RAM")
			}
			m.Total, m.Available = total, min(max(avail, 0), total)
			return m, nil
		}
		if !errors.Is(serr, errUnsupported) {
			err = serr
		}
	}
	if err != nil {
		return m, fmt.Errorf("reading memory info: %w", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil || n < 0 {
			return m, fmt.Errorf("%s: %s: %q is not a byte count", s.path("/proc/meminfo"), k, f[0])
		}
		if len(f) > 1 && strings.EqualFold(f[1], "kB") {
			if n > math.MaxInt64/1024 {
				return m, fmt.Errorf("%s: %s: %s kB is out of range", s.path("/proc/meminfo"), k, f[0])
			}
			n *= 1024
		}
		switch k {
		case "MemTotal":
			m.Total = n
		case "MemAvailable":
			m.Available = n
		}
	}
	if m.Total == 0 {
		return m, fmt.Errorf("%s: no MemTotal line", s.path("/proc/meminfo"))
	}
	if m.Available == 0 {
		m.Available = m.Total
	}
	if lim, ok := readLimit(s.cgroupFile("memory.max")); ok {
		m.CgroupLimit = lim
		m.CgroupUsage, _ = readLimit(s.cgroupFile("memory.current"))
	} else if lim, ok := readLimit(s.path("/sys/fs/cgroup/memory/memory.limit_in_bytes")); ok {
		m.CgroupLimit = lim
		m.CgroupUsage, _ = readLimit(s.path("/sys/fs/cgroup/memory/memory.usage_in_bytes"))
	}
	// A "limit" at or above the machine's RAM is no limit (v1 writes 2^63 rounded down to a page).
	if m.CgroupLimit >= m.Total {
		m.CgroupLimit, m.CgroupUsage = 0, 0
	}
	return m, nil
}

// readLimit reads a cgroup byte count; "max", a missing file or garbage is no limit.
func readLimit(path string) (int64, bool) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
	if err != nil || n <= 0 {
		return 0, false
	}
	return n, true
}

// disk reports the file system that will hold dir, walking up to the nearest
// existing parent when dir does not exist yet.
func (s *Sources) disk(dir string) (*Disk, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("disk space at %s: %w", dir, err)
	}
	p := abs
	for {
		if _, err := os.Stat(p); err == nil {
			break
		}
		parent := filepath.Dir(p)
		if parent == p {
			break
		}
		p = parent
	}
	free, total, err := s.Statfs(p)
	if err != nil {
		return nil, fmt.Errorf("disk space at %s: %w", p, err)
	}
	return &Disk{Path: abs, Free: free, Total: total}, nil
}

// gpus asks nvidia-smi for name, memory (MiB) and driver of each GPU.
func (s *Sources) gpus(ctx context.Context) ([]GPU, error) {
	out, err := s.Run(ctx, "nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader,nounits")
	if errors.Is(err, errNotFound) || errors.Is(err, exec.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("nvidia-smi: %w", err)
	}
	return ParseNvidiaSMI(out)
}

// ParseNvidiaSMI parses `nvidia-smi --query-gpu=name,memory.total,driver_version
// --format=csv,noheader[,nounits]` output; memory may carry a "MiB" unit.
func ParseNvidiaSMI(out []byte) ([]GPU, error) {
	r := csv.NewReader(bytes.NewReader(out))
	r.TrimLeadingSpace = true
	r.FieldsPerRecord = 3
	var gpus []GPU
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return gpus, fmt.Errorf("nvidia-smi output: %w", err)
		}
		mem := strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rec[1]), "MiB"))
		mib, err := strconv.ParseInt(mem, 10, 64)
		if err != nil || mib < 0 || mib > math.MaxInt64>>20 {
			return gpus, fmt.Errorf("nvidia-smi output: memory %q is not a number of MiB", rec[1])
		}
		gpus = append(gpus, GPU{Name: strings.TrimSpace(rec[0]), MemoryBytes: mib << 20, Driver: strings.TrimSpace(rec[2])})
	}
	return gpus, nil
}
