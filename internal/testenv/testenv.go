// Package testenv lets tests find and start the real services they need
// (Docker Engine, registries, tools from Debian packages). Outside CI a missing
// dependency skips the test with a message naming the install script; under
// CI (CI=true) it fails the test, so nothing is silently left untested.
package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// InstallScript is the script that installs every test dependency.
const InstallScript = "scripts/install-test-deps.sh"

// InCI reports whether the tests run under CI (CI=true).
func InCI() bool { return os.Getenv("CI") == "true" }

// Missing fails the test under CI and skips it otherwise.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if InCI() {
		t.Fatalf("missing test dependency (run "+InstallScript+"): "+format, args...)
	}
	t.Skipf("missing test dependency (run "+InstallScript+"): "+format, args...)
}

// NeedCommand returns the path of a command, or reports it Missing.
func NeedCommand(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Missing(t, "command %q not found", name)
	}
	return p
}

// SharedData returns the directory of the real test data in shared/data
// beside the repository (OSV records, Alpine secdb), joined with sub. Tests
// run in their package directory, so the path is found from the module
// root. The data is read in place, never copied into the repository.
func SharedData(t testing.TB, sub string) string {
	t.Helper()
	dir, _ := os.Getwd()
	for d := dir; filepath.Dir(d) != d; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			dir = filepath.Join(filepath.Dir(d), "shared", "data", sub)
			break
		}
	}
	if _, err := os.Stat(dir); err != nil {
		Missing(t, "shared data %s", dir)
	}
	return dir
}
