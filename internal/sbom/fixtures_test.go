package sbom

import (
	"time"

	"github.com/mamorisec/mamori/internal/inventory"
)

// testClock is the injected clock of every golden test.
func testClock() time.Time { return time.Date(2024, 5, 1, 12, 30, 45, 123, time.UTC) }

var testOptions = Options{Now: testClock, ToolVersion: "1.2.3-test"}

const (
	digestA = "sha256:4f53cda18c2baa0c0354bb5f9a3ecbe5ed12ab4d8e11ba873c2f11161202b945"
	digestB = "sha256:9b1e9b2f4a3c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6"
	diff0   = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	diff1   = "sha256:2222222222222222222222222222222222222222222222222222222222222222"
	diff2   = "sha256:3333333333333333333333333333333333333333333333333333333333333333"
)

var (
	layer0 = inventory.Layer{Index: 0, DiffID: diff0, CreatedBy: "# debian.sh --arch 'amd64' out/ 'bookworm' '@1715040000'"}
	layer1 = inventory.Layer{Index: 1, DiffID: diff1, CreatedBy: "RUN /bin/sh -c apt-get update && apt-get install -y python3-six # buildkit"}
	layer2 = inventory.Layer{Index: 2, DiffID: diff2, CreatedBy: "COPY app /app # buildkit"}
)

func intPtr(i int) *int { return &i }

// fullReport is a realistic report: Debian packages with source packages, a
// Python package owned by a Debian package, npm packages (one scoped, one
// with a compound license, one dev dependency), a Go binary with its standard
// library, and a Maven package inside a jar nested in a war. Its packages are
// deliberately out of order: encoders must sort them.
func fullReport() *inventory.Report {
	const dpkg = "/var/lib/dpkg/status"
	return &inventory.Report{
		SchemaVersion: 1,
		Image: inventory.ImageInfo{
			Ref:         "registry:registry.example.com/team/app:1.4",
			Source:      "registry",
			Name:        "registry.example.com/team/app:1.4",
			Digest:      digestA,
			ID:          digestB,
			Platform:    "linux/amd64",
			RepoDigests: []string{"registry.example.com/team/app@" + digestA},
		},
		OS: &inventory.OS{
			ID: "debian", VersionID: "12", Codename: "bookworm",
			PrettyName: "Debian GNU/Linux 12 (bookworm)", Source: "/etc/os-release",
		},
		Layers: []inventory.Layer{layer0, layer1, layer2},
		Packages: []inventory.Package{
			{
				Name: "sha.js", Version: "2.4.11", Type: inventory.TypeNPM,
				PURL: "pkg:npm/sha.js@2.4.11", Licenses: []string{"(MIT AND BSD-3-Clause)"},
				Path: "/app/node_modules/sha.js/package.json", Layer: layer2,
			},
			{
				Name: "adduser", Version: "3.134", Type: inventory.TypeDeb,
				PURL: "pkg:deb/debian/adduser@3.134?arch=all&distro=debian-12", Licenses: []string{"GPL-2.0-or-later"},
				Arch: "all", Path: dpkg, Layer: layer0,
				Files: []string{"/usr/sbin/adduser"},
			},
			{
				Name: "libssl3", Version: "3.0.15-1~deb12u1", Type: inventory.TypeDeb,
				PURL:     "pkg:deb/debian/libssl3@3.0.15-1~deb12u1?arch=amd64&distro=debian-12",
				Licenses: []string{"Apache-2.0"}, Arch: "amd64",
				SourceName: "openssl", SourceVersion: "3.0.15-1~deb12u1",
				Path: dpkg, Layer: layer0,
			},
			{
				Name: "libperl5.36", Version: "5.36.0-7+deb12u1", Type: inventory.TypeDeb,
				PURL:     "pkg:deb/debian/libperl5.36@5.36.0-7%2Bdeb12u1?arch=amd64&distro=debian-12",
				Licenses: []string{"GPL-1+ or Artistic", "BSD-3-clause", "public-domain"}, Arch: "amd64",
				SourceName: "perl", SourceVersion: "5.36.0-7+deb12u1",
				Path: dpkg, Layer: layer0,
			},
			{
				Name: "tzdata", Version: "2024a-0+deb12u1", Type: inventory.TypeDeb,
				PURL:     "pkg:deb/debian/tzdata@2024a-0%2Bdeb12u1?arch=all&distro=debian-12",
				Licenses: []string{"public-domain"}, Arch: "all",
				Path: dpkg, Layer: layer0,
			},
			{
				Name: "python3-six", Version: "1.16.0-4", Type: inventory.TypeDeb,
				PURL:     "pkg:deb/debian/python3-six@1.16.0-4?arch=all&distro=debian-12",
				Licenses: []string{"MIT"}, Arch: "all", SourceName: "six",
				Path: dpkg, Layer: layer1,
			},
			{
				Name: "six", Version: "1.16.0", Type: inventory.TypePyPI,
				PURL: "pkg:pypi/six@1.16.0", Licenses: []string{"MIT"},
				Path:    "/usr/lib/python3/dist-packages/six-1.16.0.egg-info/PKG-INFO",
				Layer:   layer1,
				OwnedBy: "deb:python3-six",
			},
			{
				Name: "@babel/core", Version: "7.24.0", Type: inventory.TypeNPM,
				PURL: "pkg:npm/%40babel/core@7.24.0", Licenses: []string{"MIT"},
				Path: "/app/node_modules/@babel/core/package.json", Layer: layer2,
			},
			{
				Name: "@types/node", Version: "20.12.7", Type: inventory.TypeNPM,
				PURL: "pkg:npm/%40types/node@20.12.7", Licenses: []string{"MIT"},
				Path: "/app/node_modules/@types/node/package.json", Layer: layer2, Dev: true,
			},
			{
				Name: "stdlib", Version: "go1.22.5", Type: inventory.TypeGolang,
				PURL: "pkg:golang/stdlib@go1.22.5", Path: "/app/bin/server", Layer: layer2,
				Metadata: map[string]string{"goVersion": "go1.22.5", "mainModule": "example.com/server"},
			},
			{
				Name: "github.com/spf13/cobra", Version: "v1.8.0", Type: inventory.TypeGolang,
				PURL: "pkg:golang/github.com/spf13/cobra@v1.8.0", Path: "/app/bin/server", Layer: layer2,
				Metadata: map[string]string{"goVersion": "go1.22.5", "mainModule": "example.com/server", "h1": "h1:7aJaZx1B85qltLMc546zn58BxxfZdR/W22ej9CFoEf0="},
			},
			{
				Name: "example.com/server", Version: "(devel)", Type: inventory.TypeGolang,
				PURL: "pkg:golang/example.com/server@%28devel%29", Path: "/app/bin/server", Layer: layer2,
				Metadata: map[string]string{"goVersion": "go1.22.5", "mainModule": "example.com/server", "vcs.revision": "0123456789abcdef"},
			},
			{
				Name: "org.apache.commons:commons-lang3", Version: "3.14.0", Type: inventory.TypeMaven,
				PURL:     "pkg:maven/org.apache.commons/commons-lang3@3.14.0",
				Licenses: []string{"Apache-2.0"},
				Path:     "/app.war!/WEB-INF/lib/commons-lang3-3.14.0.jar", Layer: layer2,
			},
			{
				Name: "kernel-headers", Version: "5.14.0", Type: inventory.TypeRPM, Epoch: intPtr(1),
				PURL: "pkg:rpm/kernel-headers@5.14.0?epoch=1", Licenses: []string{"GPL-2.0-only WITH Linux-syscall-note"},
				Path: "/opt/sysroot/var/lib/rpm/rpmdb.sqlite", Layer: layer2,
			},
		},
		Problems: []inventory.Problem{{
			Path: "/usr/lib/node_modules/broken/package-lock.json", Layer: diff2,
			Extractor: "language/npm/lockfile", Message: "invalid character '}' looking for beginning of object key string",
		}},
	}
}

// emptyReport has an image and nothing in it.
func emptyReport() *inventory.Report {
	return &inventory.Report{
		SchemaVersion: 1,
		Image: inventory.ImageInfo{
			Ref: "oci-archive:scratch.tar", Source: "oci-archive", Name: "scratch.tar", Digest: digestB,
		},
	}
}

// noOSReport is a root filesystem directory with no os-release file and no
// digest, holding a static Go binary.
func noOSReport() *inventory.Report {
	layer := inventory.Layer{Index: 0, DiffID: "dir:/srv/rootfs"}
	return &inventory.Report{
		SchemaVersion: 1,
		Image:         inventory.ImageInfo{Ref: "dir:/srv/rootfs", Source: "dir", Name: "/srv/rootfs"},
		Layers:        []inventory.Layer{layer},
		Packages: []inventory.Package{
			{
				Name: "stdlib", Version: "go1.23.0", Type: inventory.TypeGolang,
				PURL: "pkg:golang/stdlib@go1.23.0", Path: "/ko-app/hello", Layer: layer,
				Metadata: map[string]string{"goVersion": "go1.23.0"},
			},
			{
				Name: "golang.org/x/text", Version: "v0.14.0", Type: inventory.TypeGolang,
				PURL: "pkg:golang/golang.org/x/text@v0.14.0", Licenses: []string{"BSD-3-Clause"},
				Path: "/ko-app/hello", Layer: layer,
			},
		},
	}
}

// duplicatesReport holds the same package twice, the same package found in
// two files, and two packages whose purls coincide (a PyPI name spelled two
// ways).
func duplicatesReport() *inventory.Report {
	ms := inventory.Package{
		Name: "minimist", Version: "1.2.8", Type: inventory.TypeNPM,
		PURL: "pkg:npm/minimist@1.2.8", Licenses: []string{"MIT"},
		Path: "/app/node_modules/minimist/package.json", Layer: layer2,
	}
	msNested := ms
	msNested.Path = "/app/node_modules/optimist/node_modules/minimist/package.json"
	return &inventory.Report{
		SchemaVersion: 1,
		Image: inventory.ImageInfo{
			Ref: "docker-archive:dups.tar", Source: "docker-archive", Name: "dups.tar",
			Digest: digestA, RepoTags: []string{"example/dups:latest"},
		},
		OS:     &inventory.OS{ID: "alpine", VersionID: "3.20.1"},
		Layers: []inventory.Layer{layer2},
		Packages: []inventory.Package{
			ms, ms, msNested,
			{
				Name: "Foo_Bar", Version: "1.0", Type: inventory.TypePyPI, PURL: "pkg:pypi/foo-bar@1.0",
				Path: "/usr/lib/python3.12/site-packages/foo_bar-1.0.dist-info/METADATA", Layer: layer2,
			},
			{
				Name: "foo-bar", Version: "1.0", Type: inventory.TypePyPI, PURL: "pkg:pypi/foo-bar@1.0",
				Path: "/usr/lib/python3.12/site-packages/foo_bar-1.0.dist-info/METADATA", Layer: layer2,
			},
		},
	}
}

// testReports are the golden test cases.
var testReports = []struct {
	name   string
	report func() *inventory.Report
}{
	{"full", fullReport},
	{"empty", emptyReport},
	{"no-os", noOSReport},
	{"duplicates", duplicatesReport},
}
