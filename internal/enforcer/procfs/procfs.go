// Package procfs holds the small readers of /proc and /sys files that the
// enforcer's packages share: bounded file reads and mountinfo's escapes.
package procfs

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/mamorisec/mamori/internal/inventory"
)

// ReadFile reads at most limit bytes of the file name; a larger file is an
// error naming it.
func ReadFile(name string, limit int64) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := inventory.ReadAllLimited(f, limit)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	return b, nil
}

// UnescapeMountinfo undoes the octal escapes of /proc/*/mountinfo and
// /proc/mounts fields (\040 for a space, \011 for a tab, \134 for a
// backslash); anything else is kept as written.
func UnescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
