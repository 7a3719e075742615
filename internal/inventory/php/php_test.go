package php

import (
	"fmt"
	"slices"
	"testing"

	"github.com/mamorisec/mamori/internal/inventory"
	"github.com/mamorisec/mamori/internal/inventory/extracttest"
)

// summary renders a package as "name@version purl [dev] [licenses]".
func summary(pkgs []inventory.Package) []string {
	var out []string
	for _, p := range pkgs {
		s := p.Name + "@" + p.Version + " " + p.PURL
		if p.Dev {
			s += " dev"
		}
		if len(p.Licenses) > 0 {
			s += " " + fmt.Sprint(p.Licenses)
		}
		out = append(out, s)
	}
	return out
}

func checkPackages(t testing.TB, pkgs []inventory.Package) {
	t.Helper()
	for _, p := range pkgs {
		if p.Name == "" || p.Version == "" || p.Type != inventory.TypeComposer || p.PURL != PURL(p.Name, p.Version) {
			t.Errorf("bad package %+v", p)
		}
	}
}

func TestRequired(t *testing.T) {
	tests := []struct {
		path string
		want string
	}{
		{"/var/www/vendor/composer/installed.json", "language/php/installed"},
		{"/var/www/composer.lock", "language/php/composerlock"},
		{"/var/www/vendor/composer/installed.php", ""},
		{"/var/www/installed.json", ""},
		{"/var/www/composer.json", ""},
	}
	for _, tt := range tests {
		got := extracttest.RequiredBy(All(), tt.path)
		var want []string
		if tt.want != "" {
			want = []string{tt.want}
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s required by %v, want %v", tt.path, got, want)
		}
	}
}

func TestFiles(t *testing.T) {
	tests := []struct {
		file string
		ex   inventory.Extractor
		path string
		want []string
	}{
		{"installed-v1.json", NewInstalled(), "/app/vendor/composer/installed.json", []string{
			"monolog/monolog@1.27.1 pkg:composer/monolog/monolog@1.27.1 [MIT]",
			"psr/log@1.1.4 pkg:composer/psr/log@1.1.4 [MIT]",
			"Symfony/Polyfill-Ctype@v1.28.0 pkg:composer/symfony/polyfill-ctype@1.28.0 [MIT BSD-3-Clause]",
		}},
		{"installed-v2.json", NewInstalled(), "/app/vendor/composer/installed.json", []string{
			"guzzlehttp/guzzle@7.8.1 pkg:composer/guzzlehttp/guzzle@7.8.1 [MIT]",
			"phpunit/phpunit@10.5.5 pkg:composer/phpunit/phpunit@10.5.5 dev [BSD-3-Clause]",
			"symfony/console@v6.4.2 pkg:composer/symfony/console@6.4.2 [MIT]",
			"acme/internal@dev-main pkg:composer/acme/internal@dev-main",
		}},
		{"composer.lock", NewComposerLock(), "/app/composer.lock", []string{
			"laravel/framework@v10.38.2 pkg:composer/laravel/framework@10.38.2 [MIT]",
			"nesbot/carbon@2.72.1 pkg:composer/nesbot/carbon@2.72.1 [MIT]",
			"mockery/mockery@1.6.7 pkg:composer/mockery/mockery@1.6.7 dev [BSD-3-Clause]",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			pkgs := extracttest.File(t, tt.ex, tt.path, tt.file)
			checkPackages(t, pkgs)
			if got := summary(pkgs); !slices.Equal(got, tt.want) {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestMalformed(t *testing.T) {
	tests := []struct {
		name    string
		ex      inventory.Extractor
		path    string
		data    string
		wantErr string
	}{
		{"installed not JSON", NewInstalled(), "/a/vendor/composer/installed.json", "{", "parsing installed.json"},
		{"installed v1 bad entry", NewInstalled(), "/a/vendor/composer/installed.json", `[{"name": 1}]`, "parsing installed.json"},
		{"installed without version", NewInstalled(), "/a/vendor/composer/installed.json", `{"packages": [{"name": "a/b"}]}`, "package number 1 has no name or version"},
		{"lock not JSON", NewComposerLock(), "/a/composer.lock", "[", "parsing composer.lock"},
		{"lock dev without name", NewComposerLock(), "/a/composer.lock", `{"packages-dev": [{"version": "1.0"}]}`, `composer.lock "packages-dev": package number 1`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			extracttest.CheckError(t, tt.ex, tt.path, tt.data, tt.wantErr)
		})
	}
}

func FuzzInstalled(f *testing.F) {
	extracttest.Seeds(f, "installed-v1.json", "installed-v2.json")
	f.Fuzz(func(t *testing.T, data []byte) {
		pkgs, err := ParseInstalled(data)
		if err == nil {
			checkPackages(t, pkgs)
		}
	})
}

func FuzzComposerLock(f *testing.F) {
	extracttest.Seeds(f, "composer.lock")
	f.Fuzz(func(t *testing.T, data []byte) {
		pkgs, err := ParseComposerLock(data)
		if err == nil {
			checkPackages(t, pkgs)
		}
	})
}
