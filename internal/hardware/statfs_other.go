//go:build !(linux || darwin || freebsd || windows)

package hardware

import "errors"

func statfs(string) (free, total int64, err error) {
	return 0, 0, errors.New("free disk space is not supported on this OS")
}
