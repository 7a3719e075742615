package ruby

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"path"
	"regexp"
	"sort"
	"strings"

	"github.com/mamorisec/mamori/internal/inventory"
)

type gemfileLock struct{}

// NewGemfileLock returns the extractor for Bundler's Gemfile.lock (and
// gems.locked) files.
func NewGemfileLock() inventory.Extractor { return gemfileLock{} }

func (gemfileLock) Name() string { return "language/ruby/gemfilelock" }

func (gemfileLock) Version() int { return 1 }

func (gemfileLock) Required(fi inventory.FileInfo) bool {
	base := path.Base(fi.Path)
	return base == "Gemfile.lock" || base == "gems.locked"
}

func (gemfileLock) Extract(_ context.Context, in *inventory.Input) (inventory.Result, error) {
	b, err := inventory.ReadAllLimited(in.Reader, inventory.MaxManifestSize)
	if err != nil {
		return inventory.Result{}, fmt.Errorf("%s: %w", in.Path, err)
	}
	pkgs, err := ParseGemfileLock(b)
	if err != nil {
		return inventory.Result{}, fmt.Errorf("%s: %w", in.Path, err)
	}
	return inventory.Result{Packages: pkgs}, nil
}

// specLine matches a locked gem: four spaces, the name, the version (with
// an optional "-PLATFORM" suffix) in parentheses.
var specLine = regexp.MustCompile(`^    ([^\s()]+) \(([^\s()]+)\)$`)

// ParseGemfileLock reads the gems of the GEM and GIT sections of a
// Gemfile.lock. PATH gems are the project's own and are skipped. A gem
// locked for several platforms ("nokogiri (1.13.3-x86_64-linux)",
// "nokogiri (1.13.3-arm64-darwin)") is reported once, with the platforms in
// Metadata "platforms"; git gems get Metadata "source"="git".
func ParseGemfileLock(b []byte) ([]inventory.Package, error) {
	type gem struct {
		inventory.Package
		platforms []string
	}
	var gems []*gem
	index := map[string]*gem{}
	section, inSpecs := "", false
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 64<<10), inventory.MaxManifestSize)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimRight(sc.Text(), "\r")
		switch {
		case strings.TrimSpace(line) == "":
			continue
		case line[0] != ' ':
			section, inSpecs = strings.TrimSpace(line), false
			continue
		case strings.HasPrefix(line, "  ") && !strings.HasPrefix(line, "   "):
			inSpecs = line == "  specs:"
			continue
		}
		if !inSpecs || (section != "GEM" && section != "GIT") || strings.HasPrefix(line, "     ") {
			continue
		}
		m := specLine.FindStringSubmatch(line)
		if m == nil {
			return nil, fmt.Errorf("parsing Gemfile.lock: line %d: expected \"    NAME (VERSION)\" in the %s specs, got %q", n, section, line)
		}
		name := m[1]
		version, platform, _ := strings.Cut(m[2], "-")
		if version == "" {
			return nil, fmt.Errorf("parsing Gemfile.lock: line %d: gem %s has no version", n, name)
		}
		g, ok := index[name+"@"+version]
		if !ok {
			g = &gem{Package: inventory.Package{
				Name:    name,
				Version: version,
				Type:    inventory.TypeGem,
				PURL:    PURL(name, version, ""),
			}}
			if section == "GIT" {
				g.Metadata = map[string]string{"source": "git"}
			}
			index[name+"@"+version] = g
			gems = append(gems, g)
		}
		if platform != "" {
			g.platforms = append(g.platforms, platform)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("parsing Gemfile.lock: %w", err)
	}
	pkgs := make([]inventory.Package, 0, len(gems))
	for _, g := range gems {
		if len(g.platforms) > 0 {
			sort.Strings(g.platforms)
			if g.Metadata == nil {
				g.Metadata = map[string]string{}
			}
			g.Metadata["platforms"] = strings.Join(g.platforms, ",")
		}
		pkgs = append(pkgs, g.Package)
	}
	return pkgs, nil
}
