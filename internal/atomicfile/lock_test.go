package atomicfile

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bidora/bidora/internal/filelock"
)

// lockers are the lock implementations: this system's LockDir and the
// lock-file one that systems without file locks use, tested here everywhere.
var lockers = []struct {
	name string
	lock func(dir string) (func() error, error)
}{{"LockDir", LockDir}, {"excl", lockDirExcl}}

func TestLockDirExcludesSecondLocker(t *testing.T) {
	for _, l := range lockers {
		t.Run(l.name, func(t *testing.T) { testExcludesSecondLocker(t, l.lock) })
	}
}

func testExcludesSecondLocker(t *testing.T, LockDir func(string) (func() error, error)) {
	dir := filepath.Join(t.TempDir(), "out")
	unlock, err := LockDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, err = LockDir(dir)
	var busy *BusyError
	if !errors.As(err, &busy) || !errors.Is(err, ErrBusy) || busy.PID != os.Getpid() {
		t.Fatalf("second LockDir: err = %v", err)
	}
	if want := "is in use by another bidora run (pid "; !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), dir) {
		t.Fatalf("message %q", err)
	}
	if err := unlock(); err != nil {
		t.Fatal(err)
	}
	if err := unlock(); err != nil {
		t.Fatalf("second unlock: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, LockFileName)); !os.IsNotExist(err) {
		t.Fatalf("lock file left after unlock: %v", err)
	}
	unlock2, err := LockDir(dir)
	if err != nil {
		t.Fatalf("relock after unlock: %v", err)
	}
	unlock2()
}

// A lock held by a process that dies is released with it.
func TestLockDirReleasedWhenHolderDies(t *testing.T) {
	if os.Getenv("ATOMICFILE_LOCK_HELPER") != "" {
		lock := LockDir
		if os.Getenv("ATOMICFILE_LOCKER") == "excl" {
			lock = lockDirExcl
		}
		if _, err := lock(os.Getenv("ATOMICFILE_LOCK_HELPER")); err != nil {
			os.Stdout.WriteString("error " + err.Error() + "\n")
			os.Exit(1)
		}
		os.Stdout.WriteString("locked\n")
		time.Sleep(time.Hour) // hold until killed (a bare select{} would die as a deadlock)
	}
	for _, l := range lockers {
		t.Run(l.name, func(t *testing.T) { testReleasedWhenHolderDies(t, l.name, l.lock) })
	}
}

func testReleasedWhenHolderDies(t *testing.T, name string, LockDir func(string) (func() error, error)) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestLockDirReleasedWhenHolderDies$")
	cmd.Env = append(os.Environ(), "ATOMICFILE_LOCK_HELPER="+dir, "ATOMICFILE_LOCKER="+name)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	line, _ := bufio.NewReader(out).ReadString('\n')
	if line != "locked\n" {
		t.Fatalf("helper said %q", line)
	}
	_, err = LockDir(dir)
	var busy *BusyError
	if !errors.As(err, &busy) || busy.PID != cmd.Process.Pid {
		t.Fatalf("while the helper holds it: err = %v (helper pid %d)", err, cmd.Process.Pid)
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	unlock, err := LockDir(dir)
	if err != nil {
		t.Fatalf("after the holder died: %v", err)
	}
	unlock()
}

// A lock file naming a process that no longer runs is taken over by the
// lock-file implementation; one naming a live process is not.
func TestLockDirExclTakesOverStaleLock(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, LockFileName)
	saved := filelock.ProcessAlive
	t.Cleanup(func() { filelock.ProcessAlive = saved })
	filelock.ProcessAlive = func(pid int) bool { return pid != 424242 }
	if err := os.WriteFile(path, []byte("424242\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	unlock, err := lockDirExcl(dir)
	if err != nil {
		t.Fatalf("over a dead holder's lock: %v", err)
	}
	if got := filelock.ReadPID(path); got != os.Getpid() {
		t.Fatalf("lock file names pid %d, want %d", got, os.Getpid())
	}
	if err := unlock(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("424243\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = lockDirExcl(dir)
	var busy *BusyError
	if !errors.As(err, &busy) || busy.PID != 424243 {
		t.Fatalf("over a live holder's lock: err = %v", err)
	}
}
