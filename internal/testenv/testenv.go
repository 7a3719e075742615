// Package testenv lets tests find and start the real services they need
// (Docker Engine, registries, tools from Debian packages). Outside CI a missing
// dependency skips the test with a message naming the install script; under
// CI (CI=true) it fails the test, so nothing is silently left untested.
package testenv

import (
	"os"
	"os/exec"
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
