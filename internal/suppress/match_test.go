package suppress

import (
	"testing"

	"github.com/package-url/packageurl-go"

	"github.com/mamorisec/mamori/internal/inventory"
)

func TestGlob(t *testing.T) {
	tests := []struct {
		pattern, path string
		want          bool
	}{
		{"/usr/local/bin/**", "/usr/local/bin/app", true},
		{"/usr/local/bin/**", "/usr/local/bin/sub/app", true},
		{"/usr/local/bin/**", "/usr/local/bin", true},
		{"usr/local/bin/*", "/usr/local/bin/app", true},
		{"/usr/local/bin/*", "/usr/local/bin/sub/app", false},
		{"/app/**/package.json", "/app/node_modules/a/package.json", true},
		{"/app/**/package.json", "/app/package.json", true},
		{"/app/**/package.json", "/app/node_modules/a/package.jsonx", false},
		{"**", "/anything/at/all", true},
		{"/opt/**/**/lib/*.jar", "/opt/x/y/lib/a.jar", true},
		{"/opt/*.jar", "/opt/a.war", false},
		{"/var/lib/dpkg/status", "/var/lib/dpkg/status", true},
		{"/var/lib/dpkg/status", "/var/lib/dpkg/status.d/x", false},
	}
	for _, tt := range tests {
		g, err := compileGlob(tt.pattern)
		if err != nil {
			t.Fatalf("%q: %v", tt.pattern, err)
		}
		if got := g.match(tt.path); got != tt.want {
			t.Errorf("%q matches %q = %v, want %v", tt.pattern, tt.path, got, tt.want)
		}
	}
	for _, bad := range []string{"", "/usr/[", "/a\\"} {
		if _, err := compileGlob(bad); err == nil {
			t.Errorf("compileGlob(%q) accepted", bad)
		}
	}
}

func mustPURL(t *testing.T, s string) *packageurl.PackageURL {
	t.Helper()
	u, err := packageurl.FromString(s)
	if err != nil {
		t.Fatal(err)
	}
	return &u
}

func TestPURLMatches(t *testing.T) {
	tests := []struct {
		pattern, candidate string
		want               bool
	}{
		{"pkg:npm/semver", "pkg:npm/semver@7.5.1", true},
		{"pkg:npm/semver@7.5.1", "pkg:npm/semver@7.5.1", true},
		{"pkg:npm/semver@7.5.2", "pkg:npm/semver@7.5.1", false},
		{"pkg:npm/Semver", "pkg:npm/semver@7.5.1", true},
		{"pkg:npm/%40babel/core", "pkg:npm/%40babel/core@7.0.0", true},
		{"pkg:npm/core", "pkg:npm/%40babel/core@7.0.0", false},
		{"pkg:pypi/PyYAML_tools", "pkg:pypi/pyyaml-tools@1.0", true},
		{"pkg:golang/github.com/Foo/bar", "pkg:golang/github.com/Foo/bar@v1.0.0", true},
		{"pkg:golang/github.com/foo/Bar", "pkg:golang/github.com/foo/bar@v1.0.0", true}, // packageurl-go lowercases golang names
		{"pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1", "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1", true},
		{"pkg:deb/debian/openssl?arch=amd64", "pkg:deb/debian/openssl@3.0.11?arch=amd64&distro=debian-12", true},
		{"pkg:deb/debian/openssl?arch=arm64", "pkg:deb/debian/openssl@3.0.11?arch=amd64&distro=debian-12", false},
		{"pkg:deb/debian/openssl?distro=debian-12", "pkg:deb/debian/openssl@3.0.11?arch=amd64", false},
		{"pkg:deb/debian/zlib1g@1:1.2.13.dfsg-1", "pkg:deb/debian/zlib1g@1%3A1.2.13.dfsg-1", true},
		{"pkg:deb/debian/openssl", "pkg:rpm/debian/openssl@3", false},
		{"pkg:deb/ubuntu/openssl", "pkg:deb/debian/openssl@3", false},
		{"pkg:generic/a#sub/dir", "pkg:generic/a@1#sub/dir", true},
		{"pkg:generic/a#other", "pkg:generic/a@1#sub/dir", false},
	}
	for _, tt := range tests {
		if got := purlMatches(mustPURL(t, tt.pattern), mustPURL(t, tt.candidate)); got != tt.want {
			t.Errorf("%s matches %s = %v, want %v", tt.pattern, tt.candidate, got, tt.want)
		}
	}
}

func TestImageMatches(t *testing.T) {
	const d = "sha256:4c8e0a7f2b1d9e6c3a5f8b0d2e4c6a8f1b3d5e7f9a0c2e4b6d8f0a1c3e5b7d9f"
	registry := imageOf(&inventory.Report{Image: inventory.ImageInfo{
		Source: "registry", Name: "ghcr.io/example/payments-api:1.4.2", Digest: d, Platform: "linux/arm/v7",
	}})
	docker := imageOf(&inventory.Report{Image: inventory.ImageInfo{
		Source: "docker", Name: "alpine:3.20", RepoTags: []string{"alpine:3.20"},
		RepoDigests: []string{"alpine@" + d},
	}})
	archive := imageOf(&inventory.Report{Image: inventory.ImageInfo{
		Source: "docker-archive", Name: "/tmp/Payments-API.tar", Digest: d,
	}})
	tests := []struct {
		im   *image
		purl string
		want bool
	}{
		{registry, "pkg:oci/payments-api", true},
		{registry, "pkg:oci/payments-api@" + d, true},
		{registry, "pkg:oci/payments-api@sha256:0000", false},
		{registry, "pkg:oci/other", false},
		{registry, "pkg:oci/payments-api?repository_url=ghcr.io/example/payments-api", true},
		{registry, "pkg:oci/payments-api?repository_url=ghcr.io/attacker/payments-api", false},
		{registry, "pkg:oci/payments-api?tag=1.4.2", true},
		{registry, "pkg:oci/payments-api?tag=latest", false},
		{registry, "pkg:oci/payments-api?arch=arm&os=linux", true},
		{registry, "pkg:oci/payments-api?arch=amd64", false},
		{registry, "pkg:npm/payments-api", false},
		{docker, "pkg:oci/alpine?repository_url=index.docker.io/library/alpine", true},
		{docker, "pkg:oci/alpine?repository_url=docker.io/alpine&tag=3.20", true},
		{docker, "pkg:oci/alpine@" + d, true},
		{archive, "pkg:oci/payments-api@" + d, true},
		{archive, "pkg:oci/payments-api?repository_url=ghcr.io/example/payments-api", false},
		{nil, "pkg:oci/payments-api", false},
	}
	for _, tt := range tests {
		if got := tt.im.matches(mustPURL(t, tt.purl)); got != tt.want {
			t.Errorf("%+v matches %s = %v, want %v", tt.im, tt.purl, got, tt.want)
		}
	}
}

func TestNormalizeRepo(t *testing.T) {
	for in, want := range map[string]string{
		"alpine":                         "docker.io/library/alpine",
		"library/alpine":                 "docker.io/library/alpine",
		"docker.io/alpine":               "docker.io/library/alpine",
		"index.docker.io/library/alpine": "docker.io/library/alpine",
		"bitnami/redis":                  "docker.io/bitnami/redis",
		"GHCR.io/Example/App":            "ghcr.io/example/app",
		"https://ghcr.io/example/app":    "ghcr.io/example/app",
		"localhost/app":                  "localhost/app",
		"localhost:5000/team/app":        "localhost:5000/team/app",
	} {
		if got := normalizeRepo(in); got != want {
			t.Errorf("normalizeRepo(%q) = %q, want %q", in, got, want)
		}
	}
}
