package parity

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"

	"github.com/mamorisec/mamori/internal/inventory"
)

// maxOutputSize bounds the JSON output of one tool run that is parsed.
const maxOutputSize = 256 << 20

// Reach is how far a tool saw a vulnerability into a Go binary.
type Reach int

// The reachability levels, from weakest to strongest. For govulncheck they
// are its finding levels: the module is linked, a vulnerable package is
// linked, a vulnerable symbol is in the binary.
const (
	ReachNone Reach = iota
	ReachModule
	ReachPackage
	ReachSymbol
)

// String names the level.
func (r Reach) String() string {
	switch r {
	case ReachModule:
		return "module"
	case ReachPackage:
		return "package"
	case ReachSymbol:
		return "symbol"
	}
	return "-"
}

// Finding is one vulnerability in one package as one tool reported it,
// normalised so that the tools' answers can be compared.
type Finding struct {
	// Ecosystem is the OSV ecosystem: "Go", "npm", "PyPI", "Debian".
	Ecosystem string
	// Name is the package name; PyPI names are normalised (PEP 503).
	Name string
	// Version is the version without a "v" or "go" prefix.
	Version string
	// IDs are the vulnerability identifiers the tool gave: its ID first,
	// then aliases.
	IDs []string
	// Reach is set for Go findings by tools that analyse binaries.
	Reach Reach
	// Symbols are the vulnerable symbols a tool found, if any.
	Symbols []string
}

// ParseMamori parses the JSON written by "mamori scan --format json".
func ParseMamori(r io.Reader) ([]Finding, error) {
	data, err := inventory.ReadAllLimited(r, maxOutputSize)
	if err != nil {
		return nil, fmt.Errorf("reading mamori's output: %w", err)
	}
	var out struct {
		Vulnerabilities []struct {
			ID      string   `json:"id"`
			Aliases []string `json:"aliases"`
			Records []string `json:"records"`
			Package struct {
				Name    string `json:"name"`
				Version string `json:"version"`
				Type    string `json:"type"`
			} `json:"package"`
			Reachability *struct {
				Status  string   `json:"status"`
				Symbols []string `json:"symbols"`
			} `json:"reachability"`
		} `json:"vulnerabilities"`
	}
	if err := json.Unmarshal(data, &out); err != nil {
		return nil, fmt.Errorf("mamori's output is not a mamori JSON report: %w", err)
	}
	var fs []Finding
	for i, v := range out.Vulnerabilities {
		eco, ok := mamoriEcosystems[v.Package.Type]
		if !ok {
			eco = v.Package.Type
		}
		if v.ID == "" || v.Package.Name == "" {
			return nil, fmt.Errorf("mamori's output: vulnerability %d has no id or no package name", i)
		}
		f := Finding{
			Ecosystem: eco,
			Name:      NormalizeName(eco, v.Package.Name),
			Version:   NormalizeVersion(eco, v.Package.Version),
			IDs:       append(append([]string{v.ID}, v.Aliases...), v.Records...),
		}
		if v.Reachability != nil {
			f.Symbols = v.Reachability.Symbols
			switch v.Reachability.Status {
			case "reachable":
				f.Reach = ReachSymbol
			case "not-reachable":
				f.Reach = ReachModule
			}
		}
		fs = append(fs, f)
	}
	return fs, nil
}

// mamoriEcosystems maps mamori's package types to OSV ecosystems.
var mamoriEcosystems = map[string]string{
	"golang": "Go",
	"npm":    "npm",
	"pypi":   "PyPI",
	"python": "PyPI",
	"deb":    "Debian",
}

// ParseGovulncheck parses the stream of JSON messages that
// "govulncheck -json" writes. A vulnerability is reported once per module
// version, at the strongest level govulncheck gave it.
func ParseGovulncheck(r io.Reader) ([]Finding, error) {
	data, err := inventory.ReadAllLimited(r, maxOutputSize)
	if err != nil {
		return nil, fmt.Errorf("reading govulncheck's output: %w", err)
	}
	type frame struct {
		Module   string `json:"module"`
		Version  string `json:"version"`
		Package  string `json:"package"`
		Function string `json:"function"`
		Receiver string `json:"receiver"`
	}
	type message struct {
		Config *struct {
			ProtocolVersion string `json:"protocol_version"`
		} `json:"config"`
		OSV *struct {
			ID      string   `json:"id"`
			Aliases []string `json:"aliases"`
		} `json:"osv"`
		Finding *struct {
			OSV   string   `json:"osv"`
			Trace []*frame `json:"trace"`
		} `json:"finding"`
	}
	aliases := map[string][]string{}
	byKey := map[[3]string]*Finding{}
	var order [][3]string
	dec := json.NewDecoder(bytes.NewReader(data))
	sawConfig := false
	for {
		var m message
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, fmt.Errorf("govulncheck's output is not a govulncheck JSON stream: %w", err)
		}
		switch {
		case m.Config != nil:
			sawConfig = true
		case m.OSV != nil:
			aliases[m.OSV.ID] = m.OSV.Aliases
		case m.Finding != nil:
			if len(m.Finding.Trace) == 0 || m.Finding.Trace[0] == nil || m.Finding.OSV == "" {
				return nil, fmt.Errorf("govulncheck's output: finding %q has no trace", m.Finding.OSV)
			}
			fr := m.Finding.Trace[0]
			k := [3]string{m.Finding.OSV, fr.Module, fr.Version}
			f := byKey[k]
			if f == nil {
				f = &Finding{
					Ecosystem: "Go",
					Name:      fr.Module,
					Version:   NormalizeVersion("Go", fr.Version),
					IDs:       []string{m.Finding.OSV},
				}
				byKey[k] = f
				order = append(order, k)
			}
			level := ReachModule
			switch {
			case fr.Function != "":
				level = ReachSymbol
				sym := fr.Function
				if fr.Receiver != "" {
					sym = strings.TrimPrefix(fr.Receiver, "*") + "." + sym
				}
				if fr.Package != "" {
					sym = fr.Package + "." + sym
				}
				f.Symbols = appendUnique(f.Symbols, sym)
			case fr.Package != "":
				level = ReachPackage
			}
			f.Reach = max(f.Reach, level)
		}
	}
	if !sawConfig && len(byKey) > 0 {
		return nil, errors.New("govulncheck's output has findings but no config message")
	}
	fs := make([]Finding, 0, len(order))
	for _, k := range order {
		f := byKey[k]
		f.IDs = append(f.IDs, aliases[k[0]]...)
		sort.Strings(f.Symbols)
		fs = append(fs, *f)
	}
	return fs, nil
}

// ParseOSVScanner parses the JSON report of "osv-scanner --format json".
// Debian packages are named by their binary package, as mamori names them.
// A package that several sources list (a lock file and node_modules) gives
// one finding per source; Set merges them.
func ParseOSVScanner(r io.Reader) ([]Finding, error) {
	data, err := inventory.ReadAllLimited(r, maxOutputSize)
	if err != nil {
		return nil, fmt.Errorf("reading osv-scanner's output: %w", err)
	}
	var out struct {
		Results *[]struct {
			Packages []struct {
				Package struct {
					Name          string `json:"name"`
					OSPackageName string `json:"os_package_name"`
					Version       string `json:"version"`
					Ecosystem     string `json:"ecosystem"`
				} `json:"package"`
				Vulnerabilities []struct {
					ID      string   `json:"id"`
					Aliases []string `json:"aliases"`
				} `json:"vulnerabilities"`
			} `json:"packages"`
		} `json:"results"`
	}
	if err := json.Unmarshal(data, &out); err != nil {
		return nil, fmt.Errorf("osv-scanner's output is not an osv-scanner JSON report: %w", err)
	}
	if out.Results == nil {
		return nil, errors.New("osv-scanner's output has no results list")
	}
	var fs []Finding
	for _, res := range *out.Results {
		for _, p := range res.Packages {
			eco, _, _ := strings.Cut(p.Package.Ecosystem, ":")
			// OS packages are named by their source package, with the
			// binary package in os_package_name; mamori names the binary.
			name := p.Package.Name
			if p.Package.OSPackageName != "" {
				name = p.Package.OSPackageName
			}
			for _, v := range p.Vulnerabilities {
				if v.ID == "" {
					return nil, fmt.Errorf("osv-scanner's output: a vulnerability of %s %s has no id", eco, name)
				}
				fs = append(fs, Finding{
					Ecosystem: eco,
					Name:      NormalizeName(eco, name),
					Version:   NormalizeVersion(eco, p.Package.Version),
					IDs:       append([]string{v.ID}, v.Aliases...),
				})
			}
		}
	}
	return fs, nil
}

var pep503 = regexp.MustCompile(`[-_.]+`)

// NormalizeName returns the comparable form of a package name: PyPI names
// are lower-cased with runs of "-", "_" and "." replaced by "-" (PEP 503).
func NormalizeName(ecosystem, name string) string {
	if ecosystem == "PyPI" {
		return pep503.ReplaceAllString(strings.ToLower(name), "-")
	}
	return name
}

// NormalizeVersion returns the comparable form of a version: Go versions
// lose their "v" (and the standard library's its "go") prefix.
func NormalizeVersion(ecosystem, version string) string {
	if ecosystem == "Go" {
		version = strings.TrimPrefix(version, "go")
		version = strings.TrimPrefix(version, "v")
	}
	return version
}
