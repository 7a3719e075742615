package vulndb

import (
	"bytes"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/mamorisec/mamori/internal/version"
)

// maxSecDBSize bounds one secdb file or plain record file.
const maxSecDBSize = 64 << 20

// secDB is Alpine's secdb format (https://secdb.alpinelinux.org/): per
// release and repository, the security fixes of each package, keyed by
// the first fixed version. A version of "0" means the package was never
// affected.
type secDB struct {
	DistroVersion string `yaml:"distroversion"`
	RepoName      string `yaml:"reponame"`
	Packages      []struct {
		Pkg struct {
			Name     string              `yaml:"name"`
			Secfixes map[string][]string `yaml:"secfixes"`
		} `yaml:"pkg"`
	} `yaml:"packages"`
}

// isSecDB recognises a secdb file by its top-level keys.
func isSecDB(data []byte) bool {
	head := data[:min(len(data), 4096)]
	return bytes.Contains(head, []byte("\ndistroversion:")) || bytes.HasPrefix(head, []byte("distroversion:")) ||
		(bytes.Contains(head, []byte("\napkurl:")) && bytes.Contains(head, []byte("packages:")))
}

var (
	releaseRE = regexp.MustCompile(`^v\d+\.\d+$`)
	// vulnIDRE matches the identifiers secdb lists (CVE, XSA, GHSA, ...).
	vulnIDRE = regexp.MustCompile(`^[A-Z][A-Z0-9]*-[0-9A-Za-z][0-9A-Za-z-]*$`)
)

// addSecDB imports a secdb file as records "ALPINE-<id>" with the vendor
// identifier as alias, in the ecosystem "Alpine:<release>".
func (b *Builder) addSecDB(src *SourceInfo, name string, data []byte) error {
	var db secDB
	if err := yaml.Unmarshal(data, &db); err != nil {
		return fmt.Errorf("%s: not an Alpine secdb file: %w", name, err)
	}
	if !releaseRE.MatchString(db.DistroVersion) {
		return fmt.Errorf("%s: secdb distroversion %q is not of the form v3.18", name, db.DistroVersion)
	}
	eco := "Alpine:" + db.DistroVersion
	for _, p := range db.Packages {
		if p.Pkg.Name == "" {
			b.skip(src, fmt.Sprintf("%s: a package entry has no name", name))
			continue
		}
		fixes := make([]string, 0, len(p.Pkg.Secfixes))
		for v := range p.Pkg.Secfixes {
			fixes = append(fixes, v)
		}
		slices.Sort(fixes) // deterministic order
		for _, fixed := range fixes {
			if fixed != "0" {
				if _, err := version.Parse(eco, fixed); err != nil {
					b.skip(src, fmt.Sprintf("%s: package %s: %v", name, p.Pkg.Name, err))
					continue
				}
			}
			for _, item := range p.Pkg.Secfixes[fixed] {
				for _, id := range strings.Fields(item) {
					if !vulnIDRE.MatchString(id) {
						continue // comments such as "(aarch64 only)"
					}
					b.addSecFix(src, eco, p.Pkg.Name, fixed, id, db.DistroVersion)
				}
			}
		}
	}
	return nil
}

func (b *Builder) addSecFix(src *SourceInfo, eco, pkg, fixed, id, release string) {
	rid := "ALPINE-" + id
	e := Affected{ID: rid, Ecosystem: eco, Name: pkg}
	if fixed == "0" {
		e.Status = NotAffected
	} else {
		e.Ranges = []Range{{Type: "ECOSYSTEM", Events: []Event{{Introduced, "0"}, {Fixed, fixed}}}}
	}
	k := string(key("Alpine", pkg))
	b.affected[k] = append(b.affected[k], e)
	if _, ok := b.records[rid]; !ok {
		src.Records++
		b.records[rid] = &Record{
			ID: rid, Aliases: []string{id}, Source: src.Name,
			URL: "https://security.alpinelinux.org/vuln/" + id,
		}
	}
}
