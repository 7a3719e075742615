// Package osrelease identifies the operating system of an image from its
// release files: os-release(5) (/etc/os-release, /usr/lib/os-release),
// /etc/lsb-release and the distribution-specific files (/etc/alpine-release,
// /etc/debian_version, /etc/redhat-release and its relatives,
// /etc/SuSE-release, /etc/photon-release).
//
// The extractor reports what one file says; Select combines the files that
// survive in the final image into the image's OS, and PURL builds the package
// URLs of OS packages once the OS is known.
package osrelease

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"github.com/mamorisec/mamori/internal/inventory"
)

// Paths of the release files, in the order Select prefers them.
const (
	etcOSRelease    = "/etc/os-release"
	usrLibOSRelease = "/usr/lib/os-release"
	lsbRelease      = "/etc/lsb-release"
	alpineRelease   = "/etc/alpine-release"
	debianVersion   = "/etc/debian_version"
)

// distroFiles are the distribution-specific release files, most specific
// first: /etc/system-release and /etc/redhat-release are often links to or
// copies of the more specific files.
var distroFiles = []string{
	alpineRelease,
	"/etc/rocky-release",
	"/etc/almalinux-release",
	"/etc/centos-release",
	"/etc/fedora-release",
	"/etc/oracle-release",
	"/etc/redhat-release",
	"/etc/system-release",
	"/etc/SuSE-release",
	"/etc/photon-release",
	debianVersion,
	lsbRelease,
}

// maxReleaseFile bounds the size of a release file; real ones are well under
// 4 KiB.
const maxReleaseFile = 64 << 10

type extractor struct{}

// New returns the OS release file extractor.
func New() inventory.Extractor { return extractor{} }

func (extractor) Name() string { return "os/release" }

func (extractor) Version() int { return 1 }

func (extractor) Required(fi inventory.FileInfo) bool {
	if fi.Path == etcOSRelease || fi.Path == usrLibOSRelease {
		return true
	}
	for _, p := range distroFiles {
		if fi.Path == p {
			return true
		}
	}
	return false
}

func (extractor) Extract(_ context.Context, in *inventory.Input) (inventory.Result, error) {
	b, err := inventory.ReadAllLimited(in.Reader, maxReleaseFile)
	if err != nil {
		return inventory.Result{}, fmt.Errorf("%s: %w", in.Path, err)
	}
	os, err := Parse(in.Path, b)
	if err != nil {
		return inventory.Result{}, fmt.Errorf("%s: %w", in.Path, err)
	}
	return inventory.Result{OS: os}, nil
}

// Parse reads the release file at path (which selects the format) and
// returns the OS it describes, with Source set to path.
func Parse(path string, b []byte) (*inventory.OS, error) {
	var (
		os  *inventory.OS
		err error
	)
	switch path {
	case etcOSRelease, usrLibOSRelease:
		os, err = parseOSRelease(b)
	case lsbRelease:
		os, err = parseLSBRelease(b)
	case alpineRelease:
		os, err = parseVersionFile("alpine", b)
	case debianVersion:
		os, err = parseDebianVersion(b)
	case "/etc/SuSE-release":
		os, err = parseSuSERelease(b)
	case "/etc/photon-release":
		os, err = parsePhotonRelease(b)
	default:
		os, err = parseRedHatRelease(b)
	}
	if err != nil {
		return nil, err
	}
	os.Source = path
	return os, nil
}

// ParseVars parses os-release(5) (or lsb-release) assignments. Values follow
// shell quoting: double quotes allow the escapes \\ \" \$ \`, single quotes
// none, unquoted values allow any backslash-escaped character. Comments,
// blank lines and lines that are not a valid assignment are skipped, as the
// specification asks.
func ParseVars(b []byte) map[string]string {
	vars := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		key, raw, ok := strings.Cut(line, "=")
		if !ok || !validKey(key) {
			continue
		}
		if v, ok := unquote(raw); ok {
			vars[key] = v
		}
	}
	return vars
}

func validKey(k string) bool {
	if k == "" || k[0] >= '0' && k[0] <= '9' {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// unquote decodes a shell-quoted value. It reports false for values a shell
// would not read as one word (unterminated quotes, unquoted blanks followed by
// more text).
func unquote(s string) (string, bool) {
	var out strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return "", false
			}
			out.WriteString(s[i+1 : i+1+j])
			i += j + 1
		case c == '"':
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) && strings.IndexByte("\\\"$`", s[i+1]) >= 0 {
					i++
				}
				out.WriteByte(s[i])
			}
			if i >= len(s) {
				return "", false
			}
		case c == '\\':
			if i+1 < len(s) {
				i++
				out.WriteByte(s[i])
			}
		case c == ' ' || c == '\t':
			if strings.TrimLeft(s[i:], " \t") != "" && strings.TrimLeft(s[i:], " \t")[0] != '#' {
				return "", false
			}
			return out.String(), true
		default:
			out.WriteByte(c)
		}
	}
	return out.String(), true
}

func parseOSRelease(b []byte) (*inventory.OS, error) {
	vars := ParseVars(b)
	if len(vars) == 0 {
		return nil, fmt.Errorf("no os-release assignments found")
	}
	os := &inventory.OS{
		ID:         strings.ToLower(vars["ID"]),
		VersionID:  vars["VERSION_ID"],
		Codename:   vars["VERSION_CODENAME"],
		PrettyName: vars["PRETTY_NAME"],
	}
	if like := strings.Fields(strings.ToLower(vars["ID_LIKE"])); len(like) > 0 {
		os.IDLike = like
	}
	if os.ID == "" {
		os.ID = "linux" // the default os-release(5) gives
	}
	if os.PrettyName == "" {
		os.PrettyName = strings.TrimSpace(vars["NAME"] + " " + vars["VERSION"])
	}
	if os.Codename == "" && os.ID == "ubuntu" {
		os.Codename = vars["UBUNTU_CODENAME"]
	}
	return os, nil
}

func parseLSBRelease(b []byte) (*inventory.OS, error) {
	vars := ParseVars(b)
	id := strings.ToLower(strings.Join(strings.Fields(vars["DISTRIB_ID"]), ""))
	if id == "" {
		return nil, fmt.Errorf("no DISTRIB_ID in lsb-release")
	}
	return &inventory.OS{
		ID:         id,
		VersionID:  vars["DISTRIB_RELEASE"],
		Codename:   vars["DISTRIB_CODENAME"],
		PrettyName: vars["DISTRIB_DESCRIPTION"],
	}, nil
}

var versionRE = regexp.MustCompile(`^[0-9][0-9A-Za-z._+~-]*$`)

// parseVersionFile reads a file holding just a version (alpine-release).
func parseVersionFile(id string, b []byte) (*inventory.OS, error) {
	v := firstLine(b)
	if !versionRE.MatchString(v) {
		return nil, fmt.Errorf("no version found (first line %q)", truncate(v))
	}
	return &inventory.OS{ID: id, VersionID: v}, nil
}

// parseDebianVersion reads /etc/debian_version: "12.5" on stable releases,
// "trixie/sid" on testing and unstable.
func parseDebianVersion(b []byte) (*inventory.OS, error) {
	v := firstLine(b)
	switch {
	case versionRE.MatchString(v):
		return &inventory.OS{ID: "debian", VersionID: v}, nil
	case v != "" && !strings.ContainsAny(v, " \t"):
		codename, _, _ := strings.Cut(v, "/")
		return &inventory.OS{ID: "debian", Codename: codename}, nil
	}
	return nil, fmt.Errorf("no version found (first line %q)", truncate(v))
}

// redHatRE matches "<name> release <version> (<codename>)", the format of
// /etc/redhat-release and its relatives.
var redHatRE = regexp.MustCompile(`^(.+?)\s+release\s+([0-9][0-9A-Za-z._-]*)(?:\s*\(([^)]*)\))?`)

// redHatIDs maps the name in a *-release file to the os-release ID, longest
// prefix first.
var redHatIDs = []struct{ prefix, id string }{
	{"red hat enterprise linux", "rhel"},
	{"centos stream", "centos"},
	{"centos", "centos"},
	{"rocky linux", "rocky"},
	{"almalinux", "almalinux"},
	{"fedora", "fedora"},
	{"amazon linux", "amzn"},
	{"oracle linux", "ol"},
	{"scientific linux", "scientific"},
	{"cloudlinux", "cloudlinux"},
	{"eurolinux", "eurolinux"},
}

func parseRedHatRelease(b []byte) (*inventory.OS, error) {
	line := firstLine(b)
	m := redHatRE.FindStringSubmatch(line)
	if m == nil {
		return nil, fmt.Errorf("unrecognized release line %q", truncate(line))
	}
	name := strings.ToLower(m[1])
	id := ""
	for _, r := range redHatIDs {
		if strings.HasPrefix(name, r.prefix) {
			id = r.id
			break
		}
	}
	if id == "" {
		return nil, fmt.Errorf("unknown distribution %q", truncate(m[1]))
	}
	return &inventory.OS{ID: id, VersionID: m[2], Codename: m[3], PrettyName: line}, nil
}

// parseSuSERelease reads the legacy /etc/SuSE-release:
//
//	SUSE Linux Enterprise Server 12 (x86_64)
//	VERSION = 12
//	PATCHLEVEL = 5
func parseSuSERelease(b []byte) (*inventory.OS, error) {
	first := firstLine(b)
	vars := map[string]string{}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			vars[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	id := ""
	switch lower := strings.ToLower(first); {
	case strings.HasPrefix(lower, "opensuse"):
		id = "opensuse"
	case strings.HasPrefix(lower, "suse linux enterprise desktop"):
		id = "sled"
	case strings.HasPrefix(lower, "suse linux enterprise"):
		id = "sles"
	default:
		return nil, fmt.Errorf("unrecognized release line %q", truncate(first))
	}
	v := vars["VERSION"]
	if p := vars["PATCHLEVEL"]; v != "" && p != "" && p != "0" {
		v += "." + p
	}
	return &inventory.OS{ID: id, VersionID: v, Codename: vars["CODENAME"], PrettyName: first}, nil
}

// parsePhotonRelease reads /etc/photon-release ("VMware Photon OS 4.0").
func parsePhotonRelease(b []byte) (*inventory.OS, error) {
	first := firstLine(b)
	f := strings.Fields(first)
	if len(f) < 2 || !strings.Contains(strings.ToLower(first), "photon") || !versionRE.MatchString(f[len(f)-1]) {
		return nil, fmt.Errorf("unrecognized release line %q", truncate(first))
	}
	return &inventory.OS{ID: "photon", VersionID: f[len(f)-1], PrettyName: first}, nil
}

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(string(b), "\n")
	return strings.TrimSpace(s)
}

func truncate(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}
