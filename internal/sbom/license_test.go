package sbom

import (
	"encoding/json"
	"reflect"
	"testing"
)

func TestClassifyLicense(t *testing.T) {
	tests := []struct {
		in   string
		want license
	}{
		{"MIT", license{licenseID, "MIT"}},
		{"mit", license{licenseID, "MIT"}},
		{"GPL-2.0-or-later", license{licenseID, "GPL-2.0-or-later"}},
		{"GPL-2.0+", license{licenseID, "GPL-2.0+"}}, // deprecated identifier
		{"BSD-3-clause", license{licenseID, "BSD-3-Clause"}},
		{"MIT AND BSD-3-Clause", license{licenseExpression, "MIT AND BSD-3-Clause"}},
		{"(MIT AND BSD-3-Clause)", license{licenseExpression, "MIT AND BSD-3-Clause"}},
		{"MIT OR Apache-2.0", license{licenseExpression, "MIT OR Apache-2.0"}},
		{"GPL-2.0-only WITH Classpath-exception-2.0", license{licenseExpression, "GPL-2.0-only WITH Classpath-exception-2.0"}},
		{"Apache-2.0+", license{licenseExpression, "Apache-2.0+"}},
		{"LicenseRef-acme", license{licenseExpression, "LicenseRef-acme"}},
		{"public-domain", license{licenseName, "public-domain"}},
		{"GPL-2+", license{licenseName, "GPL-2+"}},
		{"Artistic or GPL-1+", license{licenseName, "Artistic or GPL-1+"}},
		{"MIT AND", license{licenseName, "MIT AND"}},
		{"DocumentRef-other:LicenseRef-x", license{licenseName, "DocumentRef-other:LicenseRef-x"}},
		{"LicenseRef-", license{licenseName, "LicenseRef-"}},
		{"MIT OR (DocumentRef-a:LicenseRef-b)", license{licenseName, "MIT OR (DocumentRef-a:LicenseRef-b)"}},
		{"LicenseRef-DocumentRef-x", license{licenseExpression, "LicenseRef-DocumentRef-x"}},
	}
	for _, tc := range tests {
		if got := classifyLicense(tc.in); got != tc.want {
			t.Errorf("classifyLicense(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

func TestLicenseRef(t *testing.T) {
	tests := []struct{ in, want string }{
		{"public-domain", "LicenseRef-public-domain"},
		{"Public.Domain-2", "LicenseRef-Public.Domain-2"},
		{"public domain", "LicenseRef-public-domain-f4266674"},
		{"GPL-1+ or Artistic", "LicenseRef-GPL-1--or-Artistic-fcd93e35"},
	}
	for _, tc := range tests {
		if got := licenseRef(tc.in); got != tc.want {
			t.Errorf("licenseRef(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if licenseRef("public domain") == licenseRef("public-domain") {
		t.Error("distinct names share a LicenseRef")
	}
}

func TestCycloneDXLicenses(t *testing.T) {
	tests := []struct {
		name string
		in   []string
		want string // JSON of the licenses field
	}{
		{"none", nil, `null`},
		{"blank", []string{" ", ""}, `null`},
		{"id", []string{"GPL-2.0-or-later"}, `[{"license":{"id":"GPL-2.0-or-later"}}]`},
		{"normalized id", []string{" mit "}, `[{"license":{"id":"MIT"}}]`},
		{"name", []string{"public-domain"}, `[{"license":{"name":"public-domain"}}]`},
		{"expression", []string{"MIT AND BSD-3-Clause"}, `[{"expression":"MIT AND BSD-3-Clause"}]`},
		{"ids and names", []string{"MIT", "public-domain", "MIT"}, `[{"license":{"id":"MIT"}},{"license":{"name":"public-domain"}}]`},
		{
			"expression with others",
			[]string{"MIT OR Apache-2.0", "BSD-3-Clause", "public domain"},
			`[{"expression":"(MIT OR Apache-2.0) AND BSD-3-Clause AND LicenseRef-public-domain-f4266674"}]`,
		},
		{"invalid expression is a name", []string{"GPL or Artistic"}, `[{"license":{"name":"GPL or Artistic"}}]`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := json.Marshal(cdxLicenses(tc.in, make(licenseClassifier)))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
}

func TestSPDXDeclared(t *testing.T) {
	tests := []struct {
		name string
		in   []string
		want string
		refs map[string]string
	}{
		{"none", nil, "NOASSERTION", map[string]string{}},
		{"id", []string{"GPL-2.0-or-later"}, "GPL-2.0-or-later", map[string]string{}},
		{"expression", []string{"(MIT AND BSD-3-Clause)"}, "MIT AND BSD-3-Clause", map[string]string{}},
		{"name", []string{"public-domain"}, "LicenseRef-public-domain", map[string]string{"LicenseRef-public-domain": "public-domain"}},
		{
			"mixed",
			[]string{"MIT OR Apache-2.0", "Zlib", "public-domain", "Zlib"},
			"(MIT OR Apache-2.0) AND Zlib AND LicenseRef-public-domain",
			map[string]string{"LicenseRef-public-domain": "public-domain"},
		},
		{
			"reference in expression",
			[]string{"MIT OR LicenseRef-acme"},
			"MIT OR LicenseRef-acme",
			map[string]string{"LicenseRef-acme": "LicenseRef-acme"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := spdxLicenses{classifier: make(licenseClassifier), refs: make(map[string]string)}
			if got := s.declared(tc.in); got != tc.want {
				t.Errorf("declared = %q, want %q", got, tc.want)
			}
			if !reflect.DeepEqual(s.refs, tc.refs) {
				t.Errorf("refs = %v, want %v", s.refs, tc.refs)
			}
		})
	}
}
