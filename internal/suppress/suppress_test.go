package suppress

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mamorisec/mamori/internal/inventory"
	"github.com/mamorisec/mamori/internal/report"
	"github.com/mamorisec/mamori/internal/vuln"
)

var now = time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)

const digest = "sha256:4c8e0a7f2b1d9e6c3a5f8b0d2e4c6a8f1b3d5e7f9a0c2e4b6d8f0a1c3e5b7d9f"

// Packages of the payments-api image the test scan describes.
var (
	libc6   = pkg("deb", "libc6", "2.36-9+deb12u3", "pkg:deb/debian/libc6@2.36-9%2Bdeb12u3?arch=amd64&distro=debian-12&upstream=glibc", "/var/lib/dpkg/status", "glibc")
	libcBin = pkg("deb", "libc-bin", "2.36-9+deb12u3", "pkg:deb/debian/libc-bin@2.36-9%2Bdeb12u3?arch=amd64&distro=debian-12&upstream=glibc", "/var/lib/dpkg/status", "glibc")
	openssl = pkg("deb", "openssl", "3.0.11-1~deb12u2", "pkg:deb/debian/openssl@3.0.11-1~deb12u2?arch=amd64&distro=debian-12", "/var/lib/dpkg/status", "")
	libssl  = pkg("deb", "libssl3", "3.0.11-1~deb12u2", "pkg:deb/debian/libssl3@3.0.11-1~deb12u2?arch=amd64&distro=debian-12&upstream=openssl", "/var/lib/dpkg/status", "openssl")
	zlib    = pkg("deb", "zlib1g", "1:1.2.13.dfsg-1", "pkg:deb/debian/zlib1g@1%3A1.2.13.dfsg-1?arch=amd64&distro=debian-12&upstream=zlib", "/var/lib/dpkg/status", "zlib")
	mainMod = pkg("golang", "github.com/example/payments-api", "v1.4.2", "pkg:golang/github.com/example/payments-api@v1.4.2", "/usr/local/bin/payments-api", "")
	xnetApp = pkg("golang", "golang.org/x/net", "v0.15.0", "pkg:golang/golang.org/x/net@v0.15.0", "/usr/local/bin/payments-api", "")
	xnetOpt = pkg("golang", "golang.org/x/net", "v0.15.0", "pkg:golang/golang.org/x/net@v0.15.0", "/opt/tools/helper", "")
	semver1 = pkg("npm", "semver", "7.5.1", "pkg:npm/semver@7.5.1", "/app/node_modules/semver/package.json", "")
	semver2 = pkg("npm", "semver", "7.5.2", "pkg:npm/semver@7.5.2", "/app/node_modules/npm/node_modules/semver/package.json", "")
)

func pkg(typ, name, version, purl, path, source string) inventory.Package {
	return inventory.Package{Type: typ, Name: name, Version: version, PURL: purl, Path: path, SourceName: source}
}

// testScan is a scan of ghcr.io/example/payments-api:1.4.2.
func testScan() *report.Scan {
	pkgs := []inventory.Package{libc6, libcBin, openssl, libssl, zlib, mainMod, xnetApp, xnetOpt, semver1, semver2}
	f := func(id string, p inventory.Package, aliases ...string) vuln.Finding {
		return vuln.Finding{ID: id, Aliases: aliases, Package: vuln.PackageOf(&p), Severity: vuln.SeverityHigh, Status: vuln.StatusNotFixed}
	}
	pre := f("CVE-2020-0001", openssl)
	pre.Suppressed = &vuln.Suppression{Kind: "policy", Justification: "set before"}
	return &report.Scan{
		Inventory: &inventory.Report{
			Image: inventory.ImageInfo{
				Ref: "ghcr.io/example/payments-api:1.4.2", Source: "registry", Name: "ghcr.io/example/payments-api:1.4.2",
				Digest: digest, Platform: "linux/amd64",
			},
			Packages: pkgs,
		},
		Vulnerabilities: []vuln.Finding{
			f("CVE-2023-4911", libc6, "DSA-5514-1"),
			f("CVE-2023-4911", libcBin),
			f("CVE-2023-5678", openssl),
			f("CVE-2024-0727", openssl),
			f("CVE-2024-0727", libssl),
			f("CVE-2023-44487", xnetApp, "GHSA-xpw8-rcwv-8f8p", "GO-2023-2102"),
			f("CVE-2023-44487", xnetOpt, "GHSA-xpw8-rcwv-8f8p", "GO-2023-2102"),
			f("CVE-2023-45853", zlib),
			f("CVE-2024-2961", libc6),
			f("CVE-2024-2961", xnetApp),
			f("CVE-2022-1234", openssl),
			f("CVE-2022-25883", semver1, "GHSA-c2qf-rxjj-qqgw"),
			f("CVE-2022-25883", semver2, "GHSA-c2qf-rxjj-qqgw"),
			f("CVE-2023-0464", openssl),
			f("CVE-2023-0464", libssl),
			pre,
		},
	}
}

// key names a finding in test tables.
func key(f *vuln.Finding) string { return f.ID + " " + f.Package.Name + " " + f.Package.Path }

func mustIgnore(t *testing.T, path string) *IgnoreFile {
	t.Helper()
	f, err := LoadIgnore(path)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func mustVEX(t *testing.T, path string) *VEX {
	t.Helper()
	v, err := LoadVEX(path)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestApply checks which findings each source suppresses, and how.
func TestApply(t *testing.T) {
	const (
		ignore   = "testdata/mamoriignore.yaml"
		imageVEX = "testdata/vex/image.openvex.json"
		pkgVEX   = "testdata/vex/packages.openvex.json"
	)
	type want struct{ kind, source, status, justification string }
	notSuppressed := want{}
	pre := want{"policy", "", "", "set before"}
	tests := []struct {
		name         string
		ignore       []string
		vex          []string
		want         map[string]want // by key; findings not listed must stay unsuppressed
		wantWarnings []string        // substrings, one per warning
	}{
		{
			name:   "ignore file",
			ignore: []string{ignore},
			want: map[string]want{
				"CVE-2023-45853 zlib1g /var/lib/dpkg/status":                                   {"ignore", ignore, "", "zlib's minizip is not used by any binary in the image."},
				"CVE-2024-2961 libc6 /var/lib/dpkg/status":                                     {"ignore", ignore, "", "iconv with ISO-2022-CN-EXT is never called; tracked in SEC-412."},
				"CVE-2023-44487 golang.org/x/net /usr/local/bin/payments-api":                  {"ignore", ignore, "", "HTTP/2 is disabled in our binaries."},
				"CVE-2023-0464 openssl /var/lib/dpkg/status":                                   {"ignore", ignore, "", "Policy constraints are not used."},
				"CVE-2023-0464 libssl3 /var/lib/dpkg/status":                                   {"ignore", ignore, "", "Policy constraints are not used."},
				"CVE-2020-0001 openssl /var/lib/dpkg/status":                                   pre,
				"CVE-2024-2961 golang.org/x/net /usr/local/bin/payments-api":                   notSuppressed, // package glibc, type deb
				"CVE-2023-44487 golang.org/x/net /opt/tools/helper":                            notSuppressed, // path does not match
				"CVE-2022-1234 openssl /var/lib/dpkg/status":                                   notSuppressed, // expired
				"CVE-2022-25883 semver /app/node_modules/semver/package.json":                  notSuppressed,
				"CVE-2023-4911 libc6 /var/lib/dpkg/status":                                     notSuppressed,
				"CVE-2024-0727 openssl /var/lib/dpkg/status":                                   notSuppressed,
				"CVE-2022-25883 semver /app/node_modules/npm/node_modules/semver/package.json": notSuppressed,
			},
			wantWarnings: []string{"ignore file testdata/mamoriignore.yaml: rule 4 (CVE-2022-1234) expired on 2024-10-01"},
		},
		{
			name: "image VEX",
			vex:  []string{imageVEX},
			want: map[string]want{
				"CVE-2023-4911 libc6 /var/lib/dpkg/status": {"vex", imageVEX, "not_affected",
					"vulnerable_code_not_in_execute_path; The service runs without setuid binaries; GLIBC_TUNABLES is not honoured."},
				"CVE-2023-4911 libc-bin /var/lib/dpkg/status": notSuppressed, // not a listed subcomponent
				"CVE-2023-5678 openssl /var/lib/dpkg/status":  notSuppressed, // under_investigation
				"CVE-2024-0727 openssl /var/lib/dpkg/status":  notSuppressed, // affected overrides the earlier not_affected
				"CVE-2024-0727 libssl3 /var/lib/dpkg/status":  notSuppressed,
				"CVE-2020-0001 openssl /var/lib/dpkg/status":  pre,
			},
			wantWarnings: []string{"image.openvex.json: statement 5: products[0] has no purl"},
		},
		{
			name: "package VEX",
			vex:  []string{pkgVEX},
			want: map[string]want{
				"CVE-2023-44487 golang.org/x/net /usr/local/bin/payments-api": {"vex", pkgVEX, "not_affected",
					"vulnerable_code_not_in_execute_path; govulncheck reports no call path."},
				"CVE-2023-44487 golang.org/x/net /opt/tools/helper":                            notSuppressed, // not inside the product
				"CVE-2024-0727 openssl /var/lib/dpkg/status":                                   {"vex", pkgVEX, "fixed", "fixed in this product; Backported patch in our rebuilt openssl."},
				"CVE-2024-0727 libssl3 /var/lib/dpkg/status":                                   notSuppressed,
				"CVE-2022-25883 semver /app/node_modules/semver/package.json":                  {"vex", pkgVEX, "not_affected", "Only fixed version strings are parsed."},
				"CVE-2022-25883 semver /app/node_modules/npm/node_modules/semver/package.json": notSuppressed, // other version
				"CVE-2020-0001 openssl /var/lib/dpkg/status":                                   pre,
			},
		},
		{
			name: "later document overrides an earlier statement",
			vex:  []string{imageVEX, pkgVEX},
			want: map[string]want{
				"CVE-2023-4911 libc6 /var/lib/dpkg/status": {"vex", imageVEX, "not_affected",
					"vulnerable_code_not_in_execute_path; The service runs without setuid binaries; GLIBC_TUNABLES is not honoured."},
				"CVE-2023-44487 golang.org/x/net /usr/local/bin/payments-api": {"vex", pkgVEX, "not_affected",
					"vulnerable_code_not_in_execute_path; govulncheck reports no call path."},
				"CVE-2024-0727 openssl /var/lib/dpkg/status":                  {"vex", pkgVEX, "fixed", "fixed in this product; Backported patch in our rebuilt openssl."},
				"CVE-2022-25883 semver /app/node_modules/semver/package.json": {"vex", pkgVEX, "not_affected", "Only fixed version strings are parsed."},
				"CVE-2020-0001 openssl /var/lib/dpkg/status":                  pre,
			},
			wantWarnings: []string{"statement 5: products[0] has no purl"},
		},
		{
			name:   "ignore rules win over VEX",
			ignore: []string{ignore},
			vex:    []string{imageVEX, pkgVEX},
			want: map[string]want{
				"CVE-2023-44487 golang.org/x/net /usr/local/bin/payments-api": {"ignore", ignore, "", "HTTP/2 is disabled in our binaries."},
				"CVE-2023-4911 libc6 /var/lib/dpkg/status": {"vex", imageVEX, "not_affected",
					"vulnerable_code_not_in_execute_path; The service runs without setuid binaries; GLIBC_TUNABLES is not honoured."},
				"CVE-2022-1234 openssl /var/lib/dpkg/status":                  notSuppressed,
				"CVE-2024-0727 openssl /var/lib/dpkg/status":                  {"vex", pkgVEX, "fixed", "fixed in this product; Backported patch in our rebuilt openssl."},
				"CVE-2023-45853 zlib1g /var/lib/dpkg/status":                  {"ignore", ignore, "", "zlib's minizip is not used by any binary in the image."},
				"CVE-2024-2961 libc6 /var/lib/dpkg/status":                    {"ignore", ignore, "", "iconv with ISO-2022-CN-EXT is never called; tracked in SEC-412."},
				"CVE-2022-25883 semver /app/node_modules/semver/package.json": {"vex", pkgVEX, "not_affected", "Only fixed version strings are parsed."},
				"CVE-2023-0464 openssl /var/lib/dpkg/status":                  {"ignore", ignore, "", "Policy constraints are not used."},
				"CVE-2023-0464 libssl3 /var/lib/dpkg/status":                  {"ignore", ignore, "", "Policy constraints are not used."},
				"CVE-2020-0001 openssl /var/lib/dpkg/status":                  pre,
			},
			wantWarnings: []string{"rule 4 (CVE-2022-1234) expired", "statement 5: products[0] has no purl"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r Rules
			r.Now = now
			for _, p := range tt.ignore {
				r.Ignore = append(r.Ignore, mustIgnore(t, p))
			}
			for _, p := range tt.vex {
				r.VEX = append(r.VEX, mustVEX(t, p))
			}
			s := testScan()
			before := len(s.Vulnerabilities)
			warnings := Apply(s, r)
			if len(s.Vulnerabilities) != before {
				t.Fatalf("Apply changed the number of findings from %d to %d", before, len(s.Vulnerabilities))
			}
			if len(warnings) != len(tt.wantWarnings) {
				t.Errorf("warnings = %q, want %d like %q", warnings, len(tt.wantWarnings), tt.wantWarnings)
			} else {
				for i, w := range tt.wantWarnings {
					if !strings.Contains(warnings[i], w) {
						t.Errorf("warning %d = %q, want it to contain %q", i, warnings[i], w)
					}
				}
			}
			suppressedKeys := 0
			for i := range s.Vulnerabilities {
				f := &s.Vulnerabilities[i]
				k := key(f)
				w, listed := tt.want[k]
				var got want
				if f.Suppressed != nil {
					got = want{f.Suppressed.Kind, f.Suppressed.Source, f.Suppressed.Status, f.Suppressed.Justification}
				}
				if !listed && got != notSuppressed {
					t.Errorf("%s: unexpected suppression %+v", k, got)
				}
				if listed && got != w {
					t.Errorf("%s: suppression = %+v, want %+v", k, got, w)
				}
				if got != notSuppressed {
					suppressedKeys++
				}
			}
			if suppressedKeys == 0 {
				t.Error("nothing suppressed")
			}
		})
	}
}

func TestApplyIgnoreExpiresRecorded(t *testing.T) {
	s := testScan()
	Apply(s, Rules{Now: now, Ignore: []*IgnoreFile{mustIgnore(t, "testdata/mamoriignore.yaml")}})
	for i := range s.Vulnerabilities {
		f := &s.Vulnerabilities[i]
		if f.ID == "CVE-2023-0464" {
			want := time.Date(2099, 6, 30, 12, 0, 0, 0, time.UTC)
			if f.Suppressed == nil || f.Suppressed.Expires == nil || !f.Suppressed.Expires.Equal(want) {
				t.Errorf("%s: suppression %+v, want expiry %v", key(f), f.Suppressed, want)
			}
		}
	}
}

func TestApplyExpiryBoundary(t *testing.T) {
	fl, err := ParseIgnore("x.yaml", []byte("- id: CVE-1\n  reason: r\n  expires: 2025-01-01\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		now        time.Time
		suppressed bool
	}{
		{time.Date(2024, 12, 31, 23, 59, 59, 0, time.UTC), true},
		{time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), false},
	} {
		s := &report.Scan{Vulnerabilities: []vuln.Finding{{ID: "CVE-1"}}}
		w := Apply(s, Rules{Now: tt.now, Ignore: []*IgnoreFile{fl}})
		if got := s.Vulnerabilities[0].Suppressed != nil; got != tt.suppressed {
			t.Errorf("at %v: suppressed = %v, want %v", tt.now, got, tt.suppressed)
		}
		if tt.suppressed == (len(w) > 0) {
			t.Errorf("at %v: warnings %q", tt.now, w)
		}
	}
}

// TestApplyWithoutInventory checks that a scan without an inventory is
// matched by package purl only.
func TestApplyWithoutInventory(t *testing.T) {
	s := testScan()
	s.Inventory = nil
	Apply(s, Rules{Now: now, VEX: []*VEX{mustVEX(t, "testdata/vex/image.openvex.json"), mustVEX(t, "testdata/vex/packages.openvex.json")}})
	var got []string
	for i := range s.Vulnerabilities {
		if f := &s.Vulnerabilities[i]; f.Suppressed != nil && f.Suppressed.Kind == "vex" {
			got = append(got, key(f))
		}
	}
	want := []string{
		"CVE-2024-0727 openssl /var/lib/dpkg/status",
		"CVE-2022-25883 semver /app/node_modules/semver/package.json",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("suppressed %q, want %q", got, want)
	}
}

func TestParseIgnore(t *testing.T) {
	fl := mustIgnore(t, "testdata/mamoriignore.yaml")
	if len(fl.rules) != 5 {
		t.Fatalf("got %d rules, want 5", len(fl.rules))
	}
	r := fl.rules[1]
	if r.index != 2 || r.id != "CVE-2024-2961" || r.pkg != "glibc" || r.typ != "deb" || r.expires == nil ||
		!r.expires.Equal(time.Date(2099, 12, 31, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("rule 2 = %+v", r)
	}
	for _, data := range []string{"", "# nothing ignored yet\n", "---\n"} {
		if fl, err := ParseIgnore("empty.yaml", []byte(data)); err != nil || len(fl.rules) != 0 {
			t.Errorf("ParseIgnore(%q) = %+v, %v", data, fl, err)
		}
	}
}

func TestParseIgnoreErrors(t *testing.T) {
	tests := []struct {
		name, data string
		want       []string
	}{
		{"mapping", "id: CVE-1\nreason: r\n", []string{"line 1", "must be a list of rules"}},
		{"no reason", "- id: CVE-1\n  reason: r\n- id: CVE-2\n", []string{"rule 2 (line 3)", "reason is missing"}},
		{"blank reason", "- id: CVE-1\n  reason: '  '\n", []string{"rule 1", "reason is missing"}},
		{"no id", "- reason: r\n", []string{"rule 1", "id"}},
		{"id with space", "- id: CVE-1 CVE-2\n  reason: r\n", []string{"rule 1", `"CVE-1 CVE-2"`}},
		{"unknown key", "- id: CVE-1\n  reason: r\n  expiry: 2025-01-01\n", []string{"rule 1", `unknown key "expiry"`, "line 3"}},
		{"rule not a mapping", "- CVE-1\n", []string{"rule 1", "must be a mapping"}},
		{"bad date", "- id: CVE-1\n  reason: r\n  expires: 31/12/2025\n", []string{"rule 1", `expires "31/12/2025"`}},
		{"bad glob", "- id: CVE-1\n  reason: r\n  path: /usr/[lib\n", []string{"rule 1", "path pattern"}},
		{"reason not a string", "- id: CVE-1\n  reason: [a]\n", []string{"rule 1", "line 2"}},
		{"duplicate key", "- id: CVE-1\n  id: CVE-2\n  reason: r\n", []string{"rule 1", "already defined"}},
		{"two documents", "- id: CVE-1\n  reason: r\n---\n- id: CVE-2\n  reason: r\n", []string{"more than one YAML document"}},
		{"syntax", "- id: [\n", []string{"line"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseIgnore(".mamoriignore.yaml", []byte(tt.data))
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "ignore file .mamoriignore.yaml: ") {
				t.Errorf("error does not name the file: %s", msg)
			}
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
		})
	}
	if _, err := LoadIgnore("testdata/missing.yaml"); err == nil || !strings.Contains(err.Error(), "testdata/missing.yaml") {
		t.Errorf("missing file: %v", err)
	}
}

func TestParseVEX(t *testing.T) {
	v := mustVEX(t, "testdata/vex/image.openvex.json")
	if len(v.statements) != 5 {
		t.Fatalf("got %d statements, want 5", len(v.statements))
	}
	st := v.statements[0]
	if !slices.Equal(st.vulns, []string{"CVE-2023-4911", "DSA-5514-1"}) || st.status != StatusNotAffected ||
		len(st.products) != 1 || len(st.products[0].subs) != 1 || !st.time.Equal(time.Date(2024, 6, 1, 10, 0, 0, 0, time.UTC)) {
		t.Errorf("statement 1 = %+v", st)
	}
	if got := v.statements[2].time; !got.Equal(time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("statement 3 time = %v, want its own timestamp", got)
	}
	if len(v.statements[4].products) != 0 || len(v.warnings) != 1 {
		t.Errorf("product without purl: %+v, warnings %q", v.statements[4], v.warnings)
	}
}

const vexHead = `{"@context": "https://openvex.dev/ns/v0.2.0", "author": "a", "timestamp": "2024-01-01T00:00:00Z", "statements": [`

func TestParseVEXErrors(t *testing.T) {
	stmt := func(s string) string { return vexHead + s + "]}" }
	tests := []struct {
		name, data string
		want       []string
	}{
		{"empty", "", []string{"file is empty"}},
		{"syntax", "{\n  \"@context\": \n}", []string{"line 3"}},
		{"trailing data", vexHead + "]} {}", []string{"data after the end"}},
		{"not an object", "[]", []string{"line 1", "must be a JSON object"}},
		{"no context", `{"author": "a", "timestamp": "2024-01-01T00:00:00Z"}`, []string{"@context is missing"}},
		{"old context", `{"@context": "https://openvex.dev/ns/v0.0.1", "author": "a", "timestamp": "2024-01-01T00:00:00Z"}`, []string{"v0.0.1", "v0.2"}},
		{"no author", `{"@context": "https://openvex.dev/ns", "timestamp": "2024-01-01T00:00:00Z"}`, []string{"author is missing"}},
		{"no timestamp", `{"@context": "https://openvex.dev/ns", "author": "a"}`, []string{"timestamp is missing"}},
		{"bad timestamp", `{"@context": "https://openvex.dev/ns", "author": "a", "timestamp": "yesterday"}`, []string{"yesterday"}},
		{"unknown field", `{"@context": "https://openvex.dev/ns", "author": "a", "timestamp": "2024-01-01T00:00:00Z", "statement": []}`, []string{`unknown field "statement"`}},
		{"v0.0.1 vulnerability string", stmt(`{"vulnerability": "CVE-1", "products": ["pkg:npm/a"], "status": "fixed"}`), []string{"line 1", "statements.vulnerability", "object"}},
		{"no vulnerability", stmt(`{"products": [{"@id": "pkg:npm/a"}], "status": "fixed"}`), []string{"statement 1", "vulnerability.name is missing"}},
		{"bad status", stmt(`{"vulnerability": {"name": "CVE-1"}, "products": [{"@id": "pkg:npm/a"}], "status": "unaffected"}`), []string{"statement 1", `status "unaffected"`}},
		{"bad justification", stmt(`{"vulnerability": {"name": "CVE-1"}, "products": [{"@id": "pkg:npm/a"}], "status": "not_affected", "justification": "trust_me"}`), []string{`justification "trust_me"`}},
		{"not_affected without reason", stmt(`{"vulnerability": {"name": "CVE-1"}, "products": [{"@id": "pkg:npm/a"}], "status": "not_affected"}`), []string{"statement 1", "justification or an impact_statement"}},
		{"no products", stmt(`{"vulnerability": {"name": "CVE-1"}, "status": "fixed"}`), []string{"statement 1", "products is missing"}},
		{"bad purl", stmt(`{"vulnerability": {"name": "CVE-1"}, "products": [{"@id": "pkg:"}], "status": "fixed"}`), []string{"statement 1", "products[0]", "not a valid purl"}},
		{"bad identifier purl", stmt(`{"vulnerability": {"name": "CVE-1"}, "products": [{"identifiers": {"purl": "npm/a"}}], "status": "fixed"}`), []string{"products[0]", "identifiers.purl"}},
		{"subcomponent without purl", stmt(`{"vulnerability": {"name": "CVE-1"}, "products": [{"@id": "pkg:oci/a", "subcomponents": [{"@id": "https://x"}]}], "status": "fixed"}`), []string{"subcomponents[0] has no purl"}},
		{"unknown statement field", stmt(`{"vulnerability": {"name": "CVE-1"}, "products": [{"@id": "pkg:npm/a"}], "status": "fixed", "justifcation": "x"}`), []string{`unknown field "justifcation"`}},
		{"nested subcomponents", stmt(`{"vulnerability": {"name": "CVE-1"}, "products": [{"@id": "pkg:oci/a", "subcomponents": [{"@id": "pkg:npm/a", "subcomponents": []}]}], "status": "fixed"}`), []string{`unknown field "subcomponents"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseVEX("app.openvex.json", []byte(tt.data))
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "VEX document app.openvex.json: ") {
				t.Errorf("error does not name the file: %s", msg)
			}
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
		})
	}
	if _, err := LoadVEX("testdata/missing.json"); err == nil || !strings.Contains(err.Error(), "testdata/missing.json") {
		t.Errorf("missing file: %v", err)
	}
}

// TestApplyVEXOrder checks that the most recent statement decides and that
// a tie goes to the statement read last.
func TestApplyVEXOrder(t *testing.T) {
	doc := func(ts, status string) *VEX {
		extra := ""
		if status == StatusNotAffected {
			extra = `, "justification": "component_not_present"`
		}
		v, err := ParseVEX(status+"-"+ts+".json", []byte(`{"@context": "https://openvex.dev/ns", "author": "a", "timestamp": "`+ts+`",
			"statements": [{"vulnerability": {"name": "CVE-2022-25883"}, "products": [{"@id": "pkg:npm/semver"}], "status": "`+status+`"`+extra+`}]}`))
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	const early, late = "2024-01-01T00:00:00Z", "2024-02-01T00:00:00Z"
	tests := []struct {
		name string
		docs []*VEX
		want bool
	}{
		{"same time, affected read last", []*VEX{doc(early, StatusNotAffected), doc(early, StatusAffected)}, false},
		{"same time, not_affected read last", []*VEX{doc(early, StatusAffected), doc(early, StatusNotAffected)}, true},
		{"older statement read last does not override", []*VEX{doc(late, StatusFixed), doc(early, StatusUnderInvestigation)}, true},
		{"newer statement read last overrides", []*VEX{doc(early, StatusFixed), doc(late, StatusUnderInvestigation)}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &report.Scan{Vulnerabilities: []vuln.Finding{{ID: "GHSA-c2qf-rxjj-qqgw", Aliases: []string{"CVE-2022-25883"},
				Package: vuln.PackageOf(&semver1)}}}
			Apply(s, Rules{Now: now, VEX: tt.docs})
			if got := s.Vulnerabilities[0].Suppressed != nil; got != tt.want {
				t.Errorf("suppressed = %v, want %v (%+v)", got, tt.want, s.Vulnerabilities[0].Suppressed)
			}
		})
	}
}
