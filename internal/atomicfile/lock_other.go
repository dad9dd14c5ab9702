//go:build !unix && !windows

package atomicfile

// LockDir takes an exclusive lock on dir (created if missing). This system has
// no file locks the kernel drops when a process dies, so the lock is a lock
// file created with O_EXCL (see lockDirExcl): a run that crashed leaves it,
// and the next run takes it over once no process has the pid written in it.
// When the directory is held it fails at once with a *BusyError naming the
// holder's pid.
//
// unlock removes the lock file; calling it again does nothing.
func LockDir(dir string) (unlock func() error, err error) { return lockDirExcl(dir) }
