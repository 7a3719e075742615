package sbom

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/mamorisec/mamori/internal/inventory"
)

func TestCdxVersion(t *testing.T) {
	long := strings.Repeat("é", 1500)
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"short", "1.2.3", "1.2.3"},
		{"limit", strings.Repeat("v", 1024), strings.Repeat("v", 1024)},
		{"ascii", strings.Repeat("v", 1025), strings.Repeat("v", 1024)},
		{"multi-byte", long, strings.Repeat("é", 1024)},
		{"invalid utf-8", strings.Repeat("\xff", 2000), strings.Repeat("\xff", 1024)},
	}
	for _, tc := range tests {
		if got := cdxVersion(tc.in); got != tc.want {
			t.Errorf("%s: cdxVersion returned %d runes, want %d", tc.name, utf8.RuneCountInString(got), utf8.RuneCountInString(tc.want))
		}
	}
}

func TestPackageComponent(t *testing.T) {
	tests := []struct {
		name         string
		pkg          inventory.Package
		group, cname string
		props        []string
	}{
		{
			name:  "maven group",
			pkg:   inventory.Package{Type: inventory.TypeMaven, Name: "org.apache.commons:commons-lang3", Version: "3.14.0"},
			group: "org.apache.commons", cname: "commons-lang3",
		},
		{
			name:  "npm scope",
			pkg:   inventory.Package{Type: inventory.TypeNPM, Name: "@babel/core", Version: "7.24.0"},
			group: "@babel", cname: "core",
		},
		{
			name:  "unscoped npm",
			pkg:   inventory.Package{Type: inventory.TypeNPM, Name: "left/pad", Version: "1"},
			cname: "left/pad",
		},
		{
			name:  "malformed maven",
			pkg:   inventory.Package{Type: inventory.TypeMaven, Name: ":x", Version: "1"},
			cname: ":x",
		},
		{
			name: "properties",
			pkg: inventory.Package{
				Type: inventory.TypeRPM, Name: "bash", Version: "5.1", Epoch: intPtr(0), Arch: "x86_64",
				Path: "/var/lib/rpm/rpmdb.sqlite", Layer: inventory.Layer{Index: 2, DiffID: diff2},
				OwnedBy: "rpm:x", Dev: true, Metadata: map[string]string{"b": "2", "a": "1"},
			},
			cname: "bash",
			props: []string{
				"mamori:path=/var/lib/rpm/rpmdb.sqlite", "mamori:layer:diffID=" + diff2, "mamori:layer:index=2",
				"mamori:arch=x86_64", "mamori:epoch=0", "mamori:ownedBy=rpm:x", "mamori:dev=true",
				"mamori:metadata:a=1", "mamori:metadata:b=2",
			},
		},
		{
			name:  "long version kept whole",
			pkg:   inventory.Package{Type: inventory.TypeNPM, Name: "x", Version: strings.Repeat("1", 1100)},
			cname: "x",
			props: []string{"mamori:version=" + strings.Repeat("1", 1100), "mamori:path=", "mamori:layer:index=0"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := packageComponent(&tc.pkg, make(licenseClassifier))
			if c.Group != tc.group || c.Name != tc.cname {
				t.Errorf("group %q name %q, want %q %q", c.Group, c.Name, tc.group, tc.cname)
			}
			if tc.props == nil {
				return
			}
			var got []string
			if c.Properties != nil {
				for _, p := range *c.Properties {
					got = append(got, p.Name+"="+p.Value)
				}
			}
			want := tc.props[:0:0]
			for _, p := range tc.props {
				if !strings.HasSuffix(p, "=") { // empty values are not written
					want = append(want, p)
				}
			}
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("properties:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}
