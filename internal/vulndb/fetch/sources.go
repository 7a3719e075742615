package fetch

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/mamorisec/mamori/internal/inventory"
)

// OSVBaseURL is the public OSV export; <OSVBaseURL>/<Ecosystem>/all.zip holds
// every record of an ecosystem.
const OSVBaseURL = "https://osv-vulnerabilities.storage.googleapis.com"

// AlpineSecDBBaseURL serves Alpine's secdb files as
// <AlpineSecDBBaseURL>/<version>/<repository>.yaml.
const AlpineSecDBBaseURL = "https://secdb.alpinelinux.org"

// osvEcosystems are the OSV ecosystems fetched by default, spelled as in the
// OSV export.
var osvEcosystems = []string{
	"AlmaLinux", "Alpine", "Chainguard", "crates.io", "Debian", "Go", "Maven",
	"npm", "NuGet", "openSUSE", "Packagist", "PyPI", "Red Hat", "Rocky Linux",
	"RubyGems", "SUSE", "Ubuntu", "Wolfi",
}

// alpineReleases are the Alpine releases whose secdb files are fetched by
// default.
var alpineReleases = []string{"v3.18", "v3.19", "v3.20", "v3.21", "v3.22", "v3.23"}

// DefaultSources returns the sources fetched when no configuration file is
// given: the OSV export of every supported ecosystem and the Alpine secdb
// files of recent releases.
func DefaultSources() []Source {
	var srcs []Source
	for _, eco := range osvEcosystems {
		srcs = append(srcs, Source{
			Name:   "osv-" + strings.ToLower(strings.ReplaceAll(eco, " ", "-")),
			URL:    OSVBaseURL + "/" + url.PathEscape(eco) + "/all.zip",
			Format: FormatOSVZip,
		})
	}
	for _, rel := range alpineReleases {
		for _, repo := range []string{"main", "community"} {
			srcs = append(srcs, Source{
				Name:   "alpine-secdb-" + rel + "-" + repo,
				URL:    AlpineSecDBBaseURL + "/" + rel + "/" + repo + ".yaml",
				Format: FormatAlpineSecDB,
			})
		}
	}
	return srcs
}

// maxConfigSize bounds the size of a sources file.
const maxConfigSize = 1 << 20

// LoadSources reads a YAML sources file:
//
//	include_defaults: true   # optional: start from DefaultSources
//	sources:
//	  - name: osv-debian     # replaces the default of the same name
//	    url: https://mirror.example/osv/Debian/all.zip
//	    format: osv-zip      # osv-zip, osv-json or alpine-secdb
//	    sha256_url: https://mirror.example/osv/Debian/all.zip.sha256  # optional
//	    max_size: 2147483648 # optional, bytes
//
// Unknown keys, duplicate names and invalid values are errors that name the
// file, the line and the key.
func LoadSources(path string) ([]Source, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := inventory.ReadAllLimited(f, maxConfigSize)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	srcs, err := parseSources(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return srcs, nil
}

func parseSources(b []byte) ([]Source, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, err
	}
	if len(doc.Content) == 0 {
		return nil, errors.New("no sources")
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("line %d: want a mapping with the key sources", root.Line)
	}
	var includeDefaults bool
	var listed []Source
	keys := make(map[string]bool)
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if keys[k.Value] {
			return nil, fmt.Errorf("line %d: key %q given twice", k.Line, k.Value)
		}
		keys[k.Value] = true
		switch k.Value {
		case "include_defaults":
			if err := v.Decode(&includeDefaults); err != nil {
				return nil, fmt.Errorf("line %d: include_defaults: want true or false", v.Line)
			}
		case "sources":
			if v.Kind != yaml.SequenceNode {
				return nil, fmt.Errorf("line %d: sources: want a list", v.Line)
			}
			for j, item := range v.Content {
				s, err := parseSource(item)
				if err != nil {
					return nil, fmt.Errorf("sources[%d]: %w", j, err)
				}
				listed = append(listed, s)
			}
		default:
			return nil, fmt.Errorf("line %d: unknown key %q (want include_defaults or sources)", k.Line, k.Value)
		}
	}
	seen := make(map[string]int)
	for j, s := range listed {
		if k, ok := seen[s.Name]; ok {
			return nil, fmt.Errorf("sources[%d]: name %q is already used by sources[%d]", j, s.Name, k)
		}
		seen[s.Name] = j
	}
	var srcs []Source
	if includeDefaults {
		for _, s := range DefaultSources() {
			if _, ok := seen[s.Name]; !ok {
				srcs = append(srcs, s)
			}
		}
	}
	srcs = append(srcs, listed...)
	if len(srcs) == 0 {
		return nil, errors.New("no sources")
	}
	return srcs, nil
}

func parseSource(n *yaml.Node) (Source, error) {
	var s Source
	if n.Kind != yaml.MappingNode {
		return s, fmt.Errorf("line %d: want a mapping with name, url and format", n.Line)
	}
	keys := make(map[string]bool)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if keys[k.Value] {
			return s, fmt.Errorf("line %d: key %q given twice", k.Line, k.Value)
		}
		keys[k.Value] = true
		var dst any
		switch k.Value {
		case "name":
			dst = &s.Name
		case "url":
			dst = &s.URL
		case "format":
			dst = &s.Format
		case "sha256_url":
			dst = &s.SHA256URL
		case "max_size":
			dst = &s.MaxSize
		default:
			return s, fmt.Errorf("line %d: unknown key %q (want name, url, format, sha256_url or max_size)", k.Line, k.Value)
		}
		if v.Kind != yaml.ScalarNode {
			return s, fmt.Errorf("line %d: %s: want a single value", v.Line, k.Value)
		}
		if err := v.Decode(dst); err != nil {
			return s, fmt.Errorf("line %d: %s: invalid value %q", v.Line, k.Value, v.Value)
		}
	}
	if err := s.Validate(); err != nil {
		return s, fmt.Errorf("line %d: %w", n.Line, err)
	}
	return s, nil
}
