// Command accuracy compares scanners' CycloneDX SBOMs of the benchmark image
// with the image's ground truth (truth.json, written by bench/build-image.sh).
//
// Usage:
//
//	accuracy -truth truth.json [-require mamori] [-details N] TOOL=SBOM.json...
//
// Packages are compared by package URL type, name and version, after the
// normalizations each ecosystem's URLs need (the Debian epoch, which some tools
// put in a qualifier; PyPI name normalization; Go module paths compared
// case-insensitively). Go main modules and the Go standard library are not
// modules a build installs and are left out of the comparison.
//
// It prints a Markdown table of found / missed / extra per ecosystem and tool,
// followed by the missed and extra packages themselves. It exits with status 1
// when the tool named by -require missed any package of the ground truth.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strings"

	"github.com/package-url/packageurl-go"
)

// truthPackage is one entry of truth.json.
type truthPackage struct {
	Type    string `json:"type"`
	Name    string `json:"name"`
	Version string `json:"version"`
	Path    string `json:"path"`
	OwnedBy string `json:"ownedBy"`
	Main    bool   `json:"main"`
}

type truthFile struct {
	Packages []truthPackage `json:"packages"`
}

// bom is the part of a CycloneDX JSON document the comparison needs.
type bom struct {
	Components []component `json:"components"`
}

type component struct {
	PURL       string      `json:"purl"`
	Components []component `json:"components"`
}

// Ecosystems in table order. "pypi (dpkg)" and "gem (dpkg)" hold language
// packages that a Debian package installed; "other" counts whatever else a
// tool reports.
var ecosystems = []string{"deb", "npm", "pypi", "pypi (dpkg)", "gem", "gem (dpkg)", "golang", "other"}

// dpkgOwned is the suffix of the ecosystems of dpkg-owned language packages.
const dpkgOwned = " (dpkg)"

// set maps an ecosystem to its package keys.
type set map[string]map[string]bool

func (s set) add(eco, key string) {
	if s[eco] == nil {
		s[eco] = map[string]bool{}
	}
	s[eco][key] = true
}

// tool is one scanner's findings.
type tool struct {
	name  string
	found set
}

func main() {
	log.SetFlags(0)
	log.SetPrefix("accuracy: ")
	truthPath := flag.String("truth", "", "ground truth JSON written by build-image.sh (required)")
	require := flag.String("require", "mamori", "exit 1 if this tool misses any ground-truth package (empty: never)")
	details := flag.Int("details", 30, "list at most this many missed/extra packages per tool and ecosystem")
	flag.Parse()
	if *truthPath == "" || flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: accuracy -truth truth.json [-require TOOL] [-details N] TOOL=SBOM.json...")
		os.Exit(2)
	}
	truth, ignore, err := readTruth(*truthPath)
	if err != nil {
		log.Fatal(err)
	}
	var tools []tool
	for _, arg := range flag.Args() {
		name, path, ok := strings.Cut(arg, "=")
		if !ok || name == "" || path == "" {
			log.Fatalf("argument %q: want TOOL=SBOM.json", arg)
		}
		found, err := readBOM(path, ignore)
		if err != nil {
			log.Fatal(err)
		}
		tools = append(tools, tool{name: name, found: found})
	}
	missed := report(os.Stdout, truth, tools, *details)
	if *require != "" {
		if n, ok := missed[*require]; ok && n > 0 {
			log.Printf("%s missed %d ground-truth packages", *require, n)
			os.Exit(1)
		}
	}
}

// readTruth loads the ground truth. It also returns the keys of Go main
// modules, which are excluded from the comparison on both sides.
func readTruth(path string) (set, map[string]bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	var t truthFile
	if err := json.NewDecoder(f).Decode(&t); err != nil {
		return nil, nil, fmt.Errorf("%s: not a ground-truth file: %w", path, err)
	}
	if len(t.Packages) == 0 {
		return nil, nil, fmt.Errorf("%s: no packages", path)
	}
	truth := set{}
	ignore := map[string]bool{}
	for _, p := range t.Packages {
		if p.Name == "" || p.Version == "" {
			return nil, nil, fmt.Errorf("%s: package without name or version at %s", path, p.Path)
		}
		k := key(p.Type, p.Name, p.Version)
		if p.Type == "golang" && p.Main {
			ignore[normalizeName("golang", p.Name)] = true
			continue
		}
		eco := p.Type
		if p.OwnedBy != "" {
			eco += dpkgOwned
		}
		truth.add(eco, k)
	}
	return truth, ignore, nil
}

// readBOM collects the package keys of every component (nested ones
// included) in a CycloneDX JSON file.
func readBOM(path string, ignoreGo map[string]bool) (set, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var b bom
	if err := json.NewDecoder(io.LimitReader(f, 1<<30)).Decode(&b); err != nil {
		return nil, fmt.Errorf("%s: not a CycloneDX JSON document: %w", path, err)
	}
	found := set{}
	var walk func([]component) error
	walk = func(cs []component) error {
		for _, c := range cs {
			if err := walk(c.Components); err != nil {
				return err
			}
			if c.PURL == "" {
				continue
			}
			p, err := packageurl.FromString(c.PURL)
			if err != nil {
				return fmt.Errorf("%s: component purl %q: %w", path, c.PURL, err)
			}
			name := p.Name
			if p.Namespace != "" && p.Type != "deb" {
				name = p.Namespace + "/" + p.Name
			}
			version := p.Version
			if p.Type == "deb" {
				if epoch := p.Qualifiers.Map()["epoch"]; epoch != "" && !strings.Contains(version, ":") {
					version = epoch + ":" + version
				}
			}
			switch p.Type {
			case "golang":
				if name == "stdlib" || ignoreGo[normalizeName("golang", name)] {
					continue
				}
				found.add("golang", key(p.Type, name, version))
			case "deb", "npm", "pypi", "gem":
				found.add(p.Type, key(p.Type, name, version))
			default:
				found.add("other", p.Type+"/"+name+"@"+version)
			}
		}
		return nil
	}
	if err := walk(b.Components); err != nil {
		return nil, err
	}
	return found, nil
}

var pypiSeparators = regexp.MustCompile(`[-_.]+`)

// normalizeName spells a package name the way the comparison expects it.
func normalizeName(typ, name string) string {
	if u, err := url.PathUnescape(name); err == nil {
		name = u
	}
	switch typ {
	case "pypi":
		return pypiSeparators.ReplaceAllString(strings.ToLower(name), "-")
	case "golang":
		return strings.ToLower(name)
	}
	return name
}

func key(typ, name, version string) string {
	return normalizeName(typ, name) + "@" + version
}

// anyExtra reports whether some tool found a package of type typ that is not
// a dpkg-owned package of the ground truth.
func anyExtra(tools []tool, truth set, typ string) bool {
	for _, t := range tools {
		for k := range t.found[typ] {
			if !truth[typ+dpkgOwned][k] {
				return true
			}
		}
	}
	return false
}

// report prints the tables and returns the number of missed packages per tool.
func report(w io.Writer, truth set, tools []tool, details int) map[string]int {
	missedTotal := map[string]int{}
	fmt.Fprint(w, "| ecosystem | ground truth |")
	for _, t := range tools {
		fmt.Fprintf(w, " %s found | %s missed | %s extra |", t.name, t.name, t.name)
	}
	fmt.Fprint(w, "\n|---|---:|")
	for range tools {
		fmt.Fprint(w, "---:|---:|---:|")
	}
	fmt.Fprintln(w)
	type list struct {
		tool, eco, kind string
		keys            []string
	}
	var lists []list
	for _, eco := range ecosystems {
		// A tool's findings are per package type, whether or not dpkg owns
		// the package.
		typ, owned := strings.CutSuffix(eco, dpkgOwned)
		if len(truth[eco]) == 0 && eco != "other" && (owned || !anyExtra(tools, truth, typ)) {
			continue
		}
		fmt.Fprintf(w, "| %s | %d |", eco, len(truth[eco]))
		for _, t := range tools {
			got := t.found[typ]
			var found, missed, extra []string
			for k := range truth[eco] {
				if got[k] {
					found = append(found, k)
				} else {
					missed = append(missed, k)
				}
			}
			if !owned {
				for k := range got {
					if !truth[eco][k] && !truth[eco+dpkgOwned][k] {
						extra = append(extra, k)
					}
				}
			}
			if eco == "other" {
				fmt.Fprintf(w, " – | – | %d |", len(extra))
			} else {
				fmt.Fprintf(w, " %d | %d | %d |", len(found), len(missed), len(extra))
			}
			missedTotal[t.name] += len(missed)
			lists = append(lists, list{t.name, eco, "missed", missed}, list{t.name, eco, "extra", extra})
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w)
	for _, l := range lists {
		if len(l.keys) == 0 {
			continue
		}
		sort.Strings(l.keys)
		fmt.Fprintf(w, "- %s %s %s (%d):", l.tool, l.kind, l.eco, len(l.keys))
		for i, k := range l.keys {
			if i == details {
				fmt.Fprintf(w, " … and %d more", len(l.keys)-details)
				break
			}
			fmt.Fprintf(w, " `%s`", k)
		}
		fmt.Fprintln(w)
	}
	return missedTotal
}
