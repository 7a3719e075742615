package parity

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/mamorisec/mamori/internal/testenv"
)

// goApps are the main packages under testdata/goapps, built into
// ROOT/usr/local/bin/NAME. Each imports old vulnerable module versions,
// some calling the vulnerable symbols and some not (see each main.go).
var goApps = []struct {
	name     string
	stripped bool // linked with -ldflags="-s -w"
}{
	{"textyaml", false},
	{"netjwt", false},
	{"ginserver", false},
	{"gjsonstripped", true},
	{"jwtaudience", false},
}

// npmPackages are installed with npm into ROOT/app; testdata/npm-osv has
// records for most of them (and one, lodash's GHSA-jf85-cpcp-j695, that
// does not affect the installed version).
var npmPackages = []string{
	"lodash@4.17.15",
	"minimist@1.2.0",
	"axios@0.21.0",
	"node-fetch@2.6.0",
	"qs@6.5.2",
	"semver@7.3.5",
	"ansi-regex@5.0.0",
	"glob-parent@5.1.0",
}

// pythonDists are written as pip-installed dist-info directories into
// ROOT/usr/local/lib/python3.11/site-packages. The PyPI registry is not
// reachable from the build machines, so the test writes the metadata pip
// would leave; every one has PYSEC records in the shared OSV data.
var pythonDists = []struct{ name, version, module string }{
	{"Django", "3.2", "django"},
	{"PyYAML", "5.3", "yaml"},
	{"Jinja2", "2.10", "jinja2"},
	{"requests", "2.19.1", "requests"},
	{"urllib3", "1.24.1", "urllib3"},
	{"Pillow", "8.0.0", "PIL"},
	{"Flask", "0.12", "flask"},
	{"Werkzeug", "0.15.0", "werkzeug"},
	{"cryptography", "2.9", "cryptography"},
	{"lxml", "4.6.2", "lxml"},
	{"paramiko", "2.4.1", "paramiko"},
	{"typed-ast", "1.3.1", "typed_ast"},
	{"Twisted", "19.2.0", "twisted"},
}

// rootfsFormat changes whenever the way the root file system is built
// changes, so that a cached tree of the old form is not reused.
const rootfsFormat = "2"

// artifacts are the scanned artifacts: a root file system and the same
// tree as a one-layer Docker archive.
type artifacts struct {
	root    string // the root file system
	archive string // the Docker archive ("docker save" format)
}

// buildArtifacts returns a root file system holding the Go binaries, the
// npm tree, the Python distributions and a Debian 12 package database (the
// status entries of testdata/debian/status, taken from a Debian 12
// machine's /var/lib/dpkg/status), and a Docker archive of it made by
// bench/cmd/mkimage. They are built once per content of their inputs into
// the user cache directory (mamori-parity/KEY) and reused by later runs;
// scanners only read them.
func buildArtifacts(ctx context.Context, t *testing.T) artifacts {
	t.Helper()
	cache, err := os.UserCacheDir()
	if err != nil {
		t.Fatalf("no user cache directory: %v", err)
	}
	key, err := rootfsKey()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(cache, "mamori-parity", key)
	a := artifacts{root: filepath.Join(dir, "rootfs"), archive: filepath.Join(dir, "image.tar")}
	if _, err := os.Stat(filepath.Join(dir, ".complete")); err == nil {
		t.Logf("reusing the artifacts in %s", dir)
		return a
	}
	testenv.NeedCommand(t, "npm")
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		t.Fatal(err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), "build-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	t.Logf("building the artifacts into %s", dir)
	root := filepath.Join(tmp, "rootfs")
	for _, app := range goApps {
		buildGoApp(ctx, t, app.name, app.stripped, filepath.Join(root, "usr", "local", "bin", app.name))
	}
	installNPM(ctx, t, filepath.Join(root, "app"))
	writePython(t, filepath.Join(root, "usr", "local", "lib", "python3.11", "site-packages"))
	for src, dst := range map[string]string{"status": "var/lib/dpkg/status", "os-release": "etc/os-release"} {
		b, err := os.ReadFile(filepath.Join("testdata", "debian", src))
		if err != nil {
			t.Fatal(err)
		}
		if err := writeFile(filepath.Join(root, filepath.FromSlash(dst)), b); err != nil {
			t.Fatal(err)
		}
	}
	repo, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	mkimage := filepath.Join(t.TempDir(), "mkimage")
	run(ctx, t, repo, os.Environ(), "go", "build", "-o", mkimage, "./bench/cmd/mkimage")
	run(ctx, t, tmp, os.Environ(), mkimage, "-tar-dir", t.TempDir(), "-docker", filepath.Join(tmp, "image.tar"),
		"-tag", "mamori-parity:latest", "-layer", root+"=parity artifacts")
	if err := os.WriteFile(filepath.Join(tmp, ".complete"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	os.RemoveAll(dir)
	if err := os.Rename(tmp, dir); err != nil {
		t.Fatal(err)
	}
	return a
}

// rootfsKey hashes everything the root file system is built from.
func rootfsKey() (string, error) {
	h := sha256.New()
	fmt.Fprintln(h, rootfsFormat, runtime.Version(), goApps, npmPackages, pythonDists)
	for _, dir := range []string{"testdata/goapps", "testdata/debian"} {
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			fmt.Fprintf(h, "%s %d\n", filepath.ToSlash(path), len(b))
			h.Write(b)
			return nil
		})
		if err != nil {
			return "", fmt.Errorf("hashing %s: %w", dir, err)
		}
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// buildGoApp builds testdata/goapps/NAME with the modules its go.mod pins,
// fetched through the Go module proxy.
func buildGoApp(ctx context.Context, t *testing.T, name string, stripped bool, out string) {
	t.Helper()
	work := t.TempDir()
	if err := os.CopyFS(work, os.DirFS(filepath.Join("testdata", "goapps", name))); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "GOFLAGS=-mod=mod -buildvcs=false", "GOTOOLCHAIN=local", "GOWORK=off")
	run(ctx, t, work, env, "go", "mod", "tidy")
	args := []string{"build", "-trimpath", "-o", out}
	if stripped {
		args = append(args, "-ldflags=-s -w")
	}
	run(ctx, t, work, env, "go", append(args, ".")...)
}

// installNPM installs npmPackages from the npm registry into dir.
func installNPM(ctx context.Context, t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	pkg := `{"name": "parity-app", "version": "1.0.0", "private": true}` + "\n"
	if err := os.WriteFile(filepath.Join(dir, "package.json"), []byte(pkg), 0o644); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "npm_config_update_notifier=false")
	args := append([]string{"install", "--no-audit", "--no-fund", "--ignore-scripts", "--save-exact"}, npmPackages...)
	run(ctx, t, dir, env, "npm", args...)
}

// writePython writes a dist-info directory for each of pythonDists, the
// files pip leaves, and a stub top-level module.
func writePython(t *testing.T, dir string) {
	t.Helper()
	for _, d := range pythonDists {
		info := fmt.Sprintf("%s-%s.dist-info", strings.ReplaceAll(d.name, "-", "_"), d.version)
		files := map[string]string{
			info + "/METADATA": fmt.Sprintf("Metadata-Version: 2.1\nName: %s\nVersion: %s\nSummary: %s\n"+
				"Requires-Python: >=3.6\n\n", d.name, d.version, d.name+" as installed by pip"),
			info + "/WHEEL":           "Wheel-Version: 1.0\nGenerator: bdist_wheel (0.37.1)\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
			info + "/INSTALLER":       "pip\n",
			info + "/top_level.txt":   d.module + "\n",
			d.module + "/__init__.py": "",
		}
		var record strings.Builder
		for _, name := range []string{d.module + "/__init__.py", info + "/METADATA", info + "/WHEEL", info + "/INSTALLER", info + "/top_level.txt"} {
			fmt.Fprintf(&record, "%s,,\n", name)
		}
		fmt.Fprintf(&record, "%s/RECORD,,\n", info)
		files[info+"/RECORD"] = record.String()
		for name, content := range files {
			p := filepath.Join(dir, filepath.FromSlash(name))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// run runs a command in dir and returns its standard output; a failure
// ends the test with the command's standard error.
func run(ctx context.Context, t *testing.T, dir string, env []string, name string, args ...string) []byte {
	t.Helper()
	out, err := runStatus(ctx, dir, env, name, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// runStatus runs a command and returns its standard output, and an error
// that quotes its standard error when it fails. Exit status 1 is returned
// as *exec.ExitError with the output, for tools that use it to say "found
// something".
func runStatus(ctx context.Context, dir string, env []string, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = env
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		msg := stderr.String()
		if len(msg) > 4000 {
			msg = "..." + msg[len(msg)-4000:]
		}
		return out, fmt.Errorf("%s %s (in %s): %w\n%s", name, strings.Join(args, " "), dir, err, msg)
	}
	return out, nil
}
