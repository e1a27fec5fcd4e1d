//go:build unix

package mockpush

import (
	"runtime"
	"syscall"
	"time"
)

// processStats reads the process's CPU time and peak resident size from getrusage.
func processStats() *ProcessStats {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return nil
	}
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	rss := int64(ru.Maxrss)
	if runtime.GOOS != "darwin" {
		rss *= 1024 // Linux and the BSDs report kilobytes, macOS bytes.
	}
	return &ProcessStats{CPUSeconds: cpu.Seconds(), MaxRSSBytes: rss}
}
