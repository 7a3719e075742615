package misconfig

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/mamorisec/mamori/internal/inventory"
)

// rules lists the rule IDs of findings, with the source.
func rules(fs []inventory.Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.RuleID+"@"+f.Source)
	}
	return out
}

func TestCheckImageConfig(t *testing.T) {
	healthy := &v1.HealthConfig{Test: []string{"CMD-SHELL", "curl -f http://localhost/ || exit 1"}}
	tests := []struct {
		name string
		cfg  v1.Config
		want []string
	}{
		{"non-root with health check", v1.Config{User: "app", Healthcheck: healthy}, nil},
		{"no USER", v1.Config{Healthcheck: healthy}, []string{"MISC-001@config"}},
		{"USER root", v1.Config{User: "root", Healthcheck: healthy}, []string{"MISC-001@config"}},
		{"USER 0", v1.Config{User: "0", Healthcheck: healthy}, []string{"MISC-001@config"}},
		{"USER root:root", v1.Config{User: "root:root", Healthcheck: healthy}, []string{"MISC-001@config"}},
		{"USER 0:0", v1.Config{User: "0:0", Healthcheck: healthy}, []string{"MISC-001@config"}},
		{"USER 1000:0", v1.Config{User: "1000:0", Healthcheck: healthy}, nil},
		{"USER 65534", v1.Config{User: "65534", Healthcheck: healthy}, nil},
		{"no HEALTHCHECK", v1.Config{User: "app"}, []string{"MISC-002@config"}},
		{"HEALTHCHECK NONE", v1.Config{User: "app", Healthcheck: &v1.HealthConfig{Test: []string{"NONE"}}}, []string{"MISC-002@config"}},
		{"empty HEALTHCHECK", v1.Config{User: "app", Healthcheck: &v1.HealthConfig{}}, []string{"MISC-002@config"}},
		{"admin ports", v1.Config{User: "app", Healthcheck: healthy, ExposedPorts: map[string]struct{}{
			"22/tcp": {}, "80/tcp": {}, "2375/tcp": {}, "10250/tcp": {}, "6443/tcp": {}, "53/udp": {}, "bogus": {},
		}}, []string{"MISC-006@config", "MISC-006@config", "MISC-006@config"}},
		{"secret env", v1.Config{User: "app", Healthcheck: healthy, Env: []string{
			"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
			"DB_PASSWORD=hunter2",
			"AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
			"POSTGRES_PASSWORD_FILE=/run/secrets/pg",
			"GPG_KEY=A035C8C19219BA821ECEA86B64E628F8D684696D",
			"API_TOKEN=",
			"MYSQL_ALLOW_EMPTY_PASSWORD=yes",
			"GITHUB_TOKEN=${GITHUB_TOKEN}",
			"NO_EQUALS_SIGN",
		}}, []string{"MISC-007@config:env", "MISC-007@config:env"}},
		{"secret label", v1.Config{User: "app", Healthcheck: healthy, Labels: map[string]string{
			"org.opencontainers.image.source": "https://github.com/o/r", "deploy.api-key": "abc123def456",
		}}, []string{"MISC-007@config:label"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := CheckImage(&v1.ConfigFile{Config: tt.cfg}, nil)
			if strings.Join(rules(got), " ") != strings.Join(tt.want, " ") {
				t.Errorf("got %v, want %v", rules(got), tt.want)
			}
			checkFindings(t, got)
		})
	}
}

// checkFindings checks the fields every finding must have and that no
// secret from the tests appears anywhere in it.
func checkFindings(t *testing.T, fs []inventory.Finding) {
	t.Helper()
	for _, f := range fs {
		if f.Kind != inventory.KindMisconfig || f.RuleID == "" || f.Title == "" || f.Severity == "" || f.Metadata["remediation"] == "" {
			t.Errorf("incomplete finding %+v", f)
		}
		if cis := f.Metadata["cis"]; (cis != "") != strings.HasPrefix(f.Category, "CIS-") {
			t.Errorf("%s: category %q does not match cis %q", f.RuleID, f.Category, cis)
		}
		b, err := json.Marshal(f)
		if err != nil {
			t.Fatal(err)
		}
		checkRedacted(t, string(b))
	}
}

func TestCheckImageHistory(t *testing.T) {
	diff := func(i int) v1.Hash { return v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%064x", i)} }
	cfg := &v1.ConfigFile{
		Config: v1.Config{User: "app", Healthcheck: &v1.HealthConfig{Test: []string{"CMD", "true"}}, Env: []string{"DB_PASSWORD=", "API_TOKEN=sup3rs3cret-in-config"}},
		RootFS: v1.RootFS{Type: "layers", DiffIDs: []v1.Hash{diff(0), diff(1), diff(2), diff(3), diff(4), diff(5)}},
		History: []v1.History{
			{CreatedBy: "/bin/sh -c #(nop) ADD file:6ed4a5b1c3f1e3d5 in / "},
			{CreatedBy: `/bin/sh -c #(nop)  CMD ["bash"]`, EmptyLayer: true},
			{CreatedBy: "/bin/sh -c #(nop)  ENV DB_PASSWORD=hunter2", EmptyLayer: true},
			{CreatedBy: "/bin/sh -c #(nop)  ENV DB_PASSWORD=", EmptyLayer: true},
			{CreatedBy: "ARG SIGNING_KEY_PASSPHRASE=sup3rs3cret-arg", EmptyLayer: true},
			{CreatedBy: "ENV API_TOKEN=sup3rs3cret-in-config # buildkit", EmptyLayer: true},
			{CreatedBy: "|1 NPM_TOKEN=tok_live_abc /bin/sh -c npm ci"},
			{CreatedBy: "RUN /bin/sh -c curl -fsSL https://get.example.com | sh # buildkit"},
			{CreatedBy: "ADD https://example.com/app.jar /opt/app.jar # buildkit"},
			{CreatedBy: "RUN /bin/sh -c apt-get update # buildkit"},
			{CreatedBy: "RUN |2 A=1 GITHUB_TOKEN=ghp_0123456789abcdef /bin/sh -c make # buildkit", EmptyLayer: true},
			{CreatedBy: "/bin/sh -c export API_KEY=sup3rs3cret && ./configure"},
			{CreatedBy: "/bin/sh -c apt-get update && apt-get install -y x && rm -rf /var/lib/apt/lists/*"},
		},
	}
	got := CheckImage(cfg, nil)
	type want struct {
		rule, path string
		layer      int
	}
	wants := []want{
		{SecretEnv, "API_KEY", 5},
		{SecretEnv, "API_TOKEN", 0},
		{SecretEnv, "DB_PASSWORD", 0},
		{SecretEnv, "GITHUB_TOKEN", 4},
		{SecretEnv, "NPM_TOKEN", 1},
		{SecretEnv, "SIGNING_KEY_PASSPHRASE", 0},
		{AddURL, "", 3},
		{PipeToShell, "", 2},
		{UpdateAlone, "", 4},
	}
	if len(got) != len(wants) {
		t.Fatalf("got %d findings %v, want %d", len(got), rules(got), len(wants))
	}
	for i, w := range wants {
		f := got[i]
		wantSource := inventory.SourceHistory
		if w.path == "API_TOKEN" {
			wantSource = inventory.SourceEnv // reported from the config, not again from history
		}
		if f.RuleID != w.rule || f.Path != w.path || f.Layer.Index != w.layer || f.Source != wantSource {
			t.Errorf("finding %d = %s %q layer %d (%s), want %s %q layer %d", i, f.RuleID, f.Path, f.Layer.Index, f.Source, w.rule, w.path, w.layer)
		}
		if wantSource == inventory.SourceHistory && (f.Layer.CreatedBy == "" || f.Metadata["historyIndex"] == "") {
			t.Errorf("finding %d lacks its history entry: %+v", i, f)
		}
		if wantSource == inventory.SourceHistory && f.Metadata["emptyLayer"] == "" && f.Layer.DiffID != diff(w.layer).String() {
			t.Errorf("finding %d: diffID %s, want %s", i, f.Layer.DiffID, diff(w.layer))
		}
	}
	checkFindings(t, got)
}

// fileFinding is what the walk makes of the Files extractor's output.
func fileFinding(t *testing.T, path string, mode fs.FileMode, size int64, layer int) []inventory.Finding {
	t.Helper()
	fi := inventory.FileInfo{Path: path, Mode: mode, Size: size}
	if !(Files{}).Required(fi) {
		t.Fatalf("Files does not require %s %v", path, mode)
	}
	fs := fileFindings(fi)
	for i := range fs {
		fs[i].Layer = inventory.Layer{Index: layer, DiffID: fmt.Sprintf("sha256:%064x", layer)}
	}
	return fs
}

func TestCheckImageFiles(t *testing.T) {
	rep := &inventory.Report{
		Packages: []inventory.Package{
			{Name: "sudo", Version: "1.9.13p3-1+deb12u1", Type: inventory.TypeDeb, Path: "/var/lib/dpkg/status", Layer: inventory.Layer{Index: 2}},
			{Name: "bash", Version: "5.2.15-2+b7", Type: inventory.TypeDeb, Path: "/var/lib/dpkg/status"},
		},
		Findings: []inventory.Finding{{Kind: inventory.KindSecret, RuleID: "aws-access-key-id", Path: "/app/.env"}},
	}
	add := func(fs []inventory.Finding) { rep.Findings = append(rep.Findings, fs...) }
	add(fileFinding(t, "/usr/bin/su", 0o755|fs.ModeSetuid, 72000, 0))
	add(fileFinding(t, "/usr/bin/passwd", 0o755|fs.ModeSetuid, 68000, 0))
	add(fileFinding(t, "/usr/bin/expiry", 0o755|fs.ModeSetgid, 30000, 0))
	add(fileFinding(t, "/usr/local/bin/helper", 0o755|fs.ModeSetuid, 1000, 1))
	add(fileFinding(t, "/usr/bin/sudo", 0o755|fs.ModeSetuid, 280000, 2))
	for i := range 3 {
		add(fileFinding(t, fmt.Sprintf("/var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_%d", i), 0o644, 100, 2))
	}
	add(fileFinding(t, "/var/cache/apt/archives/curl_7.88.1-10+deb12u5_amd64.deb", 0o644, 1000, 0))
	add(fileFinding(t, "/home/app/.cache/pip/http/a/b", 0o600, 7, 3))
	for i := range 60 {
		add(fileFinding(t, fmt.Sprintf("/srv/www/%02d.html", i), 0o666, 10, 3))
	}

	got := CheckImage(nil, rep)
	checkFindings(t, got)
	count := map[string]int{}
	for _, f := range got {
		count[f.RuleID]++
		if f.Kind != inventory.KindMisconfig {
			t.Errorf("CheckImage returned a %s finding", f.Kind)
		}
	}
	wantCount := map[string]int{SetuidAdded: 2, SetuidBase: 1, WorldWritable: maxPerFileFindings, PackageCache: 3, SudoInstalled: 1}
	for id, n := range wantCount {
		if count[id] != n {
			t.Errorf("%s: %d findings, want %d (%v)", id, count[id], n, count)
		}
	}
	for _, f := range got {
		switch {
		case f.RuleID == SetuidBase:
			if f.Metadata["files"] != "3" || !strings.Contains(f.Metadata["paths"], "/usr/bin/su") || f.Severity != "LOW" {
				t.Errorf("base setuid summary = %+v", f)
			}
		case f.RuleID == SetuidAdded && f.Path == "/usr/local/bin/helper":
			if f.Severity != "HIGH" || f.Layer.Index != 1 || f.Metadata["mode"] != "4755" || f.Metadata["cis"] != "4.8" {
				t.Errorf("added setuid = %+v", f)
			}
		case f.RuleID == PackageCache && f.Path == "/var/lib/apt/lists":
			if f.Metadata["files"] != "3" || f.Metadata["bytes"] != "300" || f.Layer.Index != 2 || f.Metadata["manager"] != "apt" {
				t.Errorf("apt lists = %+v", f)
			}
		case f.RuleID == SudoInstalled:
			if f.Source != inventory.SourcePackage || f.Match != "sudo 1.9.13p3-1+deb12u1" {
				t.Errorf("sudo = %+v", f)
			}
		case f.RuleID == WorldWritable && f.Path == "":
			if f.Metadata["files"] != "11" {
				t.Errorf("world-writable summary = %+v", f)
			}
		}
	}

	// Without the package database the sudo binary alone is reported.
	rep.Packages = nil
	for _, f := range CheckImage(nil, rep) {
		if f.RuleID == SudoInstalled && (f.Source != inventory.SourceFile || f.Path != "/usr/bin/sudo") {
			t.Errorf("sudo from the file = %+v", f)
		}
	}
}

func TestFilesRequired(t *testing.T) {
	tests := []struct {
		path string
		mode fs.FileMode
		size int64
		want []string
	}{
		{"/usr/bin/ls", 0o755, 140000, nil},
		{"/usr/bin/su", 0o755 | fs.ModeSetuid, 72000, []string{SetuidAdded}},
		{"/usr/bin/wall", 0o755 | fs.ModeSetgid, 30000, []string{SetuidAdded}},
		{"/tmp/x", 0o777, 1, []string{WorldWritable}},
		{"/opt/sticky", 0o644 | fs.ModeSticky, 1, nil},
		{"/usr/bin/sudo", 0o755 | fs.ModeSetuid, 280000, []string{SetuidAdded, SudoInstalled}},
		{"/usr/local/bin/sudo", 0o755, 280000, []string{SudoInstalled}},
		{"/var/lib/apt/lists/lock", 0o640, 0, nil},
		{"/var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_InRelease", 0o644, 151000, []string{PackageCache}},
		{"/var/lib/apt/listsX/a", 0o644, 1, nil},
		{"/var/cache/apt/pkgcache.bin", 0o644, 1, []string{PackageCache}},
		{"/var/cache/apk/APKINDEX.a.tar.gz", 0o644, 1, []string{PackageCache}},
		{"/var/cache/dnf/fedora.solv", 0o644, 1, []string{PackageCache}},
		{"/var/cache/yum/x86_64/7/base/repomd.xml", 0o644, 1, []string{PackageCache}},
		{"/root/.cache/pip/http-v2/a", 0o600, 1, []string{PackageCache}},
		{"/home/app/.npm/_cacache/index-v5/aa", 0o644, 1, []string{PackageCache}},
		{"/home/.cache/pip/x", 0o644, 1, nil},
		{"/root/.cache/other/x", 0o644, 1, nil},
		{"/usr/local/share/.cache/yarn/v6/x", 0o644, 1, []string{PackageCache}},
		{"/srv/cache.db", 0o666 | fs.ModeSetgid, 1, []string{SetuidAdded, WorldWritable}},
	}
	for _, tt := range tests {
		fi := inventory.FileInfo{Path: tt.path, Mode: tt.mode, Size: tt.size}
		if got := (Files{}).Required(fi); got != (len(tt.want) > 0) {
			t.Errorf("Required(%s %v) = %v", tt.path, tt.mode, got)
		}
		res, err := Files{}.Extract(t.Context(), inventory.NewInput(fi, failingReader{t}, nil))
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, f := range res.Findings {
			got = append(got, f.RuleID)
			if f.Path != tt.path || f.Source != inventory.SourceFile {
				t.Errorf("%s: finding %+v", tt.path, f)
			}
		}
		if strings.Join(got, ",") != strings.Join(tt.want, ",") {
			t.Errorf("Extract(%s %v) = %v, want %v", tt.path, tt.mode, got, tt.want)
		}
	}
}

// failingReader fails the test when the extractor reads the content.
type failingReader struct{ t *testing.T }

func (r failingReader) Read([]byte) (int, error) {
	r.t.Error("Files read the file content")
	return 0, fs.ErrInvalid
}

func TestRedact(t *testing.T) {
	tests := []struct{ in, want string }{
		{"ENV DB_PASSWORD=hunter2 PATH=/bin", "ENV DB_PASSWORD=<redacted> PATH=/bin"},
		{`ENV TOKEN="a b c" X=1`, "ENV TOKEN=<redacted> X=1"},
		{"ENV API_KEY sup3rs3cret and more", "ENV API_KEY <redacted>"},
		{"/bin/sh -c #(nop)  ENV SECRET_KEY abc", "/bin/sh -c #(nop)  ENV SECRET_KEY <redacted>"},
		{"RUN curl -u admin:hunter2 https://x", "RUN curl -u admin:<redacted> https://x"},
		{"RUN useradd -u 10001 app", "RUN useradd -u 10001 app"},
		{"RUN git clone https://user:ghp_0123456789@github.com/o/r", "RUN git clone https://user:<redacted>@github.com/o/r"},
		{"RUN mysql --password=hunter2", "RUN mysql --password=<redacted>"},
		{"ENV HOME=/root", "ENV HOME=/root"},
	}
	for _, tt := range tests {
		if got := redactInstruction(tt.in); got != tt.want {
			t.Errorf("redactInstruction(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
