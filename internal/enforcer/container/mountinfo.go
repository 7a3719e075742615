package container

import (
	"bufio"
	"bytes"
	"github.com/mamorisec/mamori/internal/enforcer/procfs"
	"strconv"
	"strings"
)

// overlayDirs are an overlay mount's layer directories.
type overlayDirs struct {
	upper  string
	lowers []string
}

// overlayOf returns the overlay layers of a process's root (pid 0: none).
func overlayOf(pid int) (overlayDirs, bool) {
	if pid <= 0 {
		return overlayDirs{}, false
	}
	data, err := readLimited("/proc/" + strconv.Itoa(pid) + "/mountinfo")
	if err != nil {
		return overlayDirs{}, false
	}
	return rootOverlay(data)
}

// rootOverlay finds the overlay mounted at "/" in a process's mountinfo
// and returns its upper and lower directories (absolute paths only).
func rootOverlay(data []byte) (overlayDirs, bool) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, maxProcFile)
	var found overlayDirs
	ok := false
	for sc.Scan() {
		pre, post, cut := strings.Cut(sc.Text(), " - ")
		f, g := strings.Fields(pre), strings.Fields(post)
		if !cut || len(f) < 5 || len(g) < 3 || f[4] != "/" || g[0] != "overlay" {
			continue
		}
		var o overlayDirs
		for _, opt := range splitOptions(g[2]) {
			k, v, _ := strings.Cut(opt, "=")
			v = procfs.UnescapeMountinfo(v)
			switch k {
			case "upperdir":
				o.upper = v
			case "lowerdir":
				o.lowers = append(o.lowers, strings.Split(v, ":")...)
			case "lowerdir+":
				o.lowers = append(o.lowers, v)
			}
		}
		if !strings.HasPrefix(o.upper, "/") || len(o.lowers) == 0 {
			continue
		}
		abs := true
		for _, l := range o.lowers {
			abs = abs && strings.HasPrefix(l, "/")
		}
		if abs {
			found, ok = o, true // the last mount at "/" is the visible one
		}
	}
	return found, ok
}

// splitOptions splits super options at commas not escaped by a backslash.
func splitOptions(s string) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case ',':
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}
