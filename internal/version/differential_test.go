package version

import (
	"errors"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"

	pep440 "github.com/aquasecurity/go-pep440-version"
	apk "github.com/knqyf263/go-apk-version"
	deb "github.com/knqyf263/go-deb-version"
	rpm "github.com/knqyf263/go-rpm-version"

	"github.com/mamorisec/mamori/internal/testenv"
)

// This file checks semantic's answers against independent per-ecosystem
// libraries and, where they are installed, the real dpkg and rpm. The
// expected answers in the pair tables are the specifications'; wherever a
// library disagrees with them the case is listed in knownDisagreements.

// otherLib is an independent implementation of one version scheme.
type otherLib struct {
	name      string
	ecosystem string
	pairs     []pair
	// compare returns the library's answer, or ok=false when the library
	// rejects either version.
	compare func(a, b string) (c int, ok bool)
}

var otherLibs = []otherLib{
	{"go-deb-version", "Debian", dpkgPairs, func(a, b string) (int, bool) {
		va, errA := deb.NewVersion(a)
		vb, errB := deb.NewVersion(b)
		if errA != nil || errB != nil {
			return 0, false
		}
		return sign(va.Compare(vb)), true
	}},
	{"go-rpm-version", "Red Hat", rpmPairs, func(a, b string) (int, bool) {
		va, vb := rpm.NewVersion(a), rpm.NewVersion(b)
		return sign(va.Compare(vb)), true
	}},
	{"go-apk-version", "Alpine", append(apkPairs[:len(apkPairs):len(apkPairs)], apkDeviations...), func(a, b string) (int, bool) {
		va, errA := apk.NewVersion(a)
		vb, errB := apk.NewVersion(b)
		if errA != nil || errB != nil {
			return 0, false
		}
		return sign(va.Compare(vb)), true
	}},
	{"go-pep440-version", "PyPI", pep440Pairs, func(a, b string) (int, bool) {
		va, errA := pep440.Parse(a)
		vb, errB := pep440.Parse(b)
		if errA != nil || errB != nil {
			return 0, false
		}
		return sign(va.Compare(vb)), true
	}},
}

// knownDisagreements lists, by library and pair, the table cases where an
// independent library's answer differs from semantic's, and why. In every
// case semantic gives the answer of the specification and of the real tool
// (dpkg, rpm) where one is available.
var knownDisagreements = map[[3]string]string{
	{"go-deb-version", "1.99999999999999999999", "1.100000000000000000000"}: "go-deb-version parses digit runs into an int and loses numbers past 2^63; dpkg compares them digit by digit",
	{"go-deb-version", "18446744073709551616", "18446744073709551615"}:      "go-deb-version parses digit runs into an int and loses numbers past 2^63; dpkg compares them digit by digit",
	{"go-rpm-version", "1.0-~1", "1.0"}:                                     "go-rpm-version compares a missing release as an empty string, which sorts above ~1; rpm (and semantic) rank a missing release below any release",
	{"go-apk-version", "1.0_rc1", "1.0"}:                                    "go-apk-version orders the pre-release suffixes _alpha, _beta, _pre and _rc after the bare version; apk-tools orders them before it",
	{"go-apk-version", "1.0a", "1.00"}:                                      "go-apk-version follows older apk-tools, which weighed leading zeros of a number after the first (1.0 > 1.00); current apk-tools compares such numbers as strings (Gentoo rule, 1.0 < 1.00), as semantic does",
	{"go-apk-version", "1.0~1a", "1.0"}:                                     "go-apk-version predates the ~hash token and rejects such versions",
	{"go-apk-version", "1.0-r1", "1.0.0-r0"}:                                "semantic is wrong here: apk-tools compares token by token and the revision of 1.0-r1 comes where 1.0.0 has a number, so 1.0-r1 is lower; semantic compares zero-padded numbers first (apkDeviations)",
	{"go-apk-version", "2.0_p1-r0", "2.0.0-r1"}:                             "semantic is wrong here: apk-tools compares token by token and the suffix of 2.0_p1 comes where 2.0.0 has a number, so 2.0_p1-r0 is lower; semantic compares zero-padded numbers first (apkDeviations)",
}

func TestDifferentialTables(t *testing.T) {
	for _, lib := range otherLibs {
		for _, p := range lib.pairs {
			ours, err := Compare(lib.ecosystem, p.a, p.b)
			if err != nil {
				t.Fatalf("Compare(%q, %q, %q): %v", lib.ecosystem, p.a, p.b, err)
			}
			theirs, ok := lib.compare(p.a, p.b)
			reason, known := knownDisagreements[[3]string{lib.name, p.a, p.b}]
			switch {
			case ok && theirs == ours && known:
				t.Errorf("%s now agrees on (%q, %q): drop it from knownDisagreements (%s)", lib.name, p.a, p.b, reason)
			case (!ok || theirs != ours) && !known:
				t.Errorf("%s: compare(%q, %q) = %d (parsed: %v), semantic = %d, want %d: a new disagreement", lib.name, p.a, p.b, theirs, ok, ours, p.want)
			}
		}
	}
}

// TestDpkgOracle checks every dpkg pair against dpkg --compare-versions.
func TestDpkgOracle(t *testing.T) {
	dpkg := testenv.NeedCommand(t, "dpkg")
	for _, p := range dpkgPairs {
		got := 0
		switch {
		case dpkgRelation(t, dpkg, p.a, "lt", p.b):
			got = -1
		case dpkgRelation(t, dpkg, p.a, "gt", p.b):
			got = +1
		}
		if got != p.want {
			t.Errorf("dpkg --compare-versions %q %q: %d, table says %d", p.a, p.b, got, p.want)
		}
	}
}

func dpkgRelation(t *testing.T, dpkg, a, op, b string) bool {
	t.Helper()
	out, err := exec.Command(dpkg, "--compare-versions", a, op, b).CombinedOutput()
	if len(out) > 0 {
		t.Errorf("dpkg --compare-versions %q %s %q: %s", a, op, b, out)
	}
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.ExitCode() == 1 {
		return false
	}
	if err != nil {
		t.Fatalf("dpkg --compare-versions %q %s %q: %v", a, op, b, err)
	}
	return true
}

// TestRPMOracle checks every rpm pair against rpm's own rpm.vercmp (the
// Lua binding of rpmvercmp on epoch:version-release), in one rpm run.
func TestRPMOracle(t *testing.T) {
	rpmCmd := testenv.NeedCommand(t, "rpm")
	var lua strings.Builder
	lua.WriteString("%{lua: local r = {} ")
	for _, p := range rpmPairs {
		if strings.ContainsAny(p.a+p.b, `"\%{}`) {
			t.Fatalf("pair (%q, %q) cannot be quoted for rpm's Lua", p.a, p.b)
		}
		lua.WriteString(`table.insert(r, rpm.vercmp("` + p.a + `", "` + p.b + `")) `)
	}
	lua.WriteString(`print(table.concat(r, " "))}`)
	out, err := exec.Command(rpmCmd, "--eval", lua.String()).Output()
	if err != nil {
		t.Fatalf("rpm --eval: %v", err)
	}
	fields := strings.Fields(string(out))
	if len(fields) != len(rpmPairs) {
		t.Fatalf("rpm --eval printed %d results for %d pairs: %q", len(fields), len(rpmPairs), out)
	}
	for i, p := range rpmPairs {
		got, err := strconv.Atoi(fields[i])
		if err != nil {
			t.Fatalf("rpm --eval result %q: %v", fields[i], err)
		}
		if sign(got) != p.want {
			t.Errorf("rpm.vercmp(%q, %q) = %d, table says %d", p.a, p.b, got, p.want)
		}
	}
}

// fuzzDifferential checks that when both semantic (through Parse) and lib
// accept a and b they order them the same way, except for the classes of
// input in excuse, which documents why the library is wrong there.
func fuzzDifferential(f *testing.F, lib otherLib, excuse func(a, b string) bool) {
	for _, p := range lib.pairs {
		f.Add(p.a, p.b)
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		ours, err := Compare(lib.ecosystem, a, b)
		if err != nil {
			return
		}
		theirs, ok := lib.compare(a, b)
		if !ok || theirs == ours || excuse(a, b) {
			return
		}
		t.Errorf("%s: compare(%q, %q) = %d, semantic = %d", lib.name, a, b, theirs, ours)
	})
}

func libNamed(name string) otherLib {
	for _, l := range otherLibs {
		if l.name == name {
			return l
		}
	}
	panic("no library " + name)
}

// longNumber matches a digit run that does not fit an int64.
var longNumber = regexp.MustCompile(`[0-9]{19,}`)

func FuzzDebDifferential(f *testing.F) {
	fuzzDifferential(f, libNamed("go-deb-version"), func(a, b string) bool {
		// go-deb-version loses numbers past 2^63 (knownDisagreements).
		return longNumber.MatchString(a + " " + b)
	})
}

func FuzzRPMDifferential(f *testing.F) {
	fuzzDifferential(f, libNamed("go-rpm-version"), func(a, b string) bool {
		// go-rpm-version misorders a missing release against a release
		// starting with ~ (knownDisagreements).
		return strings.Contains(a, "-") != strings.Contains(b, "-")
	})
}

var (
	// apkPreRelease matches the apk pre-release suffixes.
	apkPreRelease = regexp.MustCompile(`_(alpha|beta|pre|rc)`)
	// apkLeadingZero matches a number after the first with a leading zero.
	apkLeadingZero = regexp.MustCompile(`\.0`)
)

func FuzzAPKDifferential(f *testing.F) {
	fuzzDifferential(f, libNamed("go-apk-version"), func(a, b string) bool {
		// go-apk-version misorders pre-release suffixes and semantic
		// misorders versions with different counts of numbers
		// (knownDisagreements).
		return apkPreRelease.MatchString(a+" "+b) || apkLeadingZero.MatchString(a+" "+b) || strings.Count(apkNumbers(a), ".") != strings.Count(apkNumbers(b), ".")
	})
}

// apkNumbers returns the leading dotted numbers of an apk version.
func apkNumbers(v string) string {
	return strings.TrimRight(v[:len(v)-len(strings.TrimLeft(v, "0123456789."))], ".")
}

func FuzzPEP440Differential(f *testing.F) {
	fuzzDifferential(f, libNamed("go-pep440-version"), func(a, b string) bool { return false })
}
