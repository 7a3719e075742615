package python

import (
	"regexp"
	"strings"

	"github.com/mamorisec/mamori/internal/inventory"
)

// NewRequirements returns the extractor for pip requirements files
// (requirements*.txt). Only exact pins ("name==1.2.3") name an installed
// version; other lines are skipped.
func NewRequirements() inventory.Extractor {
	return lockExtractor{
		name: "language/python/requirements",
		base: func(b string) bool {
			return strings.HasPrefix(b, "requirements") && strings.HasSuffix(b, ".txt")
		},
		parse: ParseRequirements,
	}
}

// pinned matches "name[extras] == version" once options, markers and
// comments are gone.
var pinned = regexp.MustCompile(`^([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*(?:\[[^\]]*\])?\s*==\s*([A-Za-z0-9][A-Za-z0-9.+!_-]*)$`)

// ParseRequirements reads the exact pins of a requirements file, joining
// continuation lines ("\" at the end) and dropping comments, environment
// markers and per-requirement options (--hash). Option lines (-r, -e,
// --index-url, ...), URL and path requirements and version ranges are
// skipped. Names are reported normalized (PEP 503). It never fails: a line
// it cannot read names no pinned version and is skipped.
func ParseRequirements(b []byte) ([]inventory.Package, error) {
	c := inventory.Collector{Key: pythonKey}
	text := strings.ReplaceAll(string(b), "\r\n", "\n")
	text = strings.ReplaceAll(text, "\\\n", " ")
	for _, line := range strings.Split(text, "\n") {
		if i := commentStart(line); i >= 0 {
			line = line[:i]
		}
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '-' {
			continue
		}
		if i := optionStart(line); i >= 0 {
			line = line[:i]
		}
		line, _, _ = strings.Cut(line, ";")
		m := pinned.FindStringSubmatch(strings.TrimSpace(line))
		if m == nil {
			continue
		}
		c.Add(newPackage(NormalizeName(m[1]), m[2], nil, false))
	}
	return c.Sorted(), nil
}

// commentStart returns the index of a "#" that starts a comment: at the
// start of the line or after white space.
func commentStart(line string) int {
	for i := 0; i < len(line); i++ {
		if line[i] == '#' && (i == 0 || line[i-1] == ' ' || line[i-1] == '\t') {
			return i
		}
	}
	return -1
}

// optionStart returns the index of the first option (" -x", " --x") after a
// requirement.
func optionStart(line string) int {
	for i := 1; i < len(line); i++ {
		if line[i] == '-' && (line[i-1] == ' ' || line[i-1] == '\t') {
			return i
		}
	}
	return -1
}
