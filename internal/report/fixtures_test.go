package report

import (
	"time"

	"github.com/mamorisec/mamori/internal/assurance"
	"github.com/mamorisec/mamori/internal/inventory"
	"github.com/mamorisec/mamori/internal/license"
	"github.com/mamorisec/mamori/internal/vuln"
)

// testClock is the injected clock of every golden test.
func testClock() time.Time { return time.Date(2024, 5, 10, 8, 0, 0, 0, time.UTC) }

var testOptions = Options{Now: testClock, ToolVersion: "1.2.3-test"}

const (
	digestA = "sha256:4f53cda18c2baa0c0354bb5f9a3ecbe5ed12ab4d8e11ba873c2f11161202b945"
	digestB = "sha256:9b1e9b2f4a3c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6"
	diff0   = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	diff1   = "sha256:2222222222222222222222222222222222222222222222222222222222222222"
	dpkg    = "/var/lib/dpkg/status"
	server  = "/app/bin/server"
)

var (
	layer0 = inventory.Layer{Index: 0, DiffID: diff0, CreatedBy: "# debian.sh --arch 'amd64' out/ 'bookworm' '@1715040000'"}
	layer1 = inventory.Layer{Index: 1, DiffID: diff1, CreatedBy: "COPY app /app # buildkit"}
)

func date(y int, m time.Month, d int) *time.Time {
	t := time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
	return &t
}

// The packages of the fixture image.
var (
	libssl = inventory.Package{
		Name: "libssl3", Version: "3.0.11-1~deb12u2", Type: inventory.TypeDeb,
		PURL: "pkg:deb/debian/libssl3@3.0.11-1~deb12u2?arch=amd64&distro=debian-12",
		Arch: "amd64", SourceName: "openssl", SourceVersion: "3.0.11-1~deb12u2",
		Licenses: []string{"Apache-2.0"}, Path: dpkg, Layer: layer0,
	}
	zlib = inventory.Package{
		Name: "zlib1g", Version: "1:1.2.13.dfsg-1", Type: inventory.TypeDeb,
		PURL: "pkg:deb/debian/zlib1g@1:1.2.13.dfsg-1?arch=amd64&distro=debian-12",
		Arch: "amd64", SourceName: "zlib", SourceVersion: "1:1.2.13.dfsg-1",
		Licenses: []string{"Zlib"}, Path: dpkg, Layer: layer0,
	}
	tar = inventory.Package{
		Name: "tar", Version: "1.34+dfsg-1.2+deb12u1", Type: inventory.TypeDeb,
		PURL: "pkg:deb/debian/tar@1.34%2Bdfsg-1.2%2Bdeb12u1?arch=amd64&distro=debian-12",
		Arch: "amd64", Path: dpkg, Layer: layer0,
	}
	stdlib = inventory.Package{
		Name: "stdlib", Version: "go1.22.1", Type: inventory.TypeGolang,
		PURL: "pkg:golang/stdlib@go1.22.1", Path: server, Layer: layer1,
		Metadata: map[string]string{"goVersion": "go1.22.1"},
	}
	xnet = inventory.Package{
		Name: "golang.org/x/net", Version: "v0.17.0", Type: inventory.TypeGolang,
		PURL: "pkg:golang/golang.org/x/net@v0.17.0", Path: server, Layer: layer1,
		Licenses: []string{"BSD-3-Clause"},
	}
	braces = inventory.Package{
		Name: "braces", Version: "3.0.2", Type: inventory.TypeNPM,
		PURL: "pkg:npm/braces@3.0.2", Licenses: []string{"MIT"},
		Path: "/app/node_modules/braces/package.json", Layer: layer1,
	}
)

func pkgRef(p inventory.Package) vuln.Package { return vuln.PackageOf(&p) }

// fullScan has every kind of finding: a Debian finding fixed and rated by
// the vendor, a Go finding whose code is reachable and one whose code is
// not, a finding with no fix, one suppressed by a VEX statement, one the
// vendor marks not affected, one the vendor will not fix, and a failing
// assurance verdict. Its findings are deliberately out of order.
func fullScan() *Scan {
	s := &Scan{
		SchemaVersion: SchemaVersion,
		Inventory: &inventory.Report{
			SchemaVersion: 1,
			Image: inventory.ImageInfo{
				Ref: "registry:registry.example.com/team/app:1.4", Source: "registry",
				Name: "registry.example.com/team/app:1.4", Digest: digestA, ID: digestB,
				Platform: "linux/amd64",
			},
			OS: &inventory.OS{
				ID: "debian", VersionID: "12", Codename: "bookworm",
				PrettyName: "Debian GNU/Linux 12 (bookworm)", Source: "/etc/os-release",
			},
			Layers:   []inventory.Layer{layer0, layer1},
			Packages: []inventory.Package{braces, stdlib, xnet, libssl, tar, zlib},
		},
		DB: &vuln.DBInfo{
			Path: "/root/.cache/mamori/db/vuln.db", Built: time.Date(2024, 5, 7, 6, 0, 0, 0, time.UTC),
			Records: 245123, Sources: []string{"Debian Security Tracker", "OSV"},
		},
		Vulnerabilities: []vuln.Finding{
			{
				ID: "GO-2024-2687", Aliases: []string{"CVE-2023-45288", "GHSA-4v7x-pqxf-cx7m"},
				Records: []string{"GO-2024-2687"}, Package: pkgRef(xnet), Ecosystem: "Go",
				MatchedName: "golang.org/x/net", MatchedVersion: "v0.17.0",
				Status: vuln.StatusFixed, FixedVersions: []string{"v0.23.0"},
				Severity: vuln.SeverityMedium, SeveritySource: "cvss:3.1",
				CVSS: []vuln.CVSS{{
					Version: "3.1", Vector: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:L",
					Score: 5.3, Severity: vuln.SeverityMedium, Source: "GHSA-4v7x-pqxf-cx7m",
				}},
				Summary:      "HTTP/2 CONTINUATION flood in net/http",
				URL:          "https://pkg.go.dev/vuln/GO-2024-2687",
				References:   []string{"https://go.dev/issue/65051", "https://pkg.go.dev/vuln/GO-2024-2687"},
				Published:    date(2024, 4, 3),
				Reachability: &vuln.Reachability{Status: vuln.ReachableNo},
			},
			{
				ID: "CVE-2024-0727", Records: []string{"DLA-3942-1"}, Package: pkgRef(libssl),
				Ecosystem: "Debian:12", MatchedName: "openssl", MatchedVersion: "3.0.11-1~deb12u2",
				Status: vuln.StatusFixed, FixedVersions: []string{"3.0.13-1~deb12u1"},
				Severity: vuln.SeverityLow, SeveritySource: "vendor:debian",
				CVSS: []vuln.CVSS{{
					Version: "3.1", Vector: "CVSS:3.1/AV:L/AC:L/PR:N/UI:R/S:U/C:N/I:N/A:H",
					Score: 5.5, Severity: vuln.SeverityMedium, Source: "nvd",
				}},
				VendorSeverity: []vuln.VendorSeverity{{Source: "debian", Severity: vuln.SeverityLow}},
				Summary:        "PKCS12 Decoding crashes",
				URL:            "https://security-tracker.debian.org/tracker/CVE-2024-0727",
				Published:      date(2024, 1, 26), Modified: date(2024, 2, 8),
			},
			{
				ID: "CVE-2023-45853", Records: []string{"CVE-2023-45853"}, Package: pkgRef(zlib),
				Ecosystem: "Debian:12", MatchedName: "zlib", MatchedVersion: "1:1.2.13.dfsg-1",
				Status: vuln.StatusNotAffected, Severity: vuln.SeverityCritical, SeveritySource: "cvss:3.1",
				CVSS: []vuln.CVSS{{
					Version: "3.1", Vector: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
					Score: 9.8, Severity: vuln.SeverityCritical, Source: "nvd",
				}},
				Summary: "MiniZip in zlib through 1.3 has an integer overflow",
			},
			{
				ID: "GO-2024-2887", Aliases: []string{"CVE-2024-24790"}, Records: []string{"GO-2024-2887"},
				Package: pkgRef(stdlib), Ecosystem: "Go", MatchedName: "stdlib", MatchedVersion: "1.22.1",
				Status: vuln.StatusFixed, FixedVersions: []string{"1.21.11", "1.22.4"},
				Severity: vuln.SeverityCritical, SeveritySource: "cvss:3.1",
				CVSS: []vuln.CVSS{{
					Version: "3.1", Vector: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
					Score: 9.8, Severity: vuln.SeverityCritical, Source: "nvd",
				}},
				Summary:      "Unexpected behavior from Is methods for IPv4-mapped IPv6 addresses in net/netip",
				Reachability: &vuln.Reachability{Status: vuln.ReachableYes, Symbols: []string{"netip.Addr.IsLoopback"}},
			},
			{
				ID: "CVE-2005-2541", Records: []string{"CVE-2005-2541"}, Package: pkgRef(tar),
				Ecosystem: "Debian:12", MatchedName: "tar", MatchedVersion: "1.34+dfsg-1.2+deb12u1",
				Status: vuln.StatusWontFix, Severity: vuln.SeverityNegligible, SeveritySource: "vendor:debian",
				VendorSeverity: []vuln.VendorSeverity{{Source: "debian", Severity: vuln.SeverityNegligible}},
				Summary:        "Tar 1.15.1 does not properly warn the user when extracting setuid or setgid files",
			},
			{
				ID: "CVE-2024-2511", Records: []string{"CVE-2024-2511"}, Package: pkgRef(libssl),
				Ecosystem: "Debian:12", MatchedName: "openssl", MatchedVersion: "3.0.11-1~deb12u2",
				Status: vuln.StatusNotFixed, Severity: vuln.SeverityUnknown,
				Summary: "Unbounded memory growth with session handling in TLSv1.3",
			},
			{
				ID: "CVE-2024-4068", Aliases: []string{"GHSA-grv7-fg5c-xmjg"},
				Records: []string{"GHSA-grv7-fg5c-xmjg"}, Package: pkgRef(braces), Ecosystem: "npm",
				MatchedName: "braces", MatchedVersion: "3.0.2",
				Status: vuln.StatusFixed, FixedVersions: []string{"3.0.3"},
				Severity: vuln.SeverityHigh, SeveritySource: "cvss:3.1",
				CVSS: []vuln.CVSS{{
					Version: "3.1", Vector: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H",
					Score: 7.5, Severity: vuln.SeverityHigh, Source: "GHSA-grv7-fg5c-xmjg",
				}},
				VendorSeverity: []vuln.VendorSeverity{{Source: "github", Severity: vuln.SeverityHigh}},
				Summary:        "Uncontrolled resource consumption in braces",
				URL:            "https://github.com/advisories/GHSA-grv7-fg5c-xmjg",
				Suppressed: &vuln.Suppression{
					Kind: "vex", Source: "/work/app.openvex.json", Status: "not_affected",
					Justification: "vulnerable_code_not_in_execute_path",
				},
			},
		},
		Assurance: &assurance.Verdict{
			Policy: "production",
			Violations: []assurance.Violation{
				{Control: "max_severity", Message: "1 finding is CRITICAL, above the allowed HIGH", Findings: []string{"GO-2024-2887"}},
				{Control: "max_cvss_score", Message: "the highest CVSS score 9.8 is above 9.0", Findings: []string{"GO-2024-2887"}},
			},
		},
		Warnings: []string{"the vulnerability database is 3 days old"},
		Secrets: []inventory.Finding{
			{Kind: inventory.KindSecret, RuleID: "aws-access-key-id", Title: "AWS access key ID", Severity: "CRITICAL", Category: "AWS",
				Source: inventory.SourceFile, Path: "/app/.env", StartLine: 3, Match: "AWS_ACCESS_KEY_ID=AKIA****************",
				Engine: "builtin", Layer: inventory.Layer{Index: 1, DiffID: "sha256:2222"}, Removed: true},
			{Kind: inventory.KindSecret, RuleID: "url-password", Title: "Password in a URL", Severity: "HIGH",
				Source: inventory.SourceEnv, Path: "DATABASE_URL", Match: "postgres://app:****@db:5432/app"},
		},
		Malware: []inventory.Finding{
			{Kind: inventory.KindMalware, RuleID: "Mamori.Miner.XMRig-Config", Title: "XMRig miner configuration", Severity: "HIGH",
				Category: "miner", Source: inventory.SourceFile, Path: "/opt/<x>/config.json", Engine: "builtin",
				Layer: inventory.Layer{Index: 1, DiffID: "sha256:2222"}},
		},
		Misconfigurations: []inventory.Finding{
			{Kind: inventory.KindMisconfig, RuleID: "MISC-001", Title: "Image runs as root", Severity: "HIGH", Category: "CIS-4.1",
				Source: inventory.SourceConfig, Path: "User", References: []string{"https://docs.docker.com/reference/dockerfile/#user"},
				Metadata: map[string]string{"cis": "4.1", "remediation": "Add a USER instruction with a non-root user."}},
		},
		Scanners: []ScannerRun{
			{Name: "vuln", Engines: []string{"osv"}},
			{Name: "malware", Engines: []string{"builtin"}, Problems: []string{"clamd at unix:/run/clamav/clamd.ctl is not reachable: the scan continued without ClamAV"}},
		},
	}
	s.Licenses = license.Analyze(s.Inventory)
	return s
}

// cleanScan is an image with packages and no findings, without a database
// description or a verdict.
func cleanScan() *Scan {
	return &Scan{
		SchemaVersion: SchemaVersion,
		Inventory: &inventory.Report{
			SchemaVersion: 1,
			Image:         inventory.ImageInfo{Ref: "dir:/srv/rootfs", Source: "dir", Name: "/srv/rootfs"},
			Layers:        []inventory.Layer{{Index: 0, DiffID: "dir:/srv/rootfs"}},
			Packages: []inventory.Package{{
				Name: "stdlib", Version: "go1.23.0", Type: inventory.TypeGolang,
				PURL: "pkg:golang/stdlib@go1.23.0", Path: "/ko-app/hello",
				Layer: inventory.Layer{Index: 0, DiffID: "dir:/srv/rootfs"},
			}},
		},
	}
}

// testScans are the golden test cases.
var testScans = []struct {
	name string
	scan func() *Scan
}{
	{"full", fullScan},
	{"clean", cleanScan},
}
