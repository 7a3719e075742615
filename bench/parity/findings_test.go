package parity

import (
	"reflect"
	"strings"
	"testing"
)

// govulncheckStream is a govulncheck -json stream in the form v1.9.0
// writes, for one vulnerability found at every level.
const govulncheckStream = `{"config":{"protocol_version":"v1.0.0","scanner_name":"govulncheck","scan_level":"symbol","scan_mode":"binary"}}
{"progress":{"message":"Scanning your binary for known vulnerabilities..."}}
{"osv":{"id":"GO-2099-0001","aliases":["CVE-2099-1111","GHSA-aaaa-bbbb-cccc"]}}
{"osv":{"id":"GO-2099-0002","aliases":["CVE-2099-2222"]}}
{"finding":{"osv":"GO-2099-0001","fixed_version":"v1.2.3","trace":[{"module":"example.com/mod","version":"v1.0.0"}]}}
{"finding":{"osv":"GO-2099-0001","fixed_version":"v1.2.3","trace":[{"module":"example.com/mod","version":"v1.0.0","package":"example.com/mod/pkg"}]}}
{"finding":{"osv":"GO-2099-0001","fixed_version":"v1.2.3","trace":[{"module":"example.com/mod","version":"v1.0.0","package":"example.com/mod/pkg","function":"Get","receiver":"*Client"}]}}
{"finding":{"osv":"GO-2099-0001","fixed_version":"v1.2.3","trace":[{"module":"example.com/mod","version":"v1.0.0","package":"example.com/mod/pkg","function":"Parse"}]}}
{"finding":{"osv":"GO-2099-0002","trace":[{"module":"stdlib","version":"v1.26.8","package":"net/http"}]}}
`

const osvScannerReport = `{"results":[
 {"source":{"path":"/var/lib/dpkg/status","type":"os"},"packages":[
  {"package":{"name":"expat","os_package_name":"libexpat1","version":"2.5.0-1+deb12u1","ecosystem":"Debian:12"},
   "vulnerabilities":[{"id":"DEBIAN-CVE-2099-1","upstream":["CVE-2099-1"]}]}]},
 {"source":{"path":"/usr/lib/python3/site-packages/PyYAML-5.3.dist-info/METADATA","type":"artifact"},"packages":[
  {"package":{"name":"PyYAML","version":"5.3","ecosystem":"PyPI"},
   "vulnerabilities":[{"id":"PYSEC-2099-7","aliases":["CVE-2099-2222"]}]}]},
 {"source":{"path":"/usr/local/bin/app","type":"artifact"},"packages":[
  {"package":{"name":"example.com/mod","version":"1.0.0","ecosystem":"Go"},
   "vulnerabilities":[{"id":"GO-2099-0001","aliases":["CVE-2099-1111"]}]},
  {"package":{"name":"example.com/clean","version":"1.0.0","ecosystem":"Go"}}]}
]}`

const mamoriReport = `{"vulnerabilities":[
 {"id":"CVE-2099-1111","aliases":["GHSA-aaaa-bbbb-cccc"],"records":["GO-2099-0001"],
  "package":{"name":"example.com/mod","version":"v1.0.0","type":"golang","path":"usr/local/bin/app"},
  "reachability":{"status":"reachable","symbols":["example.com/mod/pkg.Client.Get"]}},
 {"id":"CVE-2099-2222","records":["GO-2099-0002"],
  "package":{"name":"stdlib","version":"go1.26.8","type":"golang"},
  "reachability":{"status":"not-reachable"}},
 {"id":"CVE-2099-3333","records":["PYSEC-2099-8"],"package":{"name":"Jinja2","version":"2.10","type":"pypi"}},
 {"id":"CVE-2099-4444","records":["DEBIAN-CVE-2099-4444"],"package":{"name":"libexpat1","version":"2.5.0-1+deb12u1","type":"deb"},
  "reachability":{"status":"unknown"}}
]}`

func TestParseGovulncheck(t *testing.T) {
	got, err := ParseGovulncheck(strings.NewReader(govulncheckStream))
	if err != nil {
		t.Fatal(err)
	}
	want := []Finding{
		{
			Ecosystem: "Go", Name: "example.com/mod", Version: "1.0.0",
			IDs:   []string{"GO-2099-0001", "CVE-2099-1111", "GHSA-aaaa-bbbb-cccc"},
			Reach: ReachSymbol, Symbols: []string{"example.com/mod/pkg.Client.Get", "example.com/mod/pkg.Parse"},
		},
		{Ecosystem: "Go", Name: "stdlib", Version: "1.26.8", IDs: []string{"GO-2099-0002", "CVE-2099-2222"}, Reach: ReachPackage},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
}

func TestParseOSVScanner(t *testing.T) {
	got, err := ParseOSVScanner(strings.NewReader(osvScannerReport))
	if err != nil {
		t.Fatal(err)
	}
	want := []Finding{
		{Ecosystem: "Debian", Name: "libexpat1", Version: "2.5.0-1+deb12u1", IDs: []string{"DEBIAN-CVE-2099-1"}},
		{Ecosystem: "PyPI", Name: "pyyaml", Version: "5.3", IDs: []string{"PYSEC-2099-7", "CVE-2099-2222"}},
		{Ecosystem: "Go", Name: "example.com/mod", Version: "1.0.0", IDs: []string{"GO-2099-0001", "CVE-2099-1111"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
}

func TestParseMamori(t *testing.T) {
	got, err := ParseMamori(strings.NewReader(mamoriReport))
	if err != nil {
		t.Fatal(err)
	}
	want := []Finding{
		{
			Ecosystem: "Go", Name: "example.com/mod", Version: "1.0.0",
			IDs:   []string{"CVE-2099-1111", "GHSA-aaaa-bbbb-cccc", "GO-2099-0001"},
			Reach: ReachSymbol, Symbols: []string{"example.com/mod/pkg.Client.Get"},
		},
		{Ecosystem: "Go", Name: "stdlib", Version: "1.26.8", IDs: []string{"CVE-2099-2222", "GO-2099-0002"}, Reach: ReachModule},
		{Ecosystem: "PyPI", Name: "jinja2", Version: "2.10", IDs: []string{"CVE-2099-3333", "PYSEC-2099-8"}},
		{Ecosystem: "Debian", Name: "libexpat1", Version: "2.5.0-1+deb12u1", IDs: []string{"CVE-2099-4444", "DEBIAN-CVE-2099-4444"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name  string
		parse func(string) error
		input string
		want  string
	}{
		{"govulncheck not json", parseGovulncheckErr, "{", "not a govulncheck JSON stream"},
		{"govulncheck no trace", parseGovulncheckErr, `{"config":{}}` + "\n" + `{"finding":{"osv":"GO-1"}}`, "has no trace"},
		{"govulncheck no config", parseGovulncheckErr, `{"finding":{"osv":"GO-1","trace":[{"module":"m"}]}}`, "no config message"},
		{"osv-scanner not json", parseOSVScannerErr, "[", "not an osv-scanner JSON report"},
		{"osv-scanner no results", parseOSVScannerErr, "{}", "no results list"},
		{"osv-scanner no id", parseOSVScannerErr, `{"results":[{"packages":[{"package":{"name":"x","ecosystem":"npm"},"vulnerabilities":[{}]}]}]}`, "has no id"},
		{"mamori not json", parseMamoriErr, "nope", "not a mamori JSON report"},
		{"mamori no id", parseMamoriErr, `{"vulnerabilities":[{"package":{"name":"x"}}]}`, "no id or no package name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.parse(tt.input); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func parseGovulncheckErr(s string) error {
	_, err := ParseGovulncheck(strings.NewReader(s))
	return err
}

func parseOSVScannerErr(s string) error {
	_, err := ParseOSVScanner(strings.NewReader(s))
	return err
}

func parseMamoriErr(s string) error {
	_, err := ParseMamori(strings.NewReader(s))
	return err
}

func TestNormalize(t *testing.T) {
	tests := []struct{ eco, name, version, wantName, wantVersion string }{
		{"PyPI", "Zope.Interface", "5.1.0", "zope-interface", "5.1.0"},
		{"PyPI", "typed_ast", "1.3.1", "typed-ast", "1.3.1"},
		{"Go", "golang.org/x/text", "v0.3.5", "golang.org/x/text", "0.3.5"},
		{"Go", "stdlib", "go1.26.8", "stdlib", "1.26.8"},
		{"npm", "@scope/Pkg", "v1.0.0", "@scope/Pkg", "v1.0.0"},
		{"Debian", "libssl3", "3.0.19-1~deb12u2", "libssl3", "3.0.19-1~deb12u2"},
	}
	for _, tt := range tests {
		if n, v := NormalizeName(tt.eco, tt.name), NormalizeVersion(tt.eco, tt.version); n != tt.wantName || v != tt.wantVersion {
			t.Errorf("%s %s@%s → %s@%s, want %s@%s", tt.eco, tt.name, tt.version, n, v, tt.wantName, tt.wantVersion)
		}
	}
}

func fuzzFindings(t *testing.T, fs []Finding) {
	for _, f := range fs {
		if len(f.IDs) == 0 || f.IDs[0] == "" {
			t.Errorf("finding without an identifier: %+v", f)
		}
	}
}

func FuzzParseGovulncheck(f *testing.F) {
	f.Add(govulncheckStream)
	f.Add(`{"config":{}}` + "\n" + `{"finding":{"osv":"GO-1","trace":[null]}}`)
	f.Fuzz(func(t *testing.T, s string) {
		fs, err := ParseGovulncheck(strings.NewReader(s))
		if err == nil {
			fuzzFindings(t, fs)
		}
	})
}

func FuzzParseOSVScanner(f *testing.F) {
	f.Add(osvScannerReport)
	f.Add(`{"results":null}`)
	f.Fuzz(func(t *testing.T, s string) {
		fs, err := ParseOSVScanner(strings.NewReader(s))
		if err == nil {
			fuzzFindings(t, fs)
		}
	})
}

func FuzzParseMamori(f *testing.F) {
	f.Add(mamoriReport)
	f.Add(`{"vulnerabilities":null}`)
	f.Fuzz(func(t *testing.T, s string) {
		fs, err := ParseMamori(strings.NewReader(s))
		if err == nil {
			fuzzFindings(t, fs)
		}
	})
}
