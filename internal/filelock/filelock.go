// Package filelock is the one exclusive file lock that bidora's output directories
// (internal/atomicfile.LockDir) and its hub cache (hub's per-file download locks)
// share: a lock on an open file that the kernel drops when its process dies, however
// it dies (flock on Unix, a LockFileEx byte-range lock on Windows), so a crashed run
// never leaves anything locked.
//
// On a system without such locks, and in tests that force it (Options.Excl), the lock
// is the lock file itself, created with O_EXCL and holding its holder's pid: a file
// whose pid no longer runs (or, with no pid, that is older than StaleAfter) was left by
// a crash and is taken over.
package filelock

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// StaleAfter is how old an O_EXCL lock file with no pid in it must be before it is
// taken for a crash's leftover (its creator died between creating and writing it).
const StaleAfter = 10 * time.Minute

// pollInterval is how often Wait tries again.
const pollInterval = 50 * time.Millisecond

// Options says how a lock is taken and released.
type Options struct {
	// Offset is the byte a Windows lock covers. LockFileEx locks are mandatory: a
	// locked byte cannot be read by anyone else, so a lock file whose pid others read
	// locks a byte far past it. Unix locks the whole file and ignores it.
	Offset int64
	// WritePID writes the holder's pid into the lock file, for BusyError to name.
	WritePID bool
	// Remove deletes the lock file on release (else it stays, as huggingface_hub
	// leaves its lock files). With Remove, TryLock makes sure the file it locked is
	// still the one at the path: a holder that removes it between another's open and
	// lock would otherwise leave that other holding a lock nobody can see.
	Remove bool
	// Excl uses the O_EXCL lock file even where the system has file locks (tests).
	Excl bool
}

// BusyError is returned by TryLock when another open file, in this process or
// another, holds the lock.
type BusyError struct {
	Path string
	PID  int // the holder's pid as written in the lock file; 0 if not known
}

func (e *BusyError) Error() string {
	if e.PID > 0 {
		return fmt.Sprintf("%s is locked by pid %d", e.Path, e.PID)
	}
	return e.Path + " is locked by another process"
}

// Lock is a held lock; Release gives it up.
type Lock struct {
	f    *os.File // nil for an O_EXCL lock file
	path string
	opts Options
	once sync.Once
	err  error
}

// TryLock takes an exclusive lock on the file at path (created if missing) without
// waiting. When another holder has it, the error is a *BusyError.
func TryLock(path string, o Options) (*Lock, error) {
	if o.Excl || !haveFileLocks {
		return tryExcl(path, o)
	}
	for attempt := 0; ; attempt++ {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			return nil, fmt.Errorf("locking %s: %w", path, err)
		}
		ok, err := tryLockFile(f, o.Offset)
		if err != nil || !ok {
			f.Close()
			if err != nil {
				return nil, fmt.Errorf("locking %s: %w", path, err)
			}
			return nil, &BusyError{Path: path, PID: ReadPID(path)}
		}
		if o.Remove && !samePath(f, path) {
			f.Close()
			if attempt >= 100 {
				return nil, fmt.Errorf("locking %s: the file keeps being replaced", path)
			}
			continue
		}
		if o.WritePID {
			if err := writePID(f); err != nil {
				f.Close()
				return nil, fmt.Errorf("locking %s: writing the pid: %w", path, err)
			}
		}
		return &Lock{f: f, path: path, opts: o}, nil
	}
}

// Wait takes the lock, trying again every 50 ms while another holder has it, until
// ctx ends.
func Wait(ctx context.Context, path string, o Options) (*Lock, error) {
	for {
		l, err := TryLock(path, o)
		var busy *BusyError
		if !errors.As(err, &busy) {
			return l, err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for the lock on %s: %w", path, ctx.Err())
		case <-time.After(pollInterval):
		}
	}
}

// Release gives the lock up and, with Options.Remove (and always for an O_EXCL lock
// file), removes the lock file. Calling it again does nothing.
func (l *Lock) Release() error {
	l.once.Do(func() {
		if l.f == nil {
			if err := os.Remove(l.path); err != nil && !errors.Is(err, os.ErrNotExist) {
				l.err = fmt.Errorf("unlocking %s: %w", l.path, err)
			}
			return
		}
		if err := release(l.f, l.path, l.opts); err != nil {
			l.err = fmt.Errorf("unlocking %s: %w", l.path, err)
		}
	})
	return l.err
}

// tryExcl is TryLock's O_EXCL lock file.
func tryExcl(path string, o Options) (*Lock, error) {
	for attempt := 0; ; attempt++ {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
		if errors.Is(err, os.ErrExist) {
			pid := ReadPID(path)
			if attempt < 3 && stale(path, pid) {
				_ = os.Remove(path)
				continue
			}
			return nil, &BusyError{Path: path, PID: pid}
		}
		if err != nil {
			return nil, fmt.Errorf("locking %s: %w", path, err)
		}
		werr := writePID(f)
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			_ = os.Remove(path)
			return nil, fmt.Errorf("locking %s: writing the pid: %w", path, werr)
		}
		return &Lock{path: path, opts: o}, nil
	}
}

// stale reports whether an O_EXCL lock file was left by a crash: its pid no longer
// runs, or it has no pid and is older than StaleAfter.
func stale(path string, pid int) bool {
	if pid > 0 {
		return !ProcessAlive(pid)
	}
	fi, err := os.Stat(path)
	return err == nil && time.Since(fi.ModTime()) > StaleAfter
}

// ReadPID reads the pid a holder wrote into a lock file (0 if none).
func ReadPID(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}

func writePID(f *os.File) error {
	if err := f.Truncate(0); err != nil {
		return err
	}
	_, err := f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return err
}

// samePath reports whether the open file f is still the file at path.
func samePath(f *os.File, path string) bool {
	fi, err := f.Stat()
	if err != nil {
		return false
	}
	pi, err := os.Lstat(path)
	if err != nil {
		return false
	}
	return os.SameFile(fi, pi)
}
