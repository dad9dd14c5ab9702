package cli

// rusageMaxRSSMB converts getrusage's ru_maxrss to MiB: the BSDs and Linux
// count kibibytes, macOS (and iOS) bytes.
func rusageMaxRSSMB(maxrss int64, goos string) float64 {
	switch goos {
	case "darwin", "ios":
		return float64(maxrss) / (1 << 20)
	}
	return float64(maxrss) / 1024
}
