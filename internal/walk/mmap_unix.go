//go:build unix

package walk

import (
	"os"
	"syscall"
)

// mapFile maps a spooled file read-only, so that content analyzers can see
// all of it without a copy on the heap. The walk owns the (unlinked) spool
// file, so it cannot shrink under the mapping.
func mapFile(f *os.File, size int64) ([]byte, func(), error) {
	b, err := syscall.Mmap(int(f.Fd()), 0, int(size), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return nil, nil, err
	}
	return b, func() { syscall.Munmap(b) }, nil
}
