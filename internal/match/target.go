package match

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/mamorisec/mamori/internal/inventory"
)

// target is what one package is looked up as: a base ecosystem, the
// names to look up, the version to compare and which releases of the
// ecosystem apply.
type target struct {
	base    string
	names   []string
	version string
	// release reports whether an entry's full ecosystem applies.
	release func(ecosystem string) bool
	// label is the ecosystem shown in findings, for example "Debian:12".
	label string
}

// languageEcosystems maps inventory types to OSV ecosystems.
var languageEcosystems = map[string]string{
	inventory.TypeNPM:      "npm",
	inventory.TypePyPI:     "PyPI",
	inventory.TypeGolang:   "Go",
	inventory.TypeMaven:    "Maven",
	inventory.TypeGem:      "RubyGems",
	inventory.TypeComposer: "Packagist",
	inventory.TypeCargo:    "crates.io",
	inventory.TypeNuGet:    "NuGet",
}

// distro describes how the OS packages of one distribution are matched.
type distro struct {
	base  string
	label string
	// release reports whether an entry's ecosystem is this release.
	release func(string) bool
}

// distroOf maps an OS release to its database ecosystem. It returns an
// error naming the OS when mamori cannot match its packages.
func distroOf(os *inventory.OS) (*distro, error) {
	if os == nil {
		return nil, fmt.Errorf("no OS release found (no /etc/os-release); OS packages were not matched")
	}
	v := os.VersionID
	exact := func(eco string) func(string) bool { return func(e string) bool { return e == eco } }
	switch os.ID {
	case "debian":
		major, _, _ := strings.Cut(v, ".")
		if major == "" {
			return nil, fmt.Errorf("the Debian release %q has no version number (testing or unstable); OS packages were not matched", os.PrettyName)
		}
		return &distro{"Debian", "Debian:" + major, exact("Debian:" + major)}, nil
	case "ubuntu":
		if v == "" {
			return nil, fmt.Errorf("the Ubuntu release has no VERSION_ID; OS packages were not matched")
		}
		return &distro{"Ubuntu", "Ubuntu:" + v, func(e string) bool {
			return e == "Ubuntu:"+v || e == "Ubuntu:"+v+":LTS"
		}}, nil
	case "alpine":
		parts := strings.Split(v, ".")
		if len(parts) < 2 {
			return nil, fmt.Errorf("the Alpine release %q has no major.minor version; OS packages were not matched", v)
		}
		eco := "Alpine:v" + parts[0] + "." + parts[1]
		return &distro{"Alpine", eco, exact(eco)}, nil
	case "wolfi":
		return &distro{"Wolfi", "Wolfi", exact("Wolfi")}, nil
	case "chainguard":
		return &distro{"Chainguard", "Chainguard", exact("Chainguard")}, nil
	case "rocky":
		major, _, _ := strings.Cut(v, ".")
		return &distro{"Rocky Linux", "Rocky Linux:" + major, exact("Rocky Linux:" + major)}, nil
	case "almalinux":
		major, _, _ := strings.Cut(v, ".")
		return &distro{"AlmaLinux", "AlmaLinux:" + major, exact("AlmaLinux:" + major)}, nil
	case "rhel":
		major, _, _ := strings.Cut(v, ".")
		prefix := "Red Hat:enterprise_linux:" + major + ":"
		return &distro{"Red Hat", "Red Hat:" + major, func(e string) bool {
			return strings.HasPrefix(e, prefix) || e == "Red Hat:enterprise_linux:"+major
		}}, nil
	case "sles":
		major, minor, _ := strings.Cut(v, ".")
		name := "SUSE:Linux Enterprise Server " + major
		if n, err := strconv.Atoi(minor); err == nil && n > 0 {
			name += " SP" + minor
		}
		return &distro{"SUSE", name, func(e string) bool { return e == name || strings.HasPrefix(e, name+":") }}, nil
	case "opensuse-leap":
		eco := "openSUSE:Leap " + v
		return &distro{"openSUSE", eco, exact(eco)}, nil
	}
	return nil, fmt.Errorf("the vulnerability database has no data for OS %q (%s); OS packages were not matched", os.ID, os.PrettyName)
}

// isOSType reports whether packages of type t come from the OS.
func isOSType(t string) bool {
	return t == inventory.TypeDeb || t == inventory.TypeAPK || t == inventory.TypeRPM
}

// targetOf returns how p is looked up; ok is false for packages that are
// not matched (language packages owned by an OS package, Go main modules
// built from a working tree).
func targetOf(p *inventory.Package, d *distro) (target, bool) {
	if isOSType(p.Type) {
		if d == nil {
			return target{}, false
		}
		t := target{base: d.base, release: d.release, label: d.label}
		name, ver := p.Name, p.Version
		if p.SourceName != "" {
			name = p.SourceName
		}
		if p.SourceVersion != "" && p.Type != inventory.TypeRPM {
			ver = p.SourceVersion
		}
		t.names = []string{name}
		if p.Type == inventory.TypeRPM {
			// RPM advisories name binary packages; look up both.
			if name != p.Name {
				t.names = append(t.names, p.Name)
			}
			if p.Epoch != nil && *p.Epoch > 0 {
				ver = strconv.Itoa(*p.Epoch) + ":" + ver
			}
		}
		t.version = ver
		return t, true
	}
	eco, ok := languageEcosystems[p.Type]
	if !ok || p.OwnedBy != "" {
		return target{}, false
	}
	if p.Type == inventory.TypeGolang && (p.Version == "" || p.Version == "(devel)") {
		return target{}, false
	}
	return target{base: eco, names: []string{p.Name}, version: p.Version, label: eco,
		release: func(e string) bool { return e == eco }}, true
}
