package osrelease

import (
	"bytes"
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/mamorisec/mamori/internal/inventory"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name, path, content string
		want                *inventory.OS
	}{
		{"debian", etcOSRelease, `PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
`, &inventory.OS{ID: "debian", VersionID: "12", Codename: "bookworm", PrettyName: "Debian GNU/Linux 12 (bookworm)"}},
		{"debian testing without VERSION_ID", usrLibOSRelease, "PRETTY_NAME=\"Debian GNU/Linux trixie/sid\"\nVERSION_CODENAME=trixie\nID=debian\n",
			&inventory.OS{ID: "debian", Codename: "trixie", PrettyName: "Debian GNU/Linux trixie/sid"}},
		{"ubuntu", etcOSRelease, `PRETTY_NAME="Ubuntu 24.04.1 LTS"
NAME="Ubuntu"
VERSION_ID="24.04"
VERSION="24.04.1 LTS (Noble Numbat)"
VERSION_CODENAME=noble
ID=ubuntu
ID_LIKE=debian
UBUNTU_CODENAME=noble
`, &inventory.OS{ID: "ubuntu", VersionID: "24.04", Codename: "noble", PrettyName: "Ubuntu 24.04.1 LTS", IDLike: []string{"debian"}}},
		{"ubuntu codename from UBUNTU_CODENAME", etcOSRelease, "ID=ubuntu\nVERSION_ID=\"16.04\"\nUBUNTU_CODENAME=xenial\n",
			&inventory.OS{ID: "ubuntu", VersionID: "16.04", Codename: "xenial"}},
		{"alpine", etcOSRelease, `NAME="Alpine Linux"
ID=alpine
VERSION_ID=3.20.3
PRETTY_NAME="Alpine Linux v3.20"
`, &inventory.OS{ID: "alpine", VersionID: "3.20.3", PrettyName: "Alpine Linux v3.20"}},
		{"ubi", etcOSRelease, `NAME="Red Hat Enterprise Linux"
VERSION="9.4 (Plow)"
ID="rhel"
ID_LIKE="fedora"
VERSION_ID="9.4"
PLATFORM_ID="platform:el9"
PRETTY_NAME="Red Hat Enterprise Linux 9.4 (Plow)"
`, &inventory.OS{ID: "rhel", VersionID: "9.4", PrettyName: "Red Hat Enterprise Linux 9.4 (Plow)", IDLike: []string{"fedora"}}},
		{"rocky", etcOSRelease, `NAME="Rocky Linux"
VERSION="9.3 (Blue Onyx)"
ID="rocky"
ID_LIKE="rhel centos fedora"
VERSION_ID="9.3"
PRETTY_NAME="Rocky Linux 9.3 (Blue Onyx)"
`, &inventory.OS{ID: "rocky", VersionID: "9.3", PrettyName: "Rocky Linux 9.3 (Blue Onyx)", IDLike: []string{"rhel", "centos", "fedora"}}},
		{"almalinux", etcOSRelease, "NAME=\"AlmaLinux\"\nID=\"almalinux\"\nID_LIKE=\"rhel centos fedora\"\nVERSION_ID=\"9.4\"\nPRETTY_NAME=\"AlmaLinux 9.4 (Seafoam Ocelot)\"\n",
			&inventory.OS{ID: "almalinux", VersionID: "9.4", PrettyName: "AlmaLinux 9.4 (Seafoam Ocelot)", IDLike: []string{"rhel", "centos", "fedora"}}},
		{"fedora", etcOSRelease, "NAME=\"Fedora Linux\"\nVERSION=\"40 (Container Image)\"\nID=fedora\nVERSION_ID=40\nVERSION_CODENAME=\"\"\nPRETTY_NAME=\"Fedora Linux 40 (Container Image)\"\n",
			&inventory.OS{ID: "fedora", VersionID: "40", PrettyName: "Fedora Linux 40 (Container Image)"}},
		{"amazon", etcOSRelease, "NAME=\"Amazon Linux\"\nVERSION=\"2023\"\nID=\"amzn\"\nID_LIKE=\"fedora\"\nVERSION_ID=\"2023\"\nPRETTY_NAME=\"Amazon Linux 2023.5.20240805\"\n",
			&inventory.OS{ID: "amzn", VersionID: "2023", PrettyName: "Amazon Linux 2023.5.20240805", IDLike: []string{"fedora"}}},
		{"sles", etcOSRelease, "NAME=\"SLES\"\nVERSION=\"15-SP5\"\nVERSION_ID=\"15.5\"\nPRETTY_NAME=\"SUSE Linux Enterprise Server 15 SP5\"\nID=\"sles\"\nID_LIKE=\"suse\"\n",
			&inventory.OS{ID: "sles", VersionID: "15.5", PrettyName: "SUSE Linux Enterprise Server 15 SP5", IDLike: []string{"suse"}}},
		{"opensuse leap", etcOSRelease, "NAME=\"openSUSE Leap\"\nVERSION=\"15.6\"\nID=\"opensuse-leap\"\nID_LIKE=\"suse opensuse\"\nVERSION_ID=\"15.6\"\nPRETTY_NAME=\"openSUSE Leap 15.6\"\n",
			&inventory.OS{ID: "opensuse-leap", VersionID: "15.6", PrettyName: "openSUSE Leap 15.6", IDLike: []string{"suse", "opensuse"}}},
		{"wolfi", etcOSRelease, "ID=wolfi\nNAME=\"Wolfi\"\nPRETTY_NAME=\"Wolfi\"\nVERSION_ID=\"20230201\"\nHOME_URL=\"https://wolfi.dev\"\n",
			&inventory.OS{ID: "wolfi", VersionID: "20230201", PrettyName: "Wolfi"}},
		{"quoting and escapes", etcOSRelease, `# comment
ID='my'os
NAME="A \"quoted\" \$name \\ back\slash"
VERSION=plain\ word
VERSION_ID="1.0" # trailing comment
BROKEN="unterminated
not an assignment
PRETTY_NAME=two words
`, &inventory.OS{ID: "myos", VersionID: "1.0", PrettyName: `A "quoted" $name \ back\slash plain word`}},
		{"no ID defaults to linux", etcOSRelease, "NAME=Linux\n", &inventory.OS{ID: "linux", PrettyName: "Linux"}},
		{"lsb-release", lsbRelease, "DISTRIB_ID=Ubuntu\nDISTRIB_RELEASE=22.04\nDISTRIB_CODENAME=jammy\nDISTRIB_DESCRIPTION=\"Ubuntu 22.04.4 LTS\"\n",
			&inventory.OS{ID: "ubuntu", VersionID: "22.04", Codename: "jammy", PrettyName: "Ubuntu 22.04.4 LTS"}},
		{"alpine-release", alpineRelease, "3.20.3\n", &inventory.OS{ID: "alpine", VersionID: "3.20.3"}},
		{"debian_version stable", debianVersion, "12.5\n", &inventory.OS{ID: "debian", VersionID: "12.5"}},
		{"debian_version testing", debianVersion, "trixie/sid\n", &inventory.OS{ID: "debian", Codename: "trixie"}},
		{"redhat-release", "/etc/redhat-release", "Red Hat Enterprise Linux release 8.10 (Ootpa)\n",
			&inventory.OS{ID: "rhel", VersionID: "8.10", Codename: "Ootpa", PrettyName: "Red Hat Enterprise Linux release 8.10 (Ootpa)"}},
		{"centos-release", "/etc/centos-release", "CentOS Linux release 7.9.2009 (Core)\n",
			&inventory.OS{ID: "centos", VersionID: "7.9.2009", Codename: "Core", PrettyName: "CentOS Linux release 7.9.2009 (Core)"}},
		{"centos stream", "/etc/centos-release", "CentOS Stream release 9\n",
			&inventory.OS{ID: "centos", VersionID: "9", PrettyName: "CentOS Stream release 9"}},
		{"rocky-release", "/etc/rocky-release", "Rocky Linux release 9.3 (Blue Onyx)\n",
			&inventory.OS{ID: "rocky", VersionID: "9.3", Codename: "Blue Onyx", PrettyName: "Rocky Linux release 9.3 (Blue Onyx)"}},
		{"almalinux-release", "/etc/almalinux-release", "AlmaLinux release 9.4 (Seafoam Ocelot)\n",
			&inventory.OS{ID: "almalinux", VersionID: "9.4", Codename: "Seafoam Ocelot", PrettyName: "AlmaLinux release 9.4 (Seafoam Ocelot)"}},
		{"fedora-release", "/etc/fedora-release", "Fedora release 40 (Forty)\n",
			&inventory.OS{ID: "fedora", VersionID: "40", Codename: "Forty", PrettyName: "Fedora release 40 (Forty)"}},
		{"system-release amazon", "/etc/system-release", "Amazon Linux release 2 (Karoo)\n",
			&inventory.OS{ID: "amzn", VersionID: "2", Codename: "Karoo", PrettyName: "Amazon Linux release 2 (Karoo)"}},
		{"SuSE-release", "/etc/SuSE-release", "SUSE Linux Enterprise Server 12 (x86_64)\nVERSION = 12\nPATCHLEVEL = 5\n",
			&inventory.OS{ID: "sles", VersionID: "12.5", PrettyName: "SUSE Linux Enterprise Server 12 (x86_64)"}},
		{"openSUSE SuSE-release", "/etc/SuSE-release", "openSUSE 13.2 (x86_64)\nVERSION = 13.2\nCODENAME = Harlequin\n",
			&inventory.OS{ID: "opensuse", VersionID: "13.2", Codename: "Harlequin", PrettyName: "openSUSE 13.2 (x86_64)"}},
		{"photon-release", "/etc/photon-release", "VMware Photon OS 5.0\nPHOTON_BUILD_NUMBER=dde71ec57\n",
			&inventory.OS{ID: "photon", VersionID: "5.0", PrettyName: "VMware Photon OS 5.0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fi := inventory.FileInfo{Path: tt.path, Size: int64(len(tt.content))}
			e := New()
			if !e.Required(fi) {
				t.Fatalf("Required(%s) = false", tt.path)
			}
			res, err := e.Extract(context.Background(), inventory.NewInput(fi, strings.NewReader(tt.content), nil))
			if err != nil {
				t.Fatal(err)
			}
			tt.want.Source = tt.path
			if !reflect.DeepEqual(res.OS, tt.want) {
				t.Errorf("got  %+v\nwant %+v", res.OS, tt.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct{ path, content, wantErr string }{
		{etcOSRelease, "", "no os-release assignments"},
		{etcOSRelease, "\x00\x01garbage", "no os-release assignments"},
		{alpineRelease, "", "no version found"},
		{alpineRelease, "not a version\n", "no version found"},
		{debianVersion, "\n", "no version found"},
		{"/etc/redhat-release", "Welcome\n", "unrecognized release line"},
		{"/etc/redhat-release", "Foo Linux release 1.0\n", "unknown distribution"},
		{lsbRelease, "DISTRIB_RELEASE=1\n", "no DISTRIB_ID"},
		{"/etc/SuSE-release", "Something 1\n", "unrecognized release line"},
		{"/etc/photon-release", "Photon\n", "unrecognized release line"},
	}
	for _, tt := range tests {
		t.Run(tt.path+" "+tt.content, func(t *testing.T) {
			fi := inventory.FileInfo{Path: tt.path, Size: int64(len(tt.content))}
			_, err := New().Extract(context.Background(), inventory.NewInput(fi, strings.NewReader(tt.content), nil))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), tt.path) {
				t.Errorf("error = %v, want one naming %s and containing %q", err, tt.path, tt.wantErr)
			}
		})
	}
}

func TestTooLarge(t *testing.T) {
	content := bytes.Repeat([]byte("# padding\n"), maxReleaseFile)
	fi := inventory.FileInfo{Path: etcOSRelease, Size: int64(len(content))}
	_, err := New().Extract(context.Background(), inventory.NewInput(fi, bytes.NewReader(content), nil))
	if err == nil || !strings.Contains(err.Error(), "limit") {
		t.Errorf("error = %v, want a size limit error", err)
	}
}

func TestRequired(t *testing.T) {
	for p, want := range map[string]bool{
		"/etc/os-release":         true,
		"/usr/lib/os-release":     true,
		"/etc/alpine-release":     true,
		"/etc/debian_version":     true,
		"/etc/system-release":     true,
		"/etc/os-release.bak":     false,
		"/x/etc/os-release":       false,
		"/etc/system-release-cpe": false,
	} {
		if got := New().Required(inventory.FileInfo{Path: p}); got != want {
			t.Errorf("Required(%s) = %v, want %v", p, got, want)
		}
	}
}

func TestSelect(t *testing.T) {
	deb := &inventory.OS{ID: "debian", VersionID: "12", Codename: "bookworm", Source: etcOSRelease}
	debTesting := &inventory.OS{ID: "debian", Codename: "trixie", Source: usrLibOSRelease}
	debVersion := &inventory.OS{ID: "debian", VersionID: "12.5", Source: debianVersion}
	alpine := &inventory.OS{ID: "alpine", VersionID: "3.20", Source: etcOSRelease}
	alpineRel := &inventory.OS{ID: "alpine", VersionID: "3.20.3", Source: alpineRelease}
	ubuntu := &inventory.OS{ID: "ubuntu", VersionID: "24.04", Source: usrLibOSRelease}
	sid := &inventory.OS{ID: "debian", Codename: "trixie", Source: debianVersion}
	rocky := &inventory.OS{ID: "rocky", VersionID: "9.3", Source: "/etc/rocky-release"}
	redhat := &inventory.OS{ID: "rhel", VersionID: "9.3", Source: "/etc/redhat-release"}
	tests := []struct {
		name  string
		found map[string]*inventory.OS
		want  *inventory.OS
	}{
		{"empty", nil, nil},
		{"etc wins", map[string]*inventory.OS{etcOSRelease: deb, usrLibOSRelease: ubuntu}, deb},
		{"usr lib", map[string]*inventory.OS{usrLibOSRelease: ubuntu, debianVersion: sid}, ubuntu},
		{"debian_version keeps os-release version", map[string]*inventory.OS{etcOSRelease: deb, debianVersion: debVersion}, deb},
		{"debian_version fills missing version", map[string]*inventory.OS{usrLibOSRelease: debTesting, debianVersion: debVersion},
			&inventory.OS{ID: "debian", VersionID: "12.5", Codename: "trixie", Source: usrLibOSRelease}},
		{"alpine-release full version", map[string]*inventory.OS{etcOSRelease: alpine, alpineRelease: alpineRel},
			&inventory.OS{ID: "alpine", VersionID: "3.20.3", Source: etcOSRelease}},
		{"alpine-release alone", map[string]*inventory.OS{alpineRelease: alpineRel}, alpineRel},
		{"specific before redhat-release", map[string]*inventory.OS{"/etc/redhat-release": redhat, "/etc/rocky-release": rocky}, rocky},
		{"debian_version alone", map[string]*inventory.OS{debianVersion: debVersion}, debVersion},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Select(tt.found)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
	if debTesting.VersionID != "" {
		t.Error("Select modified its input")
	}
}

func TestPURL(t *testing.T) {
	one := 1
	zero := 0
	debian := &inventory.OS{ID: "debian", VersionID: "12"}
	tests := []struct {
		name string
		pkg  inventory.Package
		os   *inventory.OS
		want string
	}{
		{"deb", inventory.Package{Type: "deb", Name: "libc6", Version: "2.36-9+deb12u7", Arch: "amd64", SourceName: "glibc"}, debian,
			"pkg:deb/debian/libc6@2.36-9%2Bdeb12u7?arch=amd64&distro=debian-12&upstream=glibc"},
		{"deb same source", inventory.Package{Type: "deb", Name: "bash", Version: "5.2.15-2+b2", Arch: "amd64", SourceName: "bash"}, debian,
			"pkg:deb/debian/bash@5.2.15-2%2Bb2?arch=amd64&distro=debian-12"},
		{"deb epoch version", inventory.Package{Type: "deb", Name: "login", Version: "1:4.13+dfsg1-1+b1", Arch: "amd64", SourceName: "shadow"},
			&inventory.OS{ID: "ubuntu", VersionID: "24.04"},
			"pkg:deb/ubuntu/login@1:4.13%2Bdfsg1-1%2Bb1?arch=amd64&distro=ubuntu-24.04&upstream=shadow"},
		{"apk", inventory.Package{Type: "apk", Name: "musl", Version: "1.2.5-r0", Arch: "x86_64", SourceName: "musl"}, &inventory.OS{ID: "alpine", VersionID: "3.20.3"},
			"pkg:apk/alpine/musl@1.2.5-r0?arch=x86_64&distro=alpine-3.20.3"},
		{"apk no upstream", inventory.Package{Type: "apk", Name: "libcrypto3", Version: "3.3.2-r0", Arch: "x86_64", SourceName: "openssl"}, &inventory.OS{ID: "wolfi", VersionID: "20230201"},
			"pkg:apk/wolfi/libcrypto3@3.3.2-r0?arch=x86_64&distro=wolfi-20230201"},
		{"rpm rhel epoch", inventory.Package{Type: "rpm", Name: "openssl-libs", Version: "3.0.7-27.el9", Epoch: &one, Arch: "x86_64", SourceName: "openssl"}, &inventory.OS{ID: "rhel", VersionID: "9.4"},
			"pkg:rpm/redhat/openssl-libs@3.0.7-27.el9?arch=x86_64&distro=rhel-9.4&epoch=1&upstream=openssl"},
		{"rpm zero epoch kept", inventory.Package{Type: "rpm", Name: "bash", Version: "5.1.8-9.el9", Epoch: &zero, Arch: "x86_64", SourceName: "bash"}, &inventory.OS{ID: "rocky", VersionID: "9.3"},
			"pkg:rpm/rocky/bash@5.1.8-9.el9?arch=x86_64&distro=rocky-9.3&epoch=0"},
		{"rpm amazon", inventory.Package{Type: "rpm", Name: "curl", Version: "8.5.0-1.amzn2023", Arch: "x86_64"}, &inventory.OS{ID: "amzn", VersionID: "2023"},
			"pkg:rpm/amazon/curl@8.5.0-1.amzn2023?arch=x86_64&distro=amzn-2023"},
		{"rpm opensuse", inventory.Package{Type: "rpm", Name: "zypper", Version: "1.14.73-150600.1.1", Arch: "x86_64"}, &inventory.OS{ID: "opensuse-leap", VersionID: "15.6"},
			"pkg:rpm/opensuse/zypper@1.14.73-150600.1.1?arch=x86_64&distro=opensuse-leap-15.6"},
		{"rpm sles", inventory.Package{Type: "rpm", Name: "zypper", Version: "1.14.73-150600.1.1", Arch: "x86_64"}, &inventory.OS{ID: "sles", VersionID: "15.5"},
			"pkg:rpm/sles/zypper@1.14.73-150600.1.1?arch=x86_64&distro=sles-15.5"},
		{"no version id", inventory.Package{Type: "deb", Name: "bash", Version: "5.2.21-2"}, &inventory.OS{ID: "debian"},
			"pkg:deb/debian/bash@5.2.21-2?distro=debian"},
		{"nil os deb", inventory.Package{Type: "deb", Name: "bash", Version: "5.2", Arch: "arm64"}, nil, "pkg:deb/debian/bash@5.2?arch=arm64"},
		{"nil os apk", inventory.Package{Type: "apk", Name: "busybox", Version: "1.36.1-r29"}, nil, "pkg:apk/alpine/busybox@1.36.1-r29"},
		{"nil os rpm", inventory.Package{Type: "rpm", Name: "glibc", Version: "2.34-100.el9", Arch: "noarch"}, nil, "pkg:rpm/redhat/glibc@2.34-100.el9?arch=noarch"},
		{"not an os package", inventory.Package{Type: "npm", Name: "left-pad", Version: "1.3.0"}, debian, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := PURL(&tt.pkg, tt.os); got != tt.want {
				t.Errorf("PURL = %s\nwant   %s", got, tt.want)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	f.Add(etcOSRelease, []byte("ID=debian\nVERSION_ID=\"12\"\nNAME='x'\\'y\n"))
	f.Add(alpineRelease, []byte("3.20.3\n"))
	f.Add(debianVersion, []byte("trixie/sid\n"))
	f.Add("/etc/redhat-release", []byte("Red Hat Enterprise Linux release 8.10 (Ootpa)\n"))
	f.Add("/etc/SuSE-release", []byte("openSUSE 13.2 (x86_64)\nVERSION = 13.2\n"))
	f.Add("/etc/photon-release", []byte("VMware Photon OS 5.0\n"))
	f.Add(lsbRelease, []byte("DISTRIB_ID=Ubuntu\nDISTRIB_RELEASE=22.04\n"))
	f.Fuzz(func(t *testing.T, path string, b []byte) {
		if !New().Required(inventory.FileInfo{Path: path}) {
			return
		}
		os, err := Parse(path, b)
		if err != nil {
			return
		}
		if os.ID == "" || os.Source != path {
			t.Fatalf("Parse(%s) = %+v without ID or Source", path, os)
		}
		if got := Select(map[string]*inventory.OS{path: os}); got == nil || got.ID != os.ID {
			t.Fatalf("Select of a single OS = %+v, want ID %s", got, os.ID)
		}
		_ = PURL(&inventory.Package{Type: "deb", Name: "x", Version: "1"}, os)
	})
}
