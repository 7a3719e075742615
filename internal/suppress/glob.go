package suppress

import (
	"fmt"
	"path"
	"strings"
)

// glob is a compiled path pattern: path.Match patterns per "/"-separated
// element, where an element "**" matches any number of elements.
type glob []string

// maxGlobLen bounds a pattern so that matching stays cheap.
const maxGlobLen = 1024

// compileGlob checks a pattern. A leading "/" is optional: patterns and
// paths are compared without it.
func compileGlob(pattern string) (glob, error) {
	if pattern == "" || len(pattern) > maxGlobLen {
		return nil, fmt.Errorf("path pattern must be 1 to %d characters", maxGlobLen)
	}
	var g glob
	for _, el := range strings.Split(strings.TrimPrefix(pattern, "/"), "/") {
		if el == "**" && len(g) > 0 && g[len(g)-1] == "**" {
			continue
		}
		if _, err := path.Match(el, ""); err != nil {
			return nil, fmt.Errorf("path pattern %q: %w", pattern, err)
		}
		g = append(g, el)
	}
	return g, nil
}

// match reports whether the path matches, in time proportional to the
// product of the pattern's and the path's element counts.
func (g glob) match(p string) bool {
	name := strings.Split(strings.TrimPrefix(p, "/"), "/")
	// ok[j] reports whether g[i:] matches name[j:], computed from the end.
	ok := make([]bool, len(name)+1)
	ok[len(name)] = true
	for i := len(g) - 1; i >= 0; i-- {
		next := make([]bool, len(name)+1)
		for j := len(name); j >= 0; j-- {
			switch {
			case g[i] == "**":
				next[j] = ok[j] || (j < len(name) && next[j+1])
			case j < len(name):
				m, _ := path.Match(g[i], name[j])
				next[j] = m && ok[j+1]
			}
		}
		ok = next
	}
	return ok[0]
}
