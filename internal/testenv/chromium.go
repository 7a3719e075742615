package testenv

import (
	"os/exec"
	"path/filepath"
	"testing"
)

// chromiumNames are the names under which Debian and Google ship the browser.
var chromiumNames = []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"}

// Chromium returns the path of a Chromium (or Chrome) executable for browser
// tests, from PATH or /usr/bin, or reports it Missing (Debian package
// chromium).
func Chromium(t testing.TB) string {
	t.Helper()
	for _, name := range chromiumNames {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
		if p, err := exec.LookPath(filepath.Join("/usr/bin", name)); err == nil {
			return p
		}
	}
	Missing(t, "Chromium browser (Debian package chromium; looked for %v in PATH and /usr/bin)", chromiumNames)
	return ""
}
