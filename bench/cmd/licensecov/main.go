// Command licensecov compares license coverage of mamori, trivy and syft on
// one image: for each tool, how many packages it lists and how many of
// them have a license, per ecosystem, and which packages one tool gives a
// license that another does not.
//
//	licensecov -image docker.tar -trivy trivy.json -syft syft.json
//
// mamori runs in process (inventory, the license file analyzer and
// license.Analyze); trivy.json is `trivy image --scanners license --format
// json` output and syft.json is `syft -o json` output.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/mamorisec/mamori/internal/inventory"
	"github.com/mamorisec/mamori/internal/license"
	"github.com/mamorisec/mamori/internal/scanner"
)

// pkg is one package as a tool reports it.
type pkg struct {
	eco, name, version string
	licensed           bool
	detail             string
	// licenses are the license strings or expression the tool gave.
	licenses []string
}

// identified reports whether some license the tool gave is one mamori's
// normalizer knows the category of: not a hash, file reference or
// unrecognized text.
func (p pkg) identified() bool {
	for _, l := range p.licenses {
		if e, _, ok := license.NormalizeString(l); ok && license.ExpressionCategory(e) != license.Unknown {
			return true
		}
		if e, _, ok := license.NormalizeString(l); ok {
			for _, leaf := range e.Leaves() {
				if license.CategoryOf(leaf.ID) != license.Unknown {
					return true
				}
			}
		}
	}
	return false
}

// id identifies the package across tools: deb versions without the epoch
// (trivy reports it apart), PyPI names in lower case.
func (p pkg) id() string {
	v, name := p.version, p.name
	if p.eco == inventory.TypeDeb {
		if _, rest, ok := strings.Cut(v, ":"); ok {
			v = rest
		}
	}
	if p.eco == inventory.TypePyPI {
		name = strings.ToLower(strings.ReplaceAll(name, "_", "-"))
	}
	return p.eco + "|" + name + "|" + v
}

func main() {
	imagePath := flag.String("image", "", "image (docker archive) to scan with mamori")
	trivyPath := flag.String("trivy", "", "trivy JSON report")
	syftPath := flag.String("syft", "", "syft JSON report")
	list := flag.Int("list", 15, "packages to list per gap")
	flag.Parse()
	if *imagePath == "" || *trivyPath == "" || *syftPath == "" {
		flag.Usage()
		os.Exit(2)
	}
	tools := []string{"mamori", "mamori-declared", "trivy", "syft"}
	pkgs := map[string][]pkg{}
	var err error
	if pkgs["mamori"], pkgs["mamori-declared"], err = mamori(*imagePath); err != nil {
		fail(err)
	}
	if pkgs["trivy"], err = trivy(*trivyPath); err != nil {
		fail(err)
	}
	if pkgs["syft"], err = syft(*syftPath); err != nil {
		fail(err)
	}
	report(os.Stdout, tools, pkgs, *list)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "licensecov:", err)
	os.Exit(1)
}

// mamori inventories the image with the license file analyzer and returns
// its packages with licenses from Analyze, and with the licenses the
// packages' own metadata declares only (for Debian: the copyright file,
// named or classified).
func mamori(ref string) (all, declared []pkg, err error) {
	tmp, err := os.MkdirTemp("", "licensecov")
	if err != nil {
		return nil, nil, err
	}
	defer os.RemoveAll(tmp)
	rep, err := scanner.Inventory(context.Background(), ref, scanner.Options{
		NoCache: true, TempDir: tmp, Analyzers: []inventory.Extractor{license.NewFileExtractor()},
	})
	if err != nil {
		return nil, nil, err
	}
	r := license.Analyze(rep)
	for _, p := range r.Packages {
		base := pkg{eco: eco(p.Type), name: p.Name, version: p.Version}
		a := base
		a.licensed, a.detail = p.Expression != "", p.Expression+" ("+p.Source+", "+string(p.Category)+")"
		if p.Expression != "" {
			a.licenses = []string{p.Expression}
		}
		all = append(all, a)
		d := base
		d.licensed = p.Source == license.FromDeclared
		if d.licensed {
			d.licenses = a.licenses
		}
		declared = append(declared, d)
	}
	fmt.Fprintf(os.Stderr, "mamori: %d license file findings, %d outside packages\n", countLicense(rep.Findings), len(r.Files))
	return all, declared, nil
}

func countLicense(fs []inventory.Finding) int {
	n := 0
	for _, f := range fs {
		if f.Kind == inventory.KindLicense {
			n++
		}
	}
	return n
}

// eco folds the tools' package type names into mamori's.
func eco(t string) string {
	switch t {
	case "debian", "deb":
		return inventory.TypeDeb
	case "node-pkg", "npm":
		return inventory.TypeNPM
	case "python-pkg", "python", "pypi":
		return inventory.TypePyPI
	case "gobinary", "go-module", "golang":
		return inventory.TypeGolang
	case "java-archive", "jar", "maven":
		return inventory.TypeMaven
	case "gemspec", "gem":
		return inventory.TypeGem
	}
	return t
}

func readJSON(path string, v any) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := json.NewDecoder(f).Decode(v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

func trivy(path string) ([]pkg, error) {
	var doc struct {
		Results []struct {
			Type     string
			Packages []struct {
				Name, Version string
				Licenses      []string
			}
		}
	}
	if err := readJSON(path, &doc); err != nil {
		return nil, err
	}
	var out []pkg
	for _, r := range doc.Results {
		for _, p := range r.Packages {
			out = append(out, pkg{eco: eco(r.Type), name: p.Name, version: p.Version,
				licensed: len(p.Licenses) > 0, detail: strings.Join(p.Licenses, ", "), licenses: p.Licenses})
		}
	}
	return out, nil
}

func syft(path string) ([]pkg, error) {
	var doc struct {
		Artifacts []struct {
			Name, Version, Type string
			Licenses            []struct{ Value string }
		}
	}
	if err := readJSON(path, &doc); err != nil {
		return nil, err
	}
	var out []pkg
	for _, a := range doc.Artifacts {
		var ls []string
		for _, l := range a.Licenses {
			ls = append(ls, l.Value)
		}
		out = append(out, pkg{eco: eco(a.Type), name: a.Name, version: a.Version,
			licensed: len(ls) > 0, detail: strings.Join(ls, ", "), licenses: ls})
	}
	return out, nil
}

func report(w io.Writer, tools []string, pkgs map[string][]pkg, list int) {
	ecos := map[string]bool{}
	for _, ps := range pkgs {
		for _, p := range ps {
			ecos[p.eco] = true
		}
	}
	var names []string
	for e := range ecos {
		names = append(names, e)
	}
	sort.Strings(names)
	fmt.Fprintf(w, "| tool | ecosystem | packages | with license | %% | identified | %% |\n| --- | --- | ---: | ---: | ---: | ---: | ---: |\n")
	for _, t := range tools {
		for _, e := range append(names, "all") {
			n, l, id := 0, 0, 0
			for _, p := range pkgs[t] {
				if e == "all" || p.eco == e {
					n++
					if p.licensed {
						l++
					}
					if p.identified() {
						id++
					}
				}
			}
			if n == 0 {
				continue
			}
			fmt.Fprintf(w, "| %s | %s | %d | %d | %.1f | %d | %.1f |\n", t, e, n, l, 100*float64(l)/float64(n), id, 100*float64(id)/float64(n))
		}
	}
	for _, a := range []string{"mamori", "trivy", "syft"} {
		for _, b := range []string{"mamori", "trivy", "syft"} {
			if strings.HasPrefix(a, b) || strings.HasPrefix(b, a) {
				continue
			}
			gap(w, a, b, pkgs[a], pkgs[b], list)
		}
	}
}

// gap lists packages that tool b gives a license and tool a does not.
func gap(w io.Writer, a, b string, pa, pb []pkg, list int) {
	have := map[string]pkg{}
	for _, p := range pa {
		have[p.id()] = p
	}
	var missing []string
	for _, p := range pb {
		q, ok := have[p.id()]
		if p.licensed && ok && !q.licensed {
			missing = append(missing, fmt.Sprintf("%s %s@%s: %s says %q; %s: %s", p.eco, p.name, p.version, b, p.detail, a, q.detail))
		}
	}
	sort.Strings(missing)
	fmt.Fprintf(w, "\n%s lacks a license that %s has: %d packages\n", a, b, len(missing))
	for i, m := range missing {
		if i == list {
			fmt.Fprintf(w, "  ...\n")
			break
		}
		fmt.Fprintf(w, "  %s\n", m)
	}
}
