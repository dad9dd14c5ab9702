package train

import "os"

// replaceDir and recoverDir: placeholders until atomicfile's crash-safe swap lands.
func replaceDir(tmp, dir string) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	return os.Rename(tmp, dir)
}

func recoverDir(string) error { return nil }
