package preflight

import (
	"encoding/binary"
	"fmt"
	"github.com/mamorisec/mamori/internal/enforcer/procfs"
	"strings"
)

// nativeEndian is the byte order of netlink messages on the supported
// (little-endian) platforms.
var nativeEndian = binary.LittleEndian

// mount is one line of /proc/self/mounts.
type mount struct {
	dir     string
	fstype  string
	options []string
}

// maxMounts bounds how much of the mount table is read.
const maxMounts = 4 << 20

func readMounts(name string) ([]mount, error) {
	b, err := procfs.ReadFile(name, maxMounts)
	if err != nil {
		return nil, fmt.Errorf("mount table: %w", err)
	}
	return parseMounts(name, string(b))
}

// parseMounts parses /proc/self/mounts (fstab format: device, mount
// point, type, options, dump, pass). name names the input in errors.
func parseMounts(name, s string) ([]mount, error) {
	var out []mount
	for i, line := range strings.Split(s, "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 4 {
			return nil, fmt.Errorf("%s:%d: want at least 4 fields, got %d in %q", name, i+1, len(f), line)
		}
		out = append(out, mount{dir: unescapeOctal(f[1]), fstype: f[2], options: strings.Split(f[3], ",")})
	}
	return out, nil
}

// unescapeOctal undoes the \ooo escaping of spaces, tabs, newlines and
// backslashes in mount table paths.
func unescapeOctal(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && isOctal(s[i+1]) && isOctal(s[i+2]) && isOctal(s[i+3]) {
			b.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }
