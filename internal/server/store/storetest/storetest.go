// Package storetest builds synthetic but realistic scan reports for the
// store's tests and benchmarks.
package storetest

import (
	"fmt"
	"math/rand/v2"

	"github.com/mamorisec/mamori/internal/assurance"
	"github.com/mamorisec/mamori/internal/inventory"
	"github.com/mamorisec/mamori/internal/license"
	"github.com/mamorisec/mamori/internal/report"
	"github.com/mamorisec/mamori/internal/vuln"
)

// pkgNames are package names per type, drawn from real ecosystems.
var pkgNames = map[string][]string{
	inventory.TypeDeb:    {"libc6", "openssl", "libssl3", "zlib1g", "curl", "libcurl4", "bash", "coreutils", "tar", "gzip", "libxml2", "libsqlite3-0", "perl-base", "libgnutls30", "libsystemd0", "apt", "dpkg", "login", "passwd", "util-linux"},
	inventory.TypeMaven:  {"org.apache.logging.log4j:log4j-core", "org.apache.logging.log4j:log4j-api", "com.fasterxml.jackson.core:jackson-databind", "org.springframework:spring-core", "org.yaml:snakeyaml", "commons-io:commons-io", "io.netty:netty-handler", "com.google.guava:guava"},
	inventory.TypeNPM:    {"lodash", "express", "minimist", "axios", "qs", "semver", "debug", "ws", "jsonwebtoken", "moment"},
	inventory.TypePyPI:   {"requests", "urllib3", "django", "flask", "jinja2", "pyyaml", "cryptography", "setuptools", "pillow", "numpy"},
	inventory.TypeGolang: {"golang.org/x/net", "golang.org/x/crypto", "github.com/gin-gonic/gin", "google.golang.org/grpc", "golang.org/x/text", "stdlib"},
}

var types = []string{inventory.TypeDeb, inventory.TypeMaven, inventory.TypeNPM, inventory.TypePyPI, inventory.TypeGolang}

// Scan returns a report of an image with nPkgs packages and nVulns
// vulnerability findings, a few secrets, misconfigurations and licenses,
// all derived from seed. Every 10th image (by seed) has log4j-core below
// 2.17.1 and CVE-2021-44228 (alias GHSA-jfh8-c2jp-5v3q).
func Scan(seed uint64, nPkgs, nVulns int) *report.Scan {
	r := rand.New(rand.NewPCG(seed, 0x6d616d6f7269))
	inv := &inventory.Report{SchemaVersion: 1, Image: inventory.ImageInfo{Ref: fmt.Sprintf("registry.example.com/team%d/app%d:1.%d", seed%7, seed, seed%5), Digest: fmt.Sprintf("sha256:%064x", seed)}}
	lic := &license.Report{}
	for i := 0; i < nPkgs; i++ {
		typ := types[r.IntN(len(types))]
		names := pkgNames[typ]
		name := names[r.IntN(len(names))]
		if i >= len(names) || r.IntN(4) == 0 || name == "org.apache.logging.log4j:log4j-core" {
			name = fmt.Sprintf("%s-%d", name, i)
		}
		ver := fmt.Sprintf("%d.%d.%d", r.IntN(5), r.IntN(30), r.IntN(20))
		if typ == inventory.TypeDeb {
			ver += fmt.Sprintf("-%d+deb12u%d", r.IntN(5)+1, r.IntN(4)+1)
		}
		if typ == inventory.TypeGolang {
			ver = "v" + ver
		}
		if i == 0 {
			typ, name, ver = inventory.TypeMaven, "org.apache.logging.log4j:log4j-core", "2.17.1"
			if seed%10 == 0 {
				ver = fmt.Sprintf("2.%d.0", 10+seed%5)
			}
		}
		inv.Packages = append(inv.Packages, inventory.Package{
			Type: typ, Name: name, Version: ver, PURL: fmt.Sprintf("pkg:%s/%s@%s", typ, name, ver),
			Path: "/usr/lib/" + typ + "/" + name, Licenses: []string{"MIT"},
		})
		lic.Packages = append(lic.Packages, license.PackageLicense{Type: typ, Name: name, Version: ver, Expression: []string{"MIT", "Apache-2.0", "GPL-2.0-only", "BSD-3-Clause"}[r.IntN(4)], Category: license.Permissive})
	}
	rep := &report.Scan{SchemaVersion: report.SchemaVersion, Inventory: inv, Licenses: lic}
	for i := 0; i < nVulns && len(inv.Packages) > 0; i++ {
		p := &inv.Packages[r.IntN(len(inv.Packages))]
		id := fmt.Sprintf("CVE-20%02d-%d", 15+r.IntN(10), 1000+r.IntN(40000))
		f := vuln.Finding{
			ID: id, Aliases: []string{fmt.Sprintf("GHSA-%04x-%04x-%04x", r.IntN(65536), r.IntN(65536), r.IntN(65536))},
			Package: vuln.PackageOf(p), Status: vuln.StatusNotFixed,
			Severity: vuln.Severity(r.IntN(6)), Summary: "synthetic vulnerability " + id,
			CVSS: []vuln.CVSS{{Version: "3.1", Score: float64(r.IntN(100)) / 10}},
		}
		if r.IntN(2) == 0 {
			f.Status, f.FixedVersions = vuln.StatusFixed, []string{p.Version + ".1"}
		}
		if i == 0 && seed%10 == 0 {
			f.ID, f.Aliases, f.Package = "CVE-2021-44228", []string{"GHSA-jfh8-c2jp-5v3q"}, vuln.PackageOf(&inv.Packages[0])
			f.Severity, f.Status, f.FixedVersions = vuln.SeverityCritical, vuln.StatusFixed, []string{"2.15.0"}
		}
		rep.Vulnerabilities = append(rep.Vulnerabilities, f)
	}
	rep.Secrets = []inventory.Finding{{Kind: inventory.KindSecret, RuleID: "aws-access-key-id", Title: "AWS access key", Severity: "CRITICAL", Source: inventory.SourceFile, Path: "/app/.env", StartLine: 3, Match: "AWS_ACCESS_KEY_ID=AKIA****************"}}
	rep.Misconfigurations = []inventory.Finding{{Kind: inventory.KindMisconfig, RuleID: "CIS-4.1", Title: "runs as root", Severity: "MEDIUM", Source: inventory.SourceConfig}}
	rep.Assurance = &assurance.Verdict{Policy: "default", Pass: seed%3 != 0}
	return rep
}
