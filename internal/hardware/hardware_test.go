package hardware

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// fakeRoot writes files under a temporary root.
func fakeRoot(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, content := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

const cpuinfo2x2 = `processor	: 0
model name	: AMD EPYC 9R45
physical id	: 0
core id		: 0

processor	: 1
model name	: AMD EPYC 9R45
physical id	: 0
core id		: 0

processor	: 2
model name	: AMD EPYC 9R45
physical id	: 0
core id		: 1

processor	: 3
model name	: AMD EPYC 9R45
physical id	: 0
core id		: 1
`

const meminfo = "MemTotal:       24576000 kB\nMemFree:         1000000 kB\nMemAvailable:   20480000 kB\n"

func sources(root string, gpuOut string, gpuErr error) Sources {
	return Sources{
		Root:     root,
		Features: func() []string { return []string{"avx2", "fma"} },
		NumCPU:   func() int { return 4 },
		Statfs:   func(string) (int64, int64, error) { return 10 << 30, 100 << 30, nil },
		Run: func(_ context.Context, name string, _ ...string) ([]byte, error) {
			return []byte(gpuOut), gpuErr
		},
		SysCPU:    func() (string, int, error) { return "", 0, errUnsupported },
		SysMemory: func() (int64, int64, error) { return 0, 0, errUnsupported },
		OS:        "linux", Arch: "amd64",
	}
}

// Without /proc (macOS, Windows) CPU and memory come from the system's calls;
// their errors are reported, and the report stays usable.
func TestDetectWithoutProc(t *testing.T) {
	s := sources(fakeRoot(t, map[string]string{}), "", errNotFound)
	s.OS = "windows"
	s.SysCPU = func() (string, int, error) { return "Apple M3 Pro", 6, nil }
	s.SysMemory = func() (int64, int64, error) { return 36 << 30, 20 << 30, nil }
	info := s.Detect(context.Background(), "")
	if len(info.Warnings) != 0 {
		t.Errorf("warnings %q", info.Warnings)
	}
	if info.CPU.Model != "Apple M3 Pro" || info.CPU.Cores != 6 || info.CPU.Threads != 4 || info.CPU.Usable != 4 {
		t.Errorf("cpu %+v", info.CPU)
	}
	if want := (Memory{Total: 36 << 30, Available: 20 << 30}); info.Memory != want {
		t.Errorf("memory %+v, want %+v", info.Memory, want)
	}

	s.SysCPU = func() (string, int, error) { return "", 0, errors.New("sysctl: no such key") }
	s.SysMemory = func() (int64, int64, error) { return 0, 0, errors.New("GlobalMemoryStatusEx: denied") }
	info = s.Detect(context.Background(), "")
	if len(info.Warnings) != 2 || !strings.Contains(info.Warnings[0], "sysctl: no such key") || !strings.Contains(info.Warnings[1], "GlobalMemoryStatusEx: denied") {
		t.Errorf("warnings %q, want the two system errors", info.Warnings)
	}
	if info.CPU.Threads != 4 || info.Memory.Total != 0 {
		t.Errorf("after errors: cpu %+v memory %+v", info.CPU, info.Memory)
	}
}

func TestDetect(t *testing.T) {
	cases := []struct {
		name      string
		files     map[string]string
		gpuOut    string
		gpuErr    error
		wantMem   Memory
		usable    int64
		cpuUsable int
		gpus      []GPU
		warnings  int
	}{
		{name: "bare metal", files: map[string]string{"proc/cpuinfo": cpuinfo2x2, "proc/meminfo": meminfo},
			gpuErr: errNotFound, wantMem: Memory{Total: 24576000 << 10, Available: 20480000 << 10},
			usable: 20480000 << 10, cpuUsable: 4},
		{name: "cgroup v2 container", files: map[string]string{"proc/cpuinfo": cpuinfo2x2, "proc/meminfo": meminfo,
			"proc/self/cgroup": "0::/box\n", "sys/fs/cgroup/box/memory.max": "8589934592\n",
			"sys/fs/cgroup/box/memory.current": "1073741824\n", "sys/fs/cgroup/box/cpu.max": "150000 100000\n"},
			gpuErr:  errNotFound,
			wantMem: Memory{Total: 24576000 << 10, Available: 20480000 << 10, CgroupLimit: 8 << 30, CgroupUsage: 1 << 30},
			usable:  7 << 30, cpuUsable: 2},
		{name: "cgroup v2 unlimited", files: map[string]string{"proc/cpuinfo": cpuinfo2x2, "proc/meminfo": meminfo,
			"sys/fs/cgroup/memory.max": "max\n", "sys/fs/cgroup/cpu.max": "max 100000\n"},
			gpuErr: errNotFound, wantMem: Memory{Total: 24576000 << 10, Available: 20480000 << 10},
			usable: 20480000 << 10, cpuUsable: 4},
		{name: "cgroup v1", files: map[string]string{"proc/cpuinfo": cpuinfo2x2, "proc/meminfo": meminfo,
			"sys/fs/cgroup/memory/memory.limit_in_bytes": "4294967296\n", "sys/fs/cgroup/memory/memory.usage_in_bytes": "0\n"},
			gpuErr: errNotFound, wantMem: Memory{Total: 24576000 << 10, Available: 20480000 << 10, CgroupLimit: 4 << 30},
			usable: 4 << 30, cpuUsable: 4},
		{name: "cgroup v1 no limit", files: map[string]string{"proc/cpuinfo": cpuinfo2x2, "proc/meminfo": meminfo,
			"sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712\n"},
			gpuErr: errNotFound, wantMem: Memory{Total: 24576000 << 10, Available: 20480000 << 10},
			usable: 20480000 << 10, cpuUsable: 4},
		{name: "two GPUs", files: map[string]string{"proc/cpuinfo": cpuinfo2x2, "proc/meminfo": meminfo},
			gpuOut:  "NVIDIA H100 80GB HBM3, 81559, 550.54.15\nNVIDIA GeForce RTX 4090, 24564 MiB, 550.54.15\n",
			wantMem: Memory{Total: 24576000 << 10, Available: 20480000 << 10}, usable: 20480000 << 10, cpuUsable: 4,
			gpus: []GPU{{"NVIDIA H100 80GB HBM3", 81559 << 20, "550.54.15"}, {"NVIDIA GeForce RTX 4090", 24564 << 20, "550.54.15"}}},
		{name: "nvidia-smi fails", files: map[string]string{"proc/cpuinfo": cpuinfo2x2, "proc/meminfo": meminfo},
			gpuErr:  errors.New("exit status 9"),
			wantMem: Memory{Total: 24576000 << 10, Available: 20480000 << 10}, usable: 20480000 << 10, cpuUsable: 4, warnings: 1},
		{name: "no /proc", files: map[string]string{}, gpuErr: errNotFound, cpuUsable: 4, warnings: 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			info := sources(fakeRoot(t, c.files), c.gpuOut, c.gpuErr).Detect(context.Background(), "/nonexistent/out")
			if info.Memory != c.wantMem || info.Memory.Usable() != c.usable {
				t.Errorf("memory %+v usable %d, want %+v usable %d", info.Memory, info.Memory.Usable(), c.wantMem, c.usable)
			}
			if info.CPU.Usable != c.cpuUsable {
				t.Errorf("usable CPUs %d, want %d", info.CPU.Usable, c.cpuUsable)
			}
			if c.gpus == nil {
				c.gpus = []GPU{}
			}
			if !reflect.DeepEqual(info.GPUs, c.gpus) {
				t.Errorf("GPUs %+v, want %+v", info.GPUs, c.gpus)
			}
			if len(info.Warnings) != c.warnings {
				t.Errorf("warnings %q, want %d", info.Warnings, c.warnings)
			}
			if info.Disk == nil || info.Disk.Free != 10<<30 || info.Disk.Path != "/nonexistent/out" {
				t.Errorf("disk %+v", info.Disk)
			}
		})
	}
}

func TestCPUInfo(t *testing.T) {
	info := sources(fakeRoot(t, map[string]string{"proc/cpuinfo": cpuinfo2x2, "proc/meminfo": meminfo}), "", errNotFound).
		Detect(context.Background(), "")
	want := CPU{Model: "AMD EPYC 9R45", Cores: 2, Threads: 4, Usable: 4, Features: []string{"avx2", "fma"}}
	if !reflect.DeepEqual(info.CPU, want) {
		t.Errorf("CPU %+v, want %+v", info.CPU, want)
	}
	if info.Disk != nil {
		t.Error("disk reported without a directory")
	}
}

func TestParseNvidiaSMIErrors(t *testing.T) {
	for _, in := range []string{"A100, lots, 1.0\n", "A100, 100\n", "A100, -5, 1.0\n", "A100, 9223372036854775807, 1.0\n", "A100, 8796093022208 MiB, 1.0\n"} {
		if _, err := ParseNvidiaSMI([]byte(in)); err == nil {
			t.Errorf("ParseNvidiaSMI(%q) succeeded", in)
		}
	}
}

// TestDetectReal runs on this machine: it must not fail and must find some RAM.
func TestDetectReal(t *testing.T) {
	info := Detect(context.Background(), t.TempDir())
	if info.CPU.Usable < 1 || info.CPU.Threads < 1 {
		t.Errorf("CPU %+v", info.CPU)
	}
	if _, err := os.Stat("/proc/meminfo"); err == nil && info.Memory.Total == 0 {
		t.Errorf("no memory found: %+v", info)
	}
	if info.Disk == nil || info.Disk.Total == 0 {
		t.Errorf("disk %+v (warnings %q)", info.Disk, info.Warnings)
	}
}

// TestMeminfoOutOfRange: values that would overflow when turned into bytes, or
// negative ones, are reported instead of becoming nonsense sizes.
func TestMeminfoOutOfRange(t *testing.T) {
	cases := []struct {
		meminfo string
		ok      bool
	}{
		{meminfo, true},
		{"MemTotal: 9223372036854775807 kB\nMemAvailable: 1 kB\n", false},
		{"MemTotal: 9007199254740992 kB\n", false},
		{"MemTotal: -24576000 kB\n", false},
		{"MemTotal: 9007199254740991 kB\n", true},
	}
	for _, c := range cases {
		s := sources(fakeRoot(t, map[string]string{"proc/meminfo": c.meminfo}), "", nil)
		m, err := s.memory()
		if (err == nil) != c.ok {
			t.Errorf("%q: %+v, %v", c.meminfo, m, err)
		}
		if err == nil && (m.Total <= 0 || m.Available <= 0) {
			t.Errorf("%q: sizes %+v", c.meminfo, m)
		}
	}
}
