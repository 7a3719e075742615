package match

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mamorisec/mamori/internal/scanner"
	"github.com/mamorisec/mamori/internal/testenv"
	"github.com/mamorisec/mamori/internal/vulndb"
)

func openDB(t testing.TB, paths ...string) *vulndb.DB {
	t.Helper()
	b := vulndb.NewBuilder()
	for _, p := range paths {
		if _, err := b.AddPath(filepath.Base(p), p, p); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(t.TempDir(), "mamori.db")
	if _, err := b.Write(out, time.Now()); err != nil {
		t.Fatal(err)
	}
	db, err := vulndb.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// TestDebianRootfsAgainstDpkg scans a real debootstrap root filesystem of
// Debian 12 main (packages older than the bookworm-security fixes) with
// the real Debian records and checks every finding against an oracle that
// shares no code with mamori: dpkg-query reads the package database and
// dpkg --compare-versions orders the versions. No finding may be missing
// and none may be extra.
func TestDebianRootfsAgainstDpkg(t *testing.T) {
	root := testenv.Debootstrap(t)
	dpkgQuery := testenv.NeedCommand(t, "dpkg-query")
	dpkg := testenv.NeedCommand(t, "dpkg")
	recordsDir := testenv.SharedData(t, "osv/debian")

	// Oracle: installed source packages and versions, as dpkg reads them.
	out, err := exec.Command(dpkgQuery, "--admindir="+filepath.Join(root, "var/lib/dpkg"), "-W",
		"-f", "${db:Status-Abbrev}|${source:Package}|${source:Version}\n").Output()
	if err != nil {
		t.Fatal(err)
	}
	installed := map[string][]string{} // source → versions
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(line, "|")
		if len(f) != 3 || !strings.HasPrefix(f[0], "ii") {
			continue
		}
		if !slices.Contains(installed[f[1]], f[2]) {
			installed[f[1]] = append(installed[f[1]], f[2])
		}
	}
	want := map[string]bool{} // "source version recordID"
	entries, err := os.ReadDir(recordsDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		data, err := os.ReadFile(filepath.Join(recordsDir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		var r struct {
			ID       string `json:"id"`
			Affected []struct {
				Package struct{ Ecosystem, Name string }
				Ranges  []struct {
					Events []map[string]string
				}
			}
		}
		if err := json.Unmarshal(data, &r); err != nil {
			t.Fatalf("%s: %v", e.Name(), err)
		}
		for _, a := range r.Affected {
			if a.Package.Ecosystem != "Debian:12" {
				continue
			}
			for _, v := range installed[a.Package.Name] {
				for _, rg := range a.Ranges {
					if dpkgAffected(t, dpkg, v, rg.Events) {
						want[a.Package.Name+" "+v+" "+r.ID] = true
					}
				}
			}
		}
	}

	rep, err := scanner.Inventory(context.Background(), "dir:"+root, scanner.Options{NoCache: true})
	if err != nil {
		t.Fatal(err)
	}
	res, err := New(openDB(t, recordsDir)).Match(context.Background(), rep)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, f := range res.Findings {
		if f.Package.Type != "deb" {
			continue
		}
		for _, id := range f.Records {
			got[f.MatchedName+" "+f.MatchedVersion+" "+id] = true
		}
	}
	if len(want) < 20 {
		t.Fatalf("the oracle found only %d vulnerable source packages; the rootfs or records changed", len(want))
	}
	for k := range want {
		if !got[k] {
			t.Errorf("missed: %s", k)
		}
	}
	for k := range got {
		if !want[k] {
			t.Errorf("phantom: %s", k)
		}
	}
	t.Logf("%d packages, %d findings (source, version, record) agree with dpkg", len(rep.Packages), len(want))
	for _, w := range res.Warnings {
		t.Errorf("warning: %s", w)
	}
}

// dpkgAffected evaluates introduced/fixed events with the real dpkg.
func dpkgAffected(t *testing.T, dpkg, v string, events []map[string]string) bool {
	affected := false
	for _, ev := range events {
		if iv, ok := ev["introduced"]; ok {
			if iv == "0" || exec.Command(dpkg, "--compare-versions", v, "ge", iv).Run() == nil {
				affected = true
			}
		}
		if fv, ok := ev["fixed"]; ok && affected {
			if exec.Command(dpkg, "--compare-versions", v, "ge", fv).Run() == nil {
				affected = false
			}
		}
		if _, ok := ev["last_affected"]; ok {
			t.Fatalf("unexpected last_affected event in Debian records")
		}
	}
	return affected
}
