package parity

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mamorisec/mamori/internal/testenv"
)

// knownDiff is a difference between two tools that the parity test
// accepts, with the reason. docs/parity.md explains the same table.
type knownDiff struct {
	// Check is the comparison: "govulncheck/osv-scanner",
	// "mamori/osv-scanner", "mamori/govulncheck" or "reachability".
	Check string
	// Only is "only TOOL" for a finding only TOOL reports, or
	// "reachability differs".
	Only string
	// Ecosystem, Name and Vuln select the findings; empty matches any.
	// Vuln matches any identifier of the vulnerability's alias group.
	Ecosystem, Name, Vuln string
	Reason                string
}

// knownDiffs lists every accepted difference. An entry that matches no
// difference fails the test, so the table never outlives the behaviour it
// describes.
var knownDiffs = []knownDiff{
	{
		Check: "govulncheck/osv-scanner", Only: "only osv-scanner", Ecosystem: "Go", Vuln: "GO-2026-5024",
		Reason: "the record's only vulnerable package, golang.org/x/sys/windows, is limited to goos windows; " +
			"govulncheck drops a record none of whose packages is for the binary's GOOS/GOARCH (linux/amd64), " +
			"osv-scanner matches the module version only",
	},
	{
		Check: "mamori/govulncheck", Only: "only mamori", Ecosystem: "Go", Vuln: "GO-2026-5024",
		Reason: "as for osv-scanner: mamori matches the module version and does not filter records by the " +
			"binary's GOOS/GOARCH; its reachability says not-reachable, as the package is not in the binary",
	},
	{
		Check: "reachability", Only: "only govulncheck", Ecosystem: "Go", Name: "golang.org/x/text", Vuln: "GO-2021-0113",
		Reason: "mamori limitation: language.Parse is inlined into main.main and has no symbol of its own; " +
			"govulncheck also reads the inlining tables of the Go line table, mamori reads function symbols only",
	},
}

// osvDataDir is the shared OSV data: $MAMORI_OSV_DATA, else shared/data/osv
// beside the repository.
func osvDataDir() string {
	if d := os.Getenv("MAMORI_OSV_DATA"); d != "" {
		return d
	}
	return filepath.Join("..", "..", "..", "shared", "data", "osv")
}

// toolRun is one tool's normalised answer.
type toolRun struct {
	name     string
	findings []Finding
	set      Set
}

func TestParity(t *testing.T) {
	if testing.Short() && !testenv.InCI() {
		t.Skip("the parity test builds artifacts and runs three scanners (never skipped under CI)")
	}
	peers := testenv.PeersDir()
	govulncheck := testenv.NeedCommand(t, filepath.Join(peers, "govulncheck"))
	osvScanner := testenv.NeedCommand(t, filepath.Join(peers, "osv-scanner"))
	testenv.NeedCommand(t, "go")
	data := osvDataDir()
	osvDirs := []string{filepath.Join(data, "go"), filepath.Join(data, "pypi"), filepath.Join(data, "debian"), filepath.Join("testdata", "npm-osv")}
	for _, d := range osvDirs {
		if _, err := os.Stat(d); err != nil {
			testenv.Missing(t, "OSV records in %s (set MAMORI_OSV_DATA): %v", d, err)
		}
	}

	limit := 10 * time.Minute
	if dl, ok := t.Deadline(); ok && time.Until(dl) < limit {
		limit = time.Until(dl) - 10*time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()

	var recs []Record
	for _, d := range osvDirs {
		r, err := ReadRecords(d)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r...)
	}
	dbs := t.TempDir()
	govulndb := filepath.Join(dbs, "govulndb")
	osvdb := filepath.Join(dbs, "osv-scanner")
	if err := WriteGoVulnDB(govulndb, recs); err != nil {
		t.Fatal(err)
	}
	rejected, err := WriteOSVScannerDB(osvdb, recs)
	if err != nil {
		t.Fatal(err)
	}
	if len(rejected) > 0 {
		t.Logf("osv-scanner's schema rejects %d records, which it will skip: %v", len(rejected), rejected)
	}

	art := buildArtifacts(ctx, t)
	env := os.Environ()

	// govulncheck, one binary at a time.
	var gv []Finding
	for _, app := range goApps {
		bin := filepath.Join(art.root, "usr", "local", "bin", app.name)
		out := run(ctx, t, art.root, env, govulncheck, "-db", "file://"+govulndb, "-mode", "binary", "-json", bin)
		fs, err := ParseGovulncheck(bytes.NewReader(out))
		if err != nil {
			t.Fatalf("%s: %v", app.name, err)
		}
		gv = append(gv, fs...)
	}

	// osv-scanner, offline, on the Docker archive of the tree: its image
	// scan runs every artifact extractor (Go binaries, dist-info,
	// node_modules, dpkg) against the image's root, whereas its directory
	// scan walks from "/" and so never finds var/lib/dpkg/status of a tree
	// that is not mounted at "/".
	osvOut := filepath.Join(t.TempDir(), "osv-scanner.json")
	_, err = runStatus(ctx, art.root, env, osvScanner, "scan", "image", "--archive", "--offline",
		"--local-db-path", osvdb, "--all-vulns", "--format", "json", "--output-file", osvOut, art.archive)
	if err != nil && !exitCode(err, 1) {
		t.Fatal(err)
	}
	osvJSON, err := os.ReadFile(osvOut)
	if err != nil {
		t.Fatal(err)
	}
	ov, err := ParseOSVScanner(bytes.NewReader(osvJSON))
	if err != nil {
		t.Fatal(err)
	}

	runs := []*toolRun{{name: "govulncheck", findings: gv}, {name: "osv-scanner", findings: ov}}
	mdir, marchive, mcached, err := runMamori(ctx, t, osvDirs, art)
	if err != nil {
		t.Fatalf("mamori: %v", err)
	}
	runs = append(runs, &toolRun{name: "mamori", findings: marchive},
		&toolRun{name: "mamori dir:", findings: mdir}, &toolRun{name: "mamori cached", findings: mcached})

	groups := NewGroups()
	groups.AddRecords(recs)
	for _, r := range runs {
		groups.AddFindings(r.findings)
	}
	for _, r := range runs {
		r.set = groups.Set(r.findings)
		t.Logf("%s: %d findings\n%s", r.name, len(r.set), formatSet(r.set))
	}
	byName := map[string]*toolRun{}
	for _, r := range runs {
		byName[r.name] = r
	}
	goOnly := func(k Key, _ Finding) bool { return k.Ecosystem == "Go" }

	used := make([]bool, len(knownDiffs))
	check := func(name string, a, b *toolRun, keep func(Key, Finding) bool) {
		onlyA, onlyB := Diff(a.set.Filter(keep), b.set.Filter(keep))
		report(t, groups, name, "only "+a.name, onlyA, used)
		report(t, groups, name, "only "+b.name, onlyB, used)
	}
	check("govulncheck/osv-scanner", byName["govulncheck"], byName["osv-scanner"], goOnly)
	all := func(Key, Finding) bool { return true }
	// mamori must give the same answer for the tree as a directory, as an
	// archive, and as an archive whose layers come from its cache.
	for _, other := range []string{"mamori dir:", "mamori cached"} {
		name := "mamori docker-archive:/" + other
		check(name, byName["mamori"], byName[other], all)
		var reachDiffs []Key
		for k, f := range byName[other].set {
			if a, ok := byName["mamori"].set[k]; ok && a.Reach != f.Reach {
				reachDiffs = append(reachDiffs, k)
				t.Logf("mamori reachability of %s: docker-archive: %s, %s: %s", k, a.Reach, other, f.Reach)
			}
		}
		SortKeys(reachDiffs)
		report(t, groups, name, "reachability differs", reachDiffs, used)
	}
	check("mamori/osv-scanner", byName["mamori"], byName["osv-scanner"], all)
	check("mamori/govulncheck", byName["mamori"], byName["govulncheck"], goOnly)
	symbol := func(k Key, f Finding) bool { return k.Ecosystem == "Go" && f.Reach == ReachSymbol }
	check("reachability", byName["mamori"], byName["govulncheck"], symbol)
	logSymbolDiffs(t, byName["mamori"].set, byName["govulncheck"].set)
	for i, d := range knownDiffs {
		if !used[i] {
			t.Errorf("known difference %+v matched nothing: remove it from knownDiffs and docs/parity.md", d)
		}
	}
}

// runMamori builds mamori, builds its database from the OSV directories and
// scans the artifacts, as a directory and twice as a Docker archive (the
// second time from mamori's layer cache). The error says why mamori could
// not be run.
func runMamori(ctx context.Context, t *testing.T, osvDirs []string, art artifacts) (dir, archive, cached []Finding, err error) {
	t.Helper()
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "mamori")
	repo, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		return nil, nil, nil, err
	}
	if _, err := runStatus(ctx, repo, os.Environ(), "go", "build", "-o", bin, "./cmd/mamori"); err != nil {
		return nil, nil, nil, err
	}
	db := filepath.Join(tmp, "mamori.db")
	args := []string{"db", "build", "-o", db}
	for _, d := range osvDirs {
		abs, err := filepath.Abs(d)
		if err != nil {
			return nil, nil, nil, err
		}
		args = append(args, "--osv", abs)
	}
	if _, err := runStatus(ctx, tmp, os.Environ(), bin, args...); err != nil {
		return nil, nil, nil, err
	}
	// A cache of its own, so that layers cached by another mamori
	// version are not reused; the second scan of the archive reads the
	// layer cache the first one wrote.
	env := append(os.Environ(), "MAMORI_CACHE_DIR="+filepath.Join(tmp, "cache"))
	scan := func(ref string) ([]Finding, error) {
		out, err := runStatus(ctx, tmp, env, bin, "scan", "--db", db, "--format", "json", ref)
		if err != nil && !exitCode(err, 1) {
			return nil, err
		}
		return ParseMamori(bytes.NewReader(out))
	}
	if dir, err = scan("dir:" + art.root); err != nil {
		return nil, nil, nil, err
	}
	if archive, err = scan("docker-archive:" + art.archive); err != nil {
		return nil, nil, nil, err
	}
	if cached, err = scan("docker-archive:" + art.archive); err != nil {
		return nil, nil, nil, err
	}
	return dir, archive, cached, nil
}

// report fails the test for every key in only that no known difference
// explains, and marks the known differences that explain one.
func report(t *testing.T, g *Groups, check, only string, keys []Key, used []bool) {
	t.Helper()
	var unexplained []string
	for _, k := range keys {
		i := explain(g, check, only, k)
		if i < 0 {
			unexplained = append(unexplained, fmt.Sprintf("  %s  (aliases %s)", k, strings.Join(g.Members(k.Vuln), " ")))
			continue
		}
		used[i] = true
		t.Logf("%s: %s: %s: known: %s", check, only, k, knownDiffs[i].Reason)
	}
	if len(unexplained) > 0 {
		t.Errorf("%s: %d findings (%s):\n%s", check, len(unexplained), only, strings.Join(unexplained, "\n"))
	}
}

func explain(g *Groups, check, only string, k Key) int {
	for i, d := range knownDiffs {
		if d.Check == check && d.Only == only &&
			(d.Ecosystem == "" || d.Ecosystem == k.Ecosystem) &&
			(d.Name == "" || d.Name == k.Name) &&
			(d.Vuln == "" || g.Same(d.Vuln, k.Vuln)) {
			return i
		}
	}
	return -1
}

// logSymbolDiffs logs, for findings both tools call reachable, the
// vulnerable symbols only one of them names. Only the status is asserted:
// govulncheck names every vulnerable symbol in the binary, including
// inlined ones, so its lists are often longer.
func logSymbolDiffs(t *testing.T, mamori, govulncheck Set) {
	t.Helper()
	for _, k := range mamori.Keys() {
		m, g := mamori[k], govulncheck[k]
		if m.Reach != ReachSymbol || g.Reach != ReachSymbol {
			continue
		}
		onlyM, onlyG := symbolDiff(m.Symbols, g.Symbols)
		if len(onlyM)+len(onlyG) > 0 {
			t.Logf("reachable %s: symbols only mamori names: %v; only govulncheck names: %v", k, onlyM, onlyG)
		}
	}
}

func symbolDiff(a, b []string) (onlyA, onlyB []string) {
	in := func(list []string, s string) bool {
		for _, x := range list {
			if x == s {
				return true
			}
		}
		return false
	}
	for _, s := range a {
		if !in(b, s) {
			onlyA = append(onlyA, s)
		}
	}
	for _, s := range b {
		if !in(a, s) {
			onlyB = append(onlyB, s)
		}
	}
	return onlyA, onlyB
}

func formatSet(s Set) string {
	var b strings.Builder
	for _, k := range s.Keys() {
		f := s[k]
		fmt.Fprintf(&b, "  %-60s %-7s", k, f.Reach)
		if len(f.Symbols) > 0 {
			syms := f.Symbols
			if len(syms) > 4 {
				syms = append(syms[:4:4], fmt.Sprintf("... (%d)", len(f.Symbols)))
			}
			fmt.Fprintf(&b, " %s", strings.Join(syms, " "))
		}
		b.WriteByte('\n')
	}
	return b.String()
}

func exitCode(err error, code int) bool {
	var ee *exec.ExitError
	return errors.As(err, &ee) && ee.ExitCode() == code
}
