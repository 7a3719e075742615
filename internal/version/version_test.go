package version

import (
	"errors"
	"regexp"
	"strings"
	"testing"
)

// pair is two versions and the sign of their comparison per the
// ecosystem's specification (-1: a < b, 0: equal, +1: a > b).
type pair struct {
	a, b string
	want int
}

// dpkgPairs follow deb-version(7); TestDpkgOracle checks each against the
// real dpkg --compare-versions.
var dpkgPairs = []pair{
	{"1.0", "1.0", 0},
	{"0:1.0", "1.0", 0},
	{"1.0-0", "1.0", 0},
	{"1:1.0", "2.0", +1},
	{"2:1.0", "10:0.1", -1},
	{"1.0~rc1", "1.0", -1},
	{"1.0~~", "1.0~", -1},
	{"1.0~", "1.0", -1},
	{"0", "0~", +1},
	{"1.0", "1.0+b1", -1},
	{"1.10", "1.9", +1},
	{"1.001", "1.1", 0},
	{"1.0a", "1.0+", -1},
	{"1.0.a", "1.0a", +1},
	{"1.0-1", "1.0-1.1", -1},
	{"2.36-9+deb12u1", "2.36-9+deb12u1+b1", -1},
	{"2.36-9+deb12u1", "2.36-9+deb12u2", -1},
	{"7.88.1-10+deb12u5", "7.88.1-10+deb12u12", -1},
	{"1.2.3-1~deb12u2", "1.2.3-1", -1},
	{"1.2.3-1~deb11u1", "1.2.3-1~deb12u1", -1},
	{"3.0.11-1~deb12u2", "3.0.11-1~deb12u1", +1},
	{"1.2.3+dfsg-1", "1.2.3-1", +1},
	{"1:9.18.28-1~deb12u2", "1:9.18.24-1", +1},
	{"2.0-1ubuntu0.22.04.1", "2.0-1ubuntu0.22.04.2", -1},
	{"1.0-1", "1.0-1ubuntu1", -1},
	{"5.2.15-2ubuntu1", "5.2.15-2+b2", -1},
	{"1.2-3-4", "1.2-3-3", +1},
	{"1:2:3-1", "1:2:2-1", +1},
	{"1.0+really0.9-1", "1.0-1", +1},
	{"1.99999999999999999999", "1.100000000000000000000", -1},
	{"18446744073709551616", "18446744073709551615", +1},
	{"1.0-A", "1.0-a", -1},
}

// rpmPairs follow rpmvercmp (rpm's rpmio/rpmvercmp.c) on epoch, version
// and release; TestRPMOracle checks each against rpm's own rpm.vercmp.
var rpmPairs = []pair{
	{"1.0-1", "1.0-1", 0},
	{"0:1.0-1", "1.0-1", 0},
	{"1:2.0-1.el9", "2.0-1.el9_1", +1},
	{"2.0-1.el9", "2.0-1.el9_1", -1},
	{"10:1-1", "9:2-1", +1},
	{"1.0~rc1-1", "1.0-1", -1},
	{"1.0~rc1", "1.0~rc2", -1},
	{"1.0~~", "1.0~", -1},
	{"1.0^git1-1", "1.0-1", +1},
	{"1.0^git1", "1.0.1", -1},
	{"1.0^", "1.0", +1},
	{"1.0a", "1.0", +1},
	{"1.0", "1.0.0", -1},
	{"2.5", "2.05", 0},
	{"1.a", "1.1", -1},
	{"1_0", "1.0", 0},
	{"1.0.20240101", "1.0.9", +1},
	{"3.2.0-1.el9", "3.2.0-1.el9_3.1", -1},
	{"1.2.3-4.el8_10", "1.2.3-4.el8", +1},
	{"5.14.0-362.24.1.el9_3", "5.14.0-362.8.1.el9_3", +1},
	{"2.28-225.el9", "2.28-225.el9_3.1", -1},
	{"1.1.1k-12.el8_9", "1.1.1k-7.el8_6", +1},
	{"4.18.0-513.el8", "4.18.0-513.el8.1", -1},
	{"15.1+git20230920-150500.1.2", "15.1+git20230920-150500.1.10", -1},
	{"99999999999999999999", "100000000000000000000", -1},
	{"a", "B", +1},
	{"1.0-1", "1.0", +1},
	{"1.0-~1", "1.0", +1},
}

// apkPairs follow apk-tools' version comparison (apk_version_compare).
var apkPairs = []pair{
	{"1.2.3-r4", "1.2.3-r4", 0},
	{"1.2.3-r4", "1.2.3-r10", -1},
	{"1.2.3", "1.2.3-r0", -1},
	{"1.0", "1.0.0", -1},
	{"1.0-r0", "1.0.0-r0", -1},
	{"1.0", "1.0_cvs", -1},
	{"1.0_p", "1.0_p0", -1},
	{"1.0_p1", "1.0_p1-r0", -1},
	{"1.0~1a", "1.0", +1},
	{"1.0_rc1", "1.0", -1},
	{"1.0_alpha1", "1.0_beta1", -1},
	{"1.0_beta2", "1.0_pre1", -1},
	{"1.0_pre1", "1.0_rc1", -1},
	{"2.0_rc1-r0", "2.0_rc2-r0", -1},
	{"1.0_p1", "1.0", +1},
	{"1.0_git20200101", "1.0", +1},
	{"1.0_git20200101", "1.0_p1", -1},
	{"1.0_cvs1", "1.0_svn1", -1},
	{"1.2.3_p1-r0", "1.2.3-r1", +1},
	{"1.1.1k-r0", "1.1.1l-r0", -1},
	{"1.1.1k-r0", "1.1.1-r5", +1},
	{"1.1.1", "1.1.1a", -1},
	{"1.10", "1.9", +1},
	{"3.0.8-r0", "3.0.10-r0", -1},
	{"0", "1.0", -1},
	{"2023.12.04-r0", "2023.12.4-r0", -1},
	{"1.02", "1.1", -1},
	{"1.0a", "1.00", -1},
}

// apkDeviations are pairs that semantic orders differently from apk-tools,
// with semantic's answer: apk-tools compares token by token, so "1.0-r1"
// ends its numbers (a revision comes next) before "1.0.0-r0" does and is
// the lower version; semantic compares the numbers zero-padded, then the
// revisions. Versions of one package do not change shape this way in
// practice; see docs/decisions/0005-version-comparison.md.
var apkDeviations = []pair{
	{"1.0-r1", "1.0.0-r0", +1},
	{"2.0_p1-r0", "2.0.0-r1", +1},
}

// pep440Pairs follow PEP 440 (packaging.version).
var pep440Pairs = []pair{
	{"1.0", "1.0", 0},
	{"1.0RC1", "1.0rc1", 0},
	{"1.0c1", "1.0rc1", 0},
	{"1.0-1", "1.0.post1", 0},
	{"v1.0", "1.0", 0},
	{"1.0", "1.0.0", 0},
	{"1!1.0", "2.0", +1},
	{"1.0.dev1", "1.0a1", -1},
	{"1.0a1", "1.0b1", -1},
	{"1.0a1.dev1", "1.0a1", -1},
	{"1.0rc1", "1.0", -1},
	{"1.0", "1.0.post1", -1},
	{"1.0.post1.dev1", "1.0.post1", -1},
	{"1.0.dev1", "1.0.dev2", -1},
	{"1.0+ubuntu1", "1.0", +1},
	{"1.0+local.1", "1.0+local.2", -1},
	{"1.0+abc", "1.0+5", -1},
	{"0.9", "1.0.dev0", -1},
	{"2.0.0", "10.0", -1},
	{"1.0.0alpha1", "1.0.0a1", 0},
	{"2.31.0", "2.32.0", -1},
}

// goPairs mix module versions as the inventory reports them (leading v,
// pseudo-versions, +incompatible, toolchain versions) with the SEMVER
// versions of OSV Go records.
var goPairs = []pair{
	{"v0.3.5", "0.3.7", -1},
	{"v0.3.7", "0.3.7", 0},
	{"v1.10.0", "1.9.0", +1},
	{"v0.0.0-20210226172049-e18ecbb05110", "0.0.0-20210301000000-abcdef123456", -1},
	{"v0.0.0-20210226172049-e18ecbb05110", "0.1.0", -1},
	{"v1.2.4-0.20210226172049-e18ecbb05110", "1.2.3", +1},
	{"v1.2.4-0.20210226172049-e18ecbb05110", "1.2.4", -1},
	{"v2.0.0+incompatible", "2.0.0", 0},
	{"v2.0.0+incompatible", "2.0.1", -1},
	{"v1.2.3-pre.1", "1.2.3-pre.2", -1},
	{"1.20.5", "1.20.0-0", +1},
	{"1.20.0-0", "1.20.0", -1},
	{"1.21", "1.21.0", 0},
	{"go1.20.5", "1.20.5", 0},
	{"go1.21rc2", "1.21.0-rc.3", -1},
	{"go1.21rc2", "1.21.0-rc.2", 0},
	{"1.21rc2", "1.21.0", -1},
	{"go1.19beta1", "1.19.0-rc.1", -1},
}

// semverPairs follow Semantic Versioning 2.0.0 (npm, crates.io).
var semverPairs = []pair{
	{"1.0.0-alpha", "1.0.0-alpha.1", -1},
	{"1.0.0-alpha.1", "1.0.0-alpha.beta", -1},
	{"1.0.0-alpha.beta", "1.0.0-beta", -1},
	{"1.0.0-beta.2", "1.0.0-beta.11", -1},
	{"1.0.0-rc.1", "1.0.0", -1},
	{"1.0.0+build.1", "1.0.0", 0},
	{"2.0.0", "10.0.0", -1},
	{"0.3.0-beta.1", "0.3.0", -1},
}

// mavenPairs follow Maven's ComparableVersion.
var mavenPairs = []pair{
	{"1.0-alpha-1", "1.0-beta-1", -1},
	{"1.0-alpha1", "1.0-a1", 0},
	{"1.0-beta", "1.0-milestone", -1},
	{"1.0-m1", "1.0-rc1", -1},
	{"1.0-rc1", "1.0-SNAPSHOT", -1},
	{"1.0-cr1", "1.0-rc1", 0},
	{"1.0-SNAPSHOT", "1.0", -1},
	{"1.0", "1.0-ga", 0},
	{"1.0", "1.0.final", 0},
	{"2.0.0.Final", "2.0.0", 0},
	{"1.0", "1.0-sp1", -1},
	{"1.0", "1.0.0", 0},
	{"1.10", "1.9", +1},
	{"2.17.0", "2.17.1", -1},
	{"1.0-RC1", "1.0-rc1", 0},
}

// rubyGemsPairs follow Gem::Version.
var rubyGemsPairs = []pair{
	{"1.0.0.pre", "1.0.0", -1},
	{"1.0.0.rc1", "1.0.0", -1},
	{"1.0.0.a", "1.0.0.b", -1},
	{"1.0", "1.0.0", 0},
	{"1.10.0", "1.9.0", +1},
	{"7.0.8.1", "7.0.8", +1},
}

// nuGetPairs follow NuGet's version rules (four numeric parts, case
// insensitive prerelease labels).
var nuGetPairs = []pair{
	{"1.0.0.0", "1.0.0", 0},
	{"1.0.0.1", "1.0.0", +1},
	{"1.0.0-beta", "1.0.0", -1},
	{"1.0.0-Beta", "1.0.0-beta", 0},
	{"4.3.0.1", "4.3.1", -1},
}

// packagistPairs follow Composer's version comparison.
var packagistPairs = []pair{
	{"1.0.0", "1.0.0", 0},
	{"1.0.0-beta1", "1.0.0", -1},
	{"1.0.0-RC1", "1.0.0", -1},
	{"v2.1.0", "2.1.1", -1},
	{"5.4.10", "5.4.9", +1},
}

// tables lists the pairs with the ecosystems they are checked in, using
// the ecosystem names OSV records carry.
var tables = []struct {
	ecosystems []string
	pairs      []pair
}{
	{[]string{"Debian", "Debian:12", "Ubuntu:22.04:LTS", "Ubuntu:Pro:18.04:LTS"}, dpkgPairs},
	{[]string{"Red Hat", "Red Hat:rhel_aus:8.4::appstream", "Rocky Linux:9", "AlmaLinux:9", "SUSE:Linux Enterprise Server 15 SP5", "openSUSE:Tumbleweed"}, rpmPairs},
	{[]string{"Alpine", "Alpine:v3.18", "Wolfi", "Chainguard"}, apkPairs},
	{[]string{"Alpine"}, apkDeviations},
	{[]string{"PyPI"}, pep440Pairs},
	{[]string{"Go"}, goPairs},
	{[]string{"npm", "crates.io"}, semverPairs},
	{[]string{"Maven"}, mavenPairs},
	{[]string{"RubyGems"}, rubyGemsPairs},
	{[]string{"NuGet"}, nuGetPairs},
	{[]string{"Packagist"}, packagistPairs},
}

func TestCompare(t *testing.T) {
	for _, tb := range tables {
		for _, eco := range tb.ecosystems {
			for _, p := range tb.pairs {
				got, err := Compare(eco, p.a, p.b)
				if err != nil {
					t.Errorf("Compare(%q, %q, %q): %v", eco, p.a, p.b, err)
					continue
				}
				if got != p.want {
					t.Errorf("Compare(%q, %q, %q) = %d, want %d", eco, p.a, p.b, got, p.want)
				}
				if back, err := Compare(eco, p.b, p.a); err != nil || back != -p.want {
					t.Errorf("Compare(%q, %q, %q) = %d, %v, want %d", eco, p.b, p.a, back, err, -p.want)
				}
			}
		}
	}
}

// TestParseOnceCompareMany checks that a parsed version compares the same
// way through Compare, CompareVersion and the package-level Compare.
func TestParseOnceCompareMany(t *testing.T) {
	installed, err := Parse("Debian:12", "2.36-9+deb12u4")
	if err != nil {
		t.Fatal(err)
	}
	if installed.String() != "2.36-9+deb12u4" || installed.Ecosystem() != "Debian:12" {
		t.Errorf("String, Ecosystem = %q, %q", installed.String(), installed.Ecosystem())
	}
	for _, ev := range []struct {
		v    string
		want int
	}{{"0", +1}, {"2.36-9+deb12u3", +1}, {"2.36-9+deb12u4", 0}, {"2.36-9+deb12u10", -1}, {"1:2.0", -1}} {
		got, err := installed.Compare(ev.v)
		if err != nil || got != ev.want {
			t.Errorf("Compare(%q) = %d, %v, want %d", ev.v, got, err, ev.want)
		}
		w, err := Parse("Debian:11", ev.v)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := installed.CompareVersion(w); err != nil || got != ev.want {
			t.Errorf("CompareVersion(%q) = %d, %v, want %d", ev.v, got, err, ev.want)
		}
	}
}

func TestCompareVersionMismatch(t *testing.T) {
	d, err := Parse("Debian:12", "1.0")
	if err != nil {
		t.Fatal(err)
	}
	a, err := Parse("Alpine:v3.18", "1.0")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.CompareVersion(a); err == nil || !strings.Contains(err.Error(), "Alpine:v3.18") {
		t.Errorf("CompareVersion across ecosystems: err = %v, want an error naming both", err)
	}
	if _, err := d.CompareVersion(Version{}); err == nil {
		t.Error("CompareVersion with the zero Version: no error")
	}
}

func TestSupported(t *testing.T) {
	for _, eco := range []string{
		"Debian", "Debian:12", "Ubuntu:22.04:LTS", "Alpine:v3.18", "Wolfi", "Chainguard",
		"Red Hat", "Red Hat:enterprise_linux:9::baseos", "Rocky Linux:9", "AlmaLinux:9",
		"SUSE:Linux Enterprise Server 15 SP5", "openSUSE:Leap 15.5",
		"Go", "PyPI", "npm", "Maven", "RubyGems", "crates.io", "Packagist", "NuGet",
	} {
		if !Supported(eco) {
			t.Errorf("Supported(%q) = false", eco)
		}
	}
	for _, eco := range []string{"", "debian", "Gentoo", "GIT", ":12"} {
		if Supported(eco) {
			t.Errorf("Supported(%q) = true", eco)
		}
	}
}

// TestZero checks OSV's "introduced": "0" in every ecosystem.
func TestZero(t *testing.T) {
	for _, eco := range ecosystemNames() {
		if c, err := Compare(eco, "0", "1"); err != nil || c != -1 {
			t.Errorf("Compare(%q, \"0\", \"1\") = %d, %v, want -1", eco, c, err)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		eco, v, want string
	}{
		{"Debian:12", "", "empty version"},
		{"Debian:12", "abc", "does not start with digit"},
		{"Debian:12", "a:1.0", "epoch in version is not a number"},
		{"Debian:12", ":1.0", "epoch in version is empty"},
		{"Debian:12", "1:", "nothing after colon"},
		{"Debian:12", "1.0-", "revision number is empty"},
		{"Debian:12", "1.0_1", "invalid character '_' in version number"},
		{"Debian:12", "1.0-1_1", "invalid character '_' in revision number"},
		{"Debian:12", "1.0 -1", "whitespace"},
		{"Debian:12", "1234567890:1", "epoch in version is too big"},
		{"Ubuntu:22.04:LTS", "-1", "version number is empty"},
		{"Red Hat", "-", "version has no letter or digit"},
		{"Rocky Linux:9", "1.0-~", "release has no letter or digit"},
		{"AlmaLinux:9", "x:1.0-1", "epoch is not a number"},
		{"SUSE", ":1.0", "epoch is not a number"},
		{"Alpine:v3.18", "1.0-1", "not an apk version"},
		{"Alpine:v3.18", "1.0_foo", "not an apk version"},
		{"Wolfi", "v1.0", "not an apk version"},
		{"Go", "latest", "does not start with a digit"},
		{"Go", "vX", "no digit after the v"},
		{"Go", "go", "does not start with a digit"},
		{"npm", "^1.2.3", "does not start with a digit"},
		{"crates.io", "", "empty version"},
		{"PyPI", "1.0\x00", "control character"},
		{"RubyGems", "1.0\xce", "not valid UTF-8"},
		{"Maven", strings.Repeat("1.", MaxLen), "longer than"},
		{"Gentoo", "1.0", "unknown ecosystem"},
	} {
		_, err := Parse(tc.eco, tc.v)
		if err == nil {
			t.Errorf("Parse(%q, %q): no error, want %q", tc.eco, tc.v, tc.want)
			continue
		}
		var pe *ParseError
		if !errors.As(err, &pe) || pe.Ecosystem != tc.eco || pe.Version != tc.v {
			t.Errorf("Parse(%q, %q): error %v is not a *ParseError naming both", tc.eco, tc.v, err)
		}
		if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.eco) {
			t.Errorf("Parse(%q, %q): error %q, want it to name the ecosystem and contain %q", tc.eco, tc.v, err, tc.want)
		}
		// The bad version is rejected as either operand of Compare.
		if _, err := Compare(tc.eco, "1", tc.v); err == nil {
			t.Errorf("Compare(%q, \"1\", %q): no error", tc.eco, tc.v)
		}
	}
	if _, err := Parse("Gentoo", "1.0"); !errors.Is(err, ErrUnknownEcosystem) {
		t.Errorf("Parse(Gentoo): err = %v, want ErrUnknownEcosystem", err)
	}
}

// ecosystemNames is every base name the package supports, for the fuzz
// targets and benchmarks.
func ecosystemNames() []string {
	var names []string
	for name := range ecosystems {
		names = append(names, name)
	}
	return names
}

// versionLike matches strings made of the characters versions are made of.
// Transitivity is only checked on those: several schemes accept any string
// and order punctuation inconsistently.
var versionLike = regexp.MustCompile(`^[0-9A-Za-z.+~_:-]*$`)

// intransitive lists the ecosystems whose reference algorithms are not
// transitive even on plain versions, so that semantic, which follows
// them, is not either. Maven's ComparableVersion: 1..A0 (1.0.alpha) < 1,
// but 1..A0 > 1A (an int beats a list) and 1A > 1 (an unknown qualifier
// beats the release). PHP's version_compare (Packagist) weighs unknown
// characters like numbers: 1.2X1 > 1.0.1! > 1#0 > 1.2X1.
var intransitive = map[string]bool{"Maven": true, "Packagist": true}

// FuzzCompare parses and compares arbitrary strings in every ecosystem.
// It must never panic, a version must equal itself, swapping the operands
// must negate the result, and the order must be transitive.
func FuzzCompare(f *testing.F) {
	for _, tb := range tables {
		for i, p := range tb.pairs {
			f.Add(p.a, p.b, tb.pairs[(i+1)%len(tb.pairs)].a)
		}
	}
	names := ecosystemNames()
	f.Fuzz(func(t *testing.T, a, b, c string) {
		for _, eco := range names {
			va, errA := Parse(eco, a)
			vb, errB := Parse(eco, b)
			if errA != nil || errB != nil {
				continue
			}
			ab := mustCompare(t, va, vb)
			if self := mustCompare(t, va, va); self != 0 {
				t.Errorf("%s: %q compared with itself = %d", eco, a, self)
			}
			if ba := mustCompare(t, vb, va); ba != -ab {
				t.Errorf("%s: compare(%q, %q) = %d but compare(%q, %q) = %d", eco, a, b, ab, b, a, ba)
			}
			vc, err := Parse(eco, c)
			if err != nil || intransitive[eco] || !versionLike.MatchString(a+b+c) {
				continue
			}
			bc, ac := mustCompare(t, vb, vc), mustCompare(t, va, vc)
			if ab <= 0 && bc <= 0 && ac > 0 || ab >= 0 && bc >= 0 && ac < 0 {
				t.Errorf("%s: not transitive: compare(%q, %q) = %d, compare(%q, %q) = %d, compare(%q, %q) = %d", eco, a, b, ab, b, c, bc, a, c, ac)
			}
		}
	})
}

func mustCompare(t *testing.T, a, b Version) int {
	t.Helper()
	c, err := a.CompareVersion(b)
	if err != nil {
		t.Fatalf("%s: compare(%q, %q): %v", a.Ecosystem(), a, b, err)
	}
	return c
}

func BenchmarkCompare(b *testing.B) {
	for _, bc := range []struct {
		eco, installed, event string
	}{
		{"Debian:12", "2.36-9+deb12u4", "2.36-9+deb12u10"},
		{"Red Hat", "1:3.0.7-27.el9", "1:3.0.7-28.el9_4"},
		{"Alpine:v3.18", "3.1.4-r5", "3.1.4-r6"},
		{"Go", "v0.0.0-20210226172049-e18ecbb05110", "0.17.0"},
		{"npm", "4.17.20", "4.17.21"},
		{"PyPI", "2.31.0", "2.32.0rc1"},
		{"Maven", "2.14.1", "2.15.0-rc1"},
		{"RubyGems", "7.0.8.1", "7.0.8.4"},
		{"NuGet", "13.0.1", "13.0.3"},
		{"crates.io", "1.0.197", "1.0.200"},
		{"Packagist", "5.4.10", "5.4.11"},
	} {
		b.Run(baseName(bc.eco), func(b *testing.B) {
			v, err := Parse(bc.eco, bc.installed)
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if _, err := v.Compare(bc.event); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
