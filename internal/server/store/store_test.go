package store

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mamorisec/mamori/internal/inventory"
	"github.com/mamorisec/mamori/internal/server/store/storetest"
	"github.com/mamorisec/mamori/internal/testenv"
)

// databases returns the URL makers of the databases every test runs on.
func databases() []struct {
	name string
	url  func(t *testing.T) string
} {
	return []struct {
		name string
		url  func(t *testing.T) string
	}{
		{"sqlite", func(t *testing.T) string { return "sqlite://" + filepath.Join(t.TempDir(), "mamori.db") }},
		{"postgres", func(t *testing.T) string { return testenv.Postgres(t) }},
	}
}

// forEachDB runs fn on a fresh store on SQLite and on PostgreSQL.
func forEachDB(t *testing.T, fn func(t *testing.T, s *Store)) {
	for _, db := range databases() {
		t.Run(db.name, func(t *testing.T) {
			s, err := Open(context.Background(), db.url(t))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			fn(t, s)
		})
	}
}

func TestMigrations(t *testing.T) {
	ctx := context.Background()
	for _, db := range databases() {
		t.Run(db.name, func(t *testing.T) {
			u := db.url(t)
			s, err := Open(ctx, u)
			if err != nil {
				t.Fatalf("fresh open: %v", err)
			}
			var n int
			if err := s.db.QueryRow("SELECT COUNT(*) FROM schema_migrations").Scan(&n); err != nil || n != SchemaVersion() {
				t.Fatalf("schema_migrations has %d rows (%v), want %d", n, err, SchemaVersion())
			}
			s.Close()
			// Re-opening is idempotent.
			s, err = Open(ctx, u)
			if err != nil {
				t.Fatalf("re-open: %v", err)
			}
			if err := s.db.QueryRow("SELECT COUNT(*) FROM schema_migrations").Scan(&n); err != nil || n != SchemaVersion() {
				t.Fatalf("after re-open schema_migrations has %d rows (%v)", n, err)
			}
			// A database from a newer mamori is refused.
			if _, err := s.exec(ctx, s.db, "INSERT INTO schema_migrations (version, name, applied) VALUES (?, 'future', 0)", SchemaVersion()+1); err != nil {
				t.Fatal(err)
			}
			s.Close()
			_, err = Open(ctx, u)
			if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("schema is version %d but this mamori knows versions up to %d", SchemaVersion()+1, SchemaVersion())) {
				t.Fatalf("opening a newer database: %v", err)
			}
		})
	}
}

func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	for _, u := range []string{"mysql://x/y", "postgres://nobody:secret@127.0.0.1:1/x?connect_timeout=2"} {
		_, err := Open(ctx, u)
		if err == nil {
			t.Errorf("Open(%q) succeeded", u)
		} else if strings.Contains(err.Error(), "secret") {
			t.Errorf("Open(%q) error shows the password: %v", u, err)
		}
	}
}

func testImage(n int) Image {
	return Image{Registry: "registry.example.com", Repository: fmt.Sprintf("team%d/app%d", n%7, n), Tag: fmt.Sprintf("1.%d", n%5),
		Digest: fmt.Sprintf("sha256:%064x", n), Labels: map[string]string{"team": fmt.Sprint(n % 7)}}
}

func TestIngestScan(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		rep := storetest.Scan(10, 50, 20)
		sc, err := s.IngestScan(ctx, testImage(10), rep)
		if err != nil {
			t.Fatal(err)
		}
		if sc.Status != ScanDone || sc.Assurance != AssuranceFail && sc.Assurance != AssurancePass {
			t.Errorf("scan = %+v", sc)
		}
		got, err := s.GetScan(ctx, sc.ID, nil)
		if err != nil || got.Summary != sc.Summary || got.Summary.Critical == 0 {
			t.Errorf("GetScan = %+v, %v; want summary %+v with criticals", got, err, sc.Summary)
		}
		back, err := s.ScanReport(ctx, sc.ID, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(back.Inventory.Packages) != 50 || len(back.Vulnerabilities) != 20 {
			t.Errorf("report round trip: %d packages, %d vulnerabilities", len(back.Inventory.Packages), len(back.Vulnerabilities))
		}
		im, err := s.GetImage(ctx, sc.ImageID, nil)
		if err != nil || im.LatestScanID != sc.ID || im.Labels["team"] != "3" || im.FirstSeen.IsZero() {
			t.Errorf("GetImage = %+v, %v", im, err)
		}
		for _, c := range []struct {
			name string
			n    func() (int64, error)
			want int64
		}{
			{"vulnerabilities", func() (int64, error) { return s.CountVulnerabilities(ctx, ListOptions{}) }, 20},
			{"packages", func() (int64, error) { return s.CountPackages(ctx, ListOptions{}) }, 50},
			{"licenses", func() (int64, error) { return s.CountLicenses(ctx, ListOptions{}) }, 50},
			{"secrets", func() (int64, error) { return s.CountFindings(ctx, inventory.KindSecret, ListOptions{}) }, 1},
			{"misconfigurations", func() (int64, error) { return s.CountFindings(ctx, inventory.KindMisconfig, ListOptions{}) }, 1},
			{"malware", func() (int64, error) { return s.CountFindings(ctx, inventory.KindMalware, ListOptions{}) }, 0},
			{"scans", func() (int64, error) { return s.CountScans(ctx, ListOptions{}) }, 1},
		} {
			if n, err := c.n(); err != nil || n != c.want {
				t.Errorf("count %s = %d, %v; want %d", c.name, n, err, c.want)
			}
		}
		// A rescan becomes the latest; findings lists show the latest scan
		// only unless History is set.
		sc2, err := s.IngestScan(ctx, testImage(10), storetest.Scan(10, 50, 30))
		if err != nil {
			t.Fatal(err)
		}
		if n, _ := s.CountVulnerabilities(ctx, ListOptions{}); n != 30 {
			t.Errorf("latest vulnerabilities = %d, want 30", n)
		}
		if n, _ := s.CountVulnerabilities(ctx, ListOptions{History: true}); n != 50 {
			t.Errorf("all vulnerabilities = %d, want 50", n)
		}
		if err := s.DeleteScan(ctx, sc2.ID); err != nil {
			t.Fatal(err)
		}
		if im, _ := s.GetImage(ctx, sc.ImageID, nil); im.LatestScanID != sc.ID {
			t.Errorf("after deleting the latest scan, latest = %d, want %d", im.LatestScanID, sc.ID)
		}
		if err := s.DeleteImage(ctx, sc.ImageID); err != nil {
			t.Fatal(err)
		}
		if n, _ := s.CountVulnerabilities(ctx, ListOptions{History: true}); n != 0 {
			t.Errorf("after deleting the image, %d vulnerabilities remain", n)
		}
		if _, err := s.IngestScan(ctx, Image{Registry: "r"}, rep); err == nil {
			t.Error("IngestScan accepted an image without repository")
		}
	})
}

func TestQueuedScan(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		sc, err := s.QueueScan(ctx, testImage(1))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.SetScanStatus(ctx, sc.ID, ScanRunning, ""); err != nil {
			t.Fatal(err)
		}
		if err := s.SetScanStatus(ctx, sc.ID, ScanDone, ""); err == nil {
			t.Error("SetScanStatus(done) accepted")
		}
		done, err := s.CompleteScan(ctx, sc.ID, storetest.Scan(1, 10, 5))
		if err != nil || done.Status != ScanDone {
			t.Fatalf("CompleteScan = %+v, %v", done, err)
		}
		if _, err := s.CompleteScan(ctx, sc.ID, storetest.Scan(1, 10, 5)); err == nil {
			t.Error("completing a done scan twice succeeded")
		}
		if err := s.SetScanStatus(ctx, sc.ID, ScanFailed, "boom"); !errors.Is(err, ErrNotFound) {
			t.Errorf("failing a done scan: %v", err)
		}
		failed, _ := s.QueueScan(ctx, testImage(2))
		if err := s.SetScanStatus(ctx, failed.ID, ScanFailed, "registry unreachable"); err != nil {
			t.Fatal(err)
		}
		p, err := s.ListScans(ctx, ListOptions{Filter: "status=failed"})
		if err != nil || len(p.Items) != 1 || p.Items[0].Error != "registry unreachable" {
			t.Errorf("failed scans = %+v, %v", p.Items, err)
		}
		if _, err := s.ScanReport(ctx, failed.ID, nil); !errors.Is(err, ErrNotFound) {
			t.Errorf("report of a failed scan: %v", err)
		}
	})
}

// TestIngestAtomicity injects a failure at every batch of the ingest and
// checks that nothing at all was written.
func TestIngestAtomicity(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		// 1,200 packages take several INSERT batches on both dialects.
		rep := storetest.Scan(3, 1200, 3000)
		for fail := 1; fail <= 6; fail++ {
			s.failAfter = fail
			if _, err := s.IngestScan(ctx, testImage(3), rep); !errors.Is(err, errInjected) {
				t.Fatalf("failure at batch %d: IngestScan returned %v", fail, err)
			}
			for _, table := range []string{"images", "scans", "vulnerabilities", "vulnerability_ids", "packages", "findings", "licenses"} {
				var n int
				if err := s.db.QueryRow("SELECT COUNT(*) FROM " + table).Scan(&n); err != nil || n != 0 {
					t.Errorf("failure at batch %d: %s has %d rows (%v)", fail, table, n, err)
				}
			}
		}
		s.failAfter = 0
		if _, err := s.IngestScan(ctx, testImage(3), rep); err != nil {
			t.Fatal(err)
		}
	})
}

// seed ingests n synthetic scans and returns their images.
func seed(t *testing.T, s *Store, n int) []Image {
	t.Helper()
	var ims []Image
	for i := 0; i < n; i++ {
		sc, err := s.IngestScan(context.Background(), testImage(i), storetest.Scan(uint64(i), 40, 10))
		if err != nil {
			t.Fatal(err)
		}
		im, err := s.GetImage(context.Background(), sc.ImageID, nil)
		if err != nil {
			t.Fatal(err)
		}
		ims = append(ims, im)
	}
	return ims
}

func TestCrossImage(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		seed(t, s, 30) // images 0, 10, 20 have log4j-core 2.10.0, 2.10.0, 2.10.0 and CVE-2021-44228
		for _, id := range []string{"CVE-2021-44228", "cve-2021-44228", "GHSA-jfh8-c2jp-5v3q"} {
			p, err := s.ImagesWithVulnerability(ctx, id, CrossImageOptions{})
			if err != nil || len(p.Items) != 3 {
				t.Errorf("ImagesWithVulnerability(%s) = %d images, %v; want 3", id, len(p.Items), err)
			}
		}
		// Paging one image at a time.
		var got []int64
		opts := CrossImageOptions{Limit: 1}
		for {
			p, err := s.ImagesWithVulnerability(ctx, "CVE-2021-44228", opts)
			if err != nil {
				t.Fatal(err)
			}
			for _, im := range p.Items {
				got = append(got, im.ID)
			}
			if p.Next == "" {
				break
			}
			opts.Cursor = p.Next
		}
		if len(got) != 3 {
			t.Errorf("paged images = %v, want 3", got)
		}
		// Scoped to one image's repository.
		sc := &Scope{Repositories: []string{"registry.example.com/team3/app10"}}
		if p, _ := s.ImagesWithVulnerability(ctx, "CVE-2021-44228", CrossImageOptions{Scope: sc}); len(p.Items) != 1 || p.Items[0].Repository != "team3/app10" {
			t.Errorf("scoped ImagesWithVulnerability = %+v", p.Items)
		}
		tests := []struct {
			constraint string
			want       int
		}{
			{"< 2.17", 3},
			{"<2.17.1", 3},
			{"<= 2.17.1", 30},
			{">= 2.17.1", 27},
			{"=2.17.1", 27},
			{">2.0,<2.11", 3},
			{"", 30},
			{"< 2.0", 0},
		}
		for _, tt := range tests {
			var n int
			opts := CrossImageOptions{Limit: 7}
			for {
				p, err := s.ImagesWithPackage(ctx, inventory.TypeMaven, "org.apache.logging.log4j:log4j-core", tt.constraint, opts)
				if err != nil {
					t.Fatalf("ImagesWithPackage(%q): %v", tt.constraint, err)
				}
				for _, h := range p.Items {
					if h.Image.ID == 0 || h.Package.Name != "org.apache.logging.log4j:log4j-core" {
						t.Errorf("hit %+v", h)
					}
				}
				n += len(p.Items)
				if p.Next == "" {
					break
				}
				opts.Cursor = p.Next
			}
			if n != tt.want {
				t.Errorf("ImagesWithPackage(log4j-core %q) = %d hits, want %d", tt.constraint, n, tt.want)
			}
		}
		for _, bad := range []struct{ typ, c string }{{"maven", "~2"}, {"maven", "<"}, {"nope", "<1"}, {"deb", "<1 2"}} {
			if _, err := s.ImagesWithPackage(ctx, bad.typ, "x", bad.c, CrossImageOptions{}); err == nil {
				t.Errorf("ImagesWithPackage(%s, %q) accepted", bad.typ, bad.c)
			}
		}
	})
}

func TestListFilterSortPage(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		seed(t, s, 12)
		total, err := s.CountVulnerabilities(ctx, ListOptions{})
		if err != nil || total != 120 {
			t.Fatalf("CountVulnerabilities = %d, %v", total, err)
		}
		// Paging by a float column.
		var byScore []float64
		co := ListOptions{Limit: 13, Sort: "-cvss", Filter: "cvss>=0.5"}
		for {
			p, err := s.ListVulnerabilities(ctx, co)
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range p.Items {
				byScore = append(byScore, v.CVSS)
			}
			if p.Next == "" {
				break
			}
			co.Cursor = p.Next
		}
		co.Cursor = ""
		if n, _ := s.CountVulnerabilities(ctx, co); int(n) != len(byScore) || !slices.IsSortedFunc(byScore, func(a, b float64) int { return cmp.Compare(b, a) }) {
			t.Errorf("paging by -cvss: %d rows of %d, %v", len(byScore), n, byScore)
		}
		// Every limit pages through every row once, in order.
		for _, limit := range []int{1, 7, 120, 121, 1000} {
			seen := map[int64]bool{}
			prev := 99
			opts := ListOptions{Limit: limit, Sort: "-severity,package"}
			pages := 0
			for {
				p, err := s.ListVulnerabilities(ctx, opts)
				if err != nil {
					t.Fatal(err)
				}
				pages++
				for _, v := range p.Items {
					if seen[v.ID] {
						t.Fatalf("limit %d: row %d repeated", limit, v.ID)
					}
					seen[v.ID] = true
					if int(v.Severity) > prev {
						t.Fatalf("limit %d: severity %d after %d", limit, v.Severity, prev)
					}
					prev = int(v.Severity)
				}
				if p.Next == "" {
					break
				}
				opts.Cursor = p.Next
			}
			if len(seen) != 120 {
				t.Errorf("limit %d: %d rows over %d pages, want 120", limit, len(seen), pages)
			}
		}
		lp, err := s.ListVulnerabilities(ctx, ListOptions{Limit: 100000})
		if err != nil || len(lp.Items) != 120 {
			t.Errorf("limit over MaxLimit: %d rows, %v", len(lp.Items), err)
		}
		// Filters agree with counts computed in Go.
		all, _ := s.ListVulnerabilities(ctx, ListOptions{Limit: MaxLimit})
		var want int64
		for _, v := range all.Items {
			if (v.Severity.String() == "CRITICAL" || v.Severity.String() == "HIGH") && v.Fixable {
				want++
			}
		}
		for _, f := range []string{"severity=CRITICAL,HIGH;fixable=true", "severity>=HIGH;fixable=true", "fixable=true;severity!=UNKNOWN,NEGLIGIBLE,LOW,MEDIUM"} {
			if n, err := s.CountVulnerabilities(ctx, ListOptions{Filter: f}); err != nil || n != want {
				t.Errorf("filter %q: %d, %v; want %d", f, n, err, want)
			}
		}
		if p, err := s.ListPackages(ctx, ListOptions{Filter: "package=org.apache.logging.log4j:log4j-core;type=maven"}); err != nil || len(p.Items) != 12 {
			t.Errorf("package=...log4j-core: %d, %v", len(p.Items), err)
		}
		pp, err := s.ListPackages(ctx, ListOptions{Filter: "package~LOG4J-core", Limit: MaxLimit})
		if err != nil || len(pp.Items) < 12 {
			t.Errorf("package~LOG4J-core: %d, %v", len(pp.Items), err)
		}
		for _, pk := range pp.Items {
			if !strings.Contains(pk.Name, "log4j-core") {
				t.Errorf("package~LOG4J-core matched %s", pk.Name)
			}
		}
		if ip, err := s.ListImages(ctx, ListOptions{Sort: "-critical,name", Limit: 3}); err != nil || len(ip.Items) != 3 || ip.Items[0].Summary.Critical < ip.Items[2].Summary.Critical {
			t.Errorf("images by critical: %+v, %v", ip.Items, err)
		}
		// Hostile input is refused or bound, never executed.
		for _, f := range []string{"package='; DROP TABLE images; --", "package=x' OR '1'='1", "package~%", "package=\\'; DELETE FROM images"} {
			if _, err := s.ListVulnerabilities(ctx, ListOptions{Filter: f}); err != nil && !strings.Contains(err.Error(), "filter") {
				t.Errorf("filter %q: %v", f, err)
			}
		}
		if n, _ := s.CountImages(ctx, ListOptions{}); n != 12 {
			t.Errorf("images after hostile filters: %d", n)
		}
		for _, o := range []ListOptions{{Filter: "nope=1"}, {Sort: "summary"}, {Sort: "nope"}, {Cursor: "garbage"}, {Filter: "severity=SEVERE"}} {
			if _, err := s.ListVulnerabilities(ctx, o); err == nil {
				t.Errorf("ListVulnerabilities(%+v) succeeded", o)
			}
		}
		// A cursor of another order is refused.
		p1, _ := s.ListVulnerabilities(ctx, ListOptions{Limit: 5, Sort: "package"})
		if _, err := s.ListVulnerabilities(ctx, ListOptions{Limit: 5, Sort: "-severity", Cursor: p1.Next}); err == nil {
			t.Error("cursor of another sort accepted")
		}
	})
}

func TestScope(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		ims := seed(t, s, 14) // repositories team{n%7}/app{n}
		tests := []struct {
			scope *Scope
			want  int64
		}{
			{nil, 14},
			{&Scope{}, 0},
			{&Scope{Registries: []string{"registry.example.com"}}, 14},
			{&Scope{Registries: []string{"other.example.com"}}, 0},
			{&Scope{Repositories: []string{"registry.example.com/team1/app1", "registry.example.com/team1/app8"}}, 2},
			{&Scope{Images: []string{"registry.example.com/team2/*"}}, 2},
			{&Scope{Images: []string{"*:1.0"}}, 3},
			{&Scope{Images: []string{"registry.example.com/team_/app1?:*"}}, 0},
			{&Scope{Images: []string{"registry.example.com/team?/app1?:*"}}, 4},
			{&Scope{Images: []string{"%"}}, 0},
			{&Scope{Match: [][]string{{`^registry\.example\.com/`, `^registry\.example\.com/team2/[^/]*$`}}}, 2},
			{&Scope{Match: [][]string{{`^registry\.example\.com/team[12]/`}, {`app13$`}}}, 5},
			{&Scope{Match: [][]string{{`^other\.example\.com/`, `team2`}}}, 0},
			{&Scope{Match: [][]string{{`(`}}}, 0},
			{&Scope{Match: [][]string{{}}}, 0},
			{&Scope{Match: [][]string{{`'; DROP TABLE images; --`}}}, 0},
		}
		for _, tt := range tests {
			n, err := s.CountImages(ctx, ListOptions{Scope: tt.scope})
			if err != nil || n != tt.want {
				t.Errorf("CountImages(%+v) = %d, %v; want %d", tt.scope, n, err, tt.want)
			}
			v, _ := s.CountVulnerabilities(ctx, ListOptions{Scope: tt.scope})
			if v != tt.want*10 {
				t.Errorf("CountVulnerabilities(%+v) = %d, want %d", tt.scope, v, tt.want*10)
			}
			sc, _ := s.CountScans(ctx, ListOptions{Scope: tt.scope})
			if sc != tt.want {
				t.Errorf("CountScans(%+v) = %d, want %d", tt.scope, sc, tt.want)
			}
		}
		deny := &Scope{Images: []string{"nothing/*"}}
		if _, err := s.GetImage(ctx, ims[0].ID, deny); !errors.Is(err, ErrNotFound) {
			t.Errorf("GetImage out of scope: %v", err)
		}
		if _, err := s.ScanReport(ctx, ims[0].LatestScanID, deny); !errors.Is(err, ErrNotFound) {
			t.Errorf("ScanReport out of scope: %v", err)
		}
		if _, err := s.GetScan(ctx, ims[0].LatestScanID, deny); !errors.Is(err, ErrNotFound) {
			t.Errorf("GetScan out of scope: %v", err)
		}
	})
}

func TestRegistries(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		r := Registry{Name: "corp", URL: "https://registry.example.com", AuthType: AuthBasic, Username: "bot", Secret: "hunter2"}
		if _, err := s.CreateRegistry(ctx, r); !errors.Is(err, ErrNoSecretKey) {
			t.Fatalf("secret without key: %v", err)
		}
		key := sha256.Sum256([]byte("test key"))
		if err := s.SetSecretKey(key[:]); err != nil {
			t.Fatal(err)
		}
		got, err := s.CreateRegistry(ctx, r)
		if err != nil || !got.HasSecret || got.Secret != "" {
			t.Fatalf("CreateRegistry = %+v, %v", got, err)
		}
		var raw []byte
		s.db.QueryRow(s.rebind("SELECT secret FROM registries WHERE id = ?"), got.ID).Scan(&raw)
		if len(raw) == 0 || strings.Contains(string(raw), "hunter2") {
			t.Errorf("stored secret %q is not encrypted", raw)
		}
		if sec, err := s.RegistrySecret(ctx, got.ID); err != nil || sec != "hunter2" {
			t.Errorf("RegistrySecret = %q, %v", sec, err)
		}
		if _, err := s.CreateRegistry(ctx, r); !errors.Is(err, ErrConflict) {
			t.Errorf("duplicate registry: %v", err)
		}
		got.URL, got.Secret = "https://r2.example.com", ""
		upd, err := s.UpdateRegistry(ctx, got)
		if err != nil || upd.URL != "https://r2.example.com" || !upd.HasSecret {
			t.Errorf("UpdateRegistry = %+v, %v", upd, err)
		}
		if sec, _ := s.RegistrySecret(ctx, got.ID); sec != "hunter2" {
			t.Errorf("secret after update without secret = %q", sec)
		}
		other := sha256.Sum256([]byte("other key"))
		s.SetSecretKey(other[:])
		if _, err := s.RegistrySecret(ctx, got.ID); err == nil || !strings.Contains(err.Error(), "wrong secret key") {
			t.Errorf("decrypting with another key: %v", err)
		}
		ref, err := s.CreateRegistry(ctx, Registry{Name: "ref", URL: "https://x", AuthType: AuthBearer, SecretRef: "env:REG_TOKEN"})
		if err != nil || ref.SecretRef != "env:REG_TOKEN" || ref.HasSecret {
			t.Errorf("registry with secret reference = %+v, %v", ref, err)
		}
		for _, bad := range []Registry{{Name: "", URL: "x", AuthType: AuthNone}, {Name: "a", URL: "x", AuthType: "magic"}, {Name: "a", AuthType: AuthNone}} {
			if _, err := s.CreateRegistry(ctx, bad); err == nil {
				t.Errorf("CreateRegistry(%+v) accepted", bad)
			}
		}
		p, err := s.ListRegistries(ctx, ListOptions{Filter: "authType=token"})
		if err != nil || len(p.Items) != 1 || p.Items[0].Name != "ref" {
			t.Errorf("ListRegistries = %+v, %v", p.Items, err)
		}
		if err := s.DeleteRegistry(ctx, got.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetRegistry(ctx, got.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("deleted registry: %v", err)
		}
		if err := s.DeleteRegistry(ctx, got.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("deleting twice: %v", err)
		}
	})
}

func TestPolicies(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		for _, kind := range []string{PolicyAssurance, PolicyRuntime} {
			p, err := s.CreatePolicy(ctx, kind, "default", json.RawMessage(`{"max_severity":"HIGH"}`), "alice")
			if err != nil || p.Version != 1 {
				t.Fatalf("CreatePolicy = %+v, %v", p, err)
			}
			if _, err := s.CreatePolicy(ctx, kind, "default", json.RawMessage(`{}`), "alice"); !errors.Is(err, ErrConflict) {
				t.Errorf("duplicate policy: %v", err)
			}
			for v := 2; v <= 3; v++ {
				p, err = s.UpdatePolicy(ctx, kind, "default", json.RawMessage(fmt.Sprintf(`{"v":%d}`, v)), "bob")
				if err != nil || p.Version != v {
					t.Fatalf("UpdatePolicy = %+v, %v", p, err)
				}
			}
			cur, err := s.GetPolicy(ctx, kind, "default", 0)
			if err != nil || cur.Version != 3 || !cur.Current || string(cur.Definition) != `{"v":3}` {
				t.Errorf("current = %+v, %v", cur, err)
			}
			v1, err := s.GetPolicy(ctx, kind, "default", 1)
			if err != nil || v1.Current || string(v1.Definition) != `{"max_severity":"HIGH"}` {
				t.Errorf("version 1 = %+v, %v", v1, err)
			}
			vs, err := s.PolicyVersions(ctx, kind, "default", ListOptions{})
			if err != nil || len(vs.Items) != 3 || vs.Items[0].Version != 3 {
				t.Errorf("versions = %+v, %v", vs.Items, err)
			}
			ls, err := s.ListPolicies(ctx, kind, ListOptions{})
			if err != nil || len(ls.Items) != 1 || ls.Items[0].Version != 3 {
				t.Errorf("ListPolicies = %+v, %v", ls.Items, err)
			}
		}
		if _, err := s.UpdatePolicy(ctx, PolicyAssurance, "missing", json.RawMessage(`{}`), "x"); !errors.Is(err, ErrNotFound) {
			t.Errorf("updating a missing policy: %v", err)
		}
		if _, err := s.CreatePolicy(ctx, PolicyAssurance, "bad", json.RawMessage(`{`), "x"); err == nil {
			t.Error("invalid JSON accepted")
		}
		if _, err := s.CreatePolicy(ctx, "other", "bad", json.RawMessage(`{}`), "x"); err == nil {
			t.Error("unknown kind accepted")
		}
		if err := s.DeletePolicy(ctx, PolicyAssurance, "default"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetPolicy(ctx, PolicyAssurance, "default", 2); !errors.Is(err, ErrNotFound) {
			t.Errorf("deleted policy: %v", err)
		}
	})
}

func hashHex(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func TestIdentity(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		u, err := s.CreateUser(ctx, User{Username: "alice", DisplayName: "Alice", PasswordHash: "$argon2id$x", Source: SourceLocal})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.CreateUser(ctx, User{Username: "alice", Source: SourceLocal}); !errors.Is(err, ErrConflict) {
			t.Errorf("duplicate user: %v", err)
		}
		if _, err := s.CreateUser(ctx, User{Username: "bob", Source: "kerberos"}); err == nil {
			t.Error("unknown source accepted")
		}
		lock := time.Now().Add(time.Hour).UTC().Truncate(time.Microsecond)
		for i := 1; i <= 3; i++ {
			got, err := s.RecordLogin(ctx, u.ID, false, 3, lock)
			if err != nil || got.FailedLogins != i {
				t.Fatalf("failure %d: %+v, %v", i, got, err)
			}
			if locked := !got.LockedUntil.IsZero(); locked != (i == 3) {
				t.Errorf("failure %d: locked until %v", i, got.LockedUntil)
			}
		}
		if got, _ := s.RecordLogin(ctx, u.ID, true, 3, lock); got.FailedLogins != 0 || !got.LockedUntil.IsZero() {
			t.Errorf("after success: %+v", got)
		}
		u.Disabled, u.DisplayName = true, "Alice A."
		if err := s.UpdateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
		if got, err := s.GetUserByName(ctx, "alice"); err != nil || !got.Disabled || got.DisplayName != "Alice A." || got.PasswordHash != "$argon2id$x" {
			t.Errorf("GetUserByName = %+v, %v", got, err)
		}
		if p, err := s.ListUsers(ctx, ListOptions{Filter: "disabled=true;source=local"}); err != nil || len(p.Items) != 1 {
			t.Errorf("ListUsers = %+v, %v", p.Items, err)
		}

		role, err := s.CreateRole(ctx, Role{Name: "auditor", Permissions: []string{"images:read", "audit:read"}})
		if err != nil {
			t.Fatal(err)
		}
		role.Permissions = append(role.Permissions, "scans:read")
		if err := s.UpdateRole(ctx, role); err != nil {
			t.Fatal(err)
		}
		if got, err := s.GetRole(ctx, "auditor"); err != nil || len(got.Permissions) != 3 {
			t.Errorf("GetRole = %+v, %v", got, err)
		}
		as, err := s.CreateAppScope(ctx, AppScope{Name: "payments", Definition: json.RawMessage(`{"images":["registry.example.com/payments/*"]}`)})
		if err != nil {
			t.Fatal(err)
		}
		if got, err := s.GetAppScope(ctx, "payments"); err != nil || !strings.Contains(string(got.Definition), "payments/*") {
			t.Errorf("GetAppScope = %+v, %v", got, err)
		}
		if _, err := s.CreateAppScope(ctx, AppScope{Name: "bad", Definition: json.RawMessage(`nope`)}); err == nil {
			t.Error("invalid scope definition accepted")
		}
		b, err := s.CreateRoleBinding(ctx, RoleBinding{SubjectKind: SubjectUser, Subject: "alice", Role: "auditor", Scopes: []string{"payments"}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.CreateRoleBinding(ctx, RoleBinding{SubjectKind: SubjectGroup, Subject: "ops", Role: "auditor"}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.CreateRoleBinding(ctx, RoleBinding{SubjectKind: SubjectUser, Subject: "alice", Role: "missing"}); !errors.Is(err, ErrNotFound) {
			t.Errorf("binding a missing role: %v", err)
		}
		bound, err := s.BindingsFor(ctx, "alice", []string{"ops", "dev"})
		if err != nil || len(bound) != 2 || len(bound[0].Permissions) != 3 || bound[0].Scopes[0] != "payments" {
			t.Errorf("BindingsFor = %+v, %v", bound, err)
		}
		if p, err := s.ListRoleBindings(ctx, ListOptions{Filter: "subjectKind=group"}); err != nil || len(p.Items) != 1 {
			t.Errorf("ListRoleBindings = %+v, %v", p.Items, err)
		}
		if err := s.DeleteRoleBinding(ctx, b.ID); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteAppScope(ctx, as.ID); err != nil {
			t.Fatal(err)
		}
		if p, _ := s.ListAppScopes(ctx, ListOptions{}); len(p.Items) != 0 {
			t.Errorf("scopes after delete: %+v", p.Items)
		}

		tok, err := s.CreateToken(ctx, APIToken{ID: "tok1", Prefix: "mmr_ab12", Hash: hashHex("secret"), UserID: u.ID, Name: "ci", Scopes: []string{"scans:write"}, Expires: lock})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.CreateToken(ctx, APIToken{ID: "tok2", Prefix: "mmr_ab12", Hash: hashHex("x"), UserID: u.ID}); !errors.Is(err, ErrConflict) {
			t.Errorf("duplicate prefix: %v", err)
		}
		if err := s.TouchToken(ctx, tok.ID, lock); err != nil {
			t.Fatal(err)
		}
		if got, err := s.TokenByPrefix(ctx, "mmr_ab12"); err != nil || got.Hash != hashHex("secret") || !got.LastUsed.Equal(lock) || !got.Expires.Equal(lock) {
			t.Errorf("TokenByPrefix = %+v, %v", got, err)
		}
		if p, err := s.ListTokens(ctx, ListOptions{Filter: fmt.Sprintf("user=%d", u.ID)}); err != nil || len(p.Items) != 1 {
			t.Errorf("ListTokens = %+v, %v", p.Items, err)
		}
		se, err := s.CreateSession(ctx, Session{IDHash: hashHex("sid"), UserID: u.ID, CSRFHash: hashHex("csrf"), Expires: lock})
		if err != nil {
			t.Fatal(err)
		}
		if got, err := s.GetSession(ctx, se.IDHash); err != nil || got.UserID != u.ID || got.CSRFHash != hashHex("csrf") {
			t.Errorf("GetSession = %+v, %v", got, err)
		}
		if _, err := s.CreateSession(ctx, Session{IDHash: hashHex("old"), UserID: u.ID, CSRFHash: hashHex("c"), Expires: time.Now().Add(-time.Minute)}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetSession(ctx, hashHex("old")); !errors.Is(err, ErrNotFound) {
			t.Errorf("expired session: %v", err)
		}
		if n, err := s.DeleteExpiredSessions(ctx); err != nil || n != 1 {
			t.Errorf("DeleteExpiredSessions = %d, %v", n, err)
		}
		// Deleting the user removes its tokens and sessions.
		if err := s.DeleteUser(ctx, u.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.TokenByPrefix(ctx, "mmr_ab12"); !errors.Is(err, ErrNotFound) {
			t.Errorf("token of a deleted user: %v", err)
		}
		if _, err := s.GetSession(ctx, se.IDHash); !errors.Is(err, ErrNotFound) {
			t.Errorf("session of a deleted user: %v", err)
		}
	})
}

// appendAudit appends a record after the last one, retrying when another
// writer appended first.
func appendAudit(ctx context.Context, s *Store, actor string) error {
	for {
		var last struct{ Seq int64 }
		b, ok, err := s.LastAuditEvent(ctx)
		if err != nil {
			return err
		}
		if ok {
			json.Unmarshal(b, &last)
		}
		seq := last.Seq + 1
		ev, _ := json.Marshal(map[string]any{"seq": seq, "actor": actor})
		err = s.AppendAuditEvent(ctx, AuditRecord{Seq: seq, Time: time.Now(), Actor: actor, Action: "test", ResourceType: "test", Hash: fmt.Sprint(seq), Event: ev})
		if !IsConflict(err) {
			return err
		}
	}
}

func TestAudit(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		for i := 0; i < 5; i++ {
			if err := appendAudit(ctx, s, "alice"); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.AppendAuditEvent(ctx, AuditRecord{Seq: 3, Action: "replay", Event: json.RawMessage(`{}`)}); !IsConflict(err) {
			t.Errorf("a record with a used sequence number: %v", err)
		}
		if err := s.AppendAuditEvent(ctx, AuditRecord{Seq: 6, Event: json.RawMessage(`{}`)}); !errors.Is(err, ErrInvalid) {
			t.Errorf("a record without action: %v", err)
		}
		var seqs []string
		if err := s.RangeAuditEvents(ctx, 2, func(b []byte) error { seqs = append(seqs, string(b)); return nil }); err != nil || len(seqs) != 4 {
			t.Errorf("RangeAuditEvents from 2: %q, %v", seqs, err)
		}
		p, err := s.ListAuditEvents(ctx, ListOptions{Limit: 2, Filter: "actor=alice"})
		if err != nil || len(p.Items) != 2 || !strings.Contains(string(p.Items[0]), `"seq":5`) || p.Next == "" {
			t.Errorf("ListAuditEvents = %q, %v", p.Items, err)
		}
		// The database itself refuses changes.
		for _, stmt := range []string{"UPDATE audit_events SET actor = 'mallory'", "DELETE FROM audit_events WHERE seq = 2"} {
			if _, err := s.db.Exec(stmt); err == nil || !strings.Contains(err.Error(), "append-only") {
				t.Errorf("%s: %v", stmt, err)
			}
		}
	})
}

func TestSettingsAndExceptions(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		if err := s.SetSetting(ctx, "scan.interval", json.RawMessage(`"24h"`)); err != nil {
			t.Fatal(err)
		}
		if err := s.SetSetting(ctx, "scan.interval", json.RawMessage(`"12h"`)); err != nil {
			t.Fatal(err)
		}
		if got, err := s.GetSetting(ctx, "scan.interval"); err != nil || string(got.Value) != `"12h"` {
			t.Errorf("GetSetting = %+v, %v", got, err)
		}
		if err := s.SetSetting(ctx, "bad", json.RawMessage(`{`)); err == nil {
			t.Error("invalid JSON accepted")
		}
		if p, err := s.ListSettings(ctx, ListOptions{}); err != nil || len(p.Items) != 1 {
			t.Errorf("ListSettings = %+v, %v", p.Items, err)
		}
		if err := s.DeleteSetting(ctx, "scan.interval"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetSetting(ctx, "scan.interval"); !errors.Is(err, ErrNotFound) {
			t.Errorf("deleted setting: %v", err)
		}

		ex, err := s.CreateException(ctx, Exception{Scope: "payments", VulnID: "cve-2021-44228", Justification: "not reachable", CreatedBy: "alice"})
		if err != nil || ex.VulnID != "CVE-2021-44228" {
			t.Fatalf("CreateException = %+v, %v", ex, err)
		}
		for _, bad := range []Exception{{Scope: "*", Justification: "x", CreatedBy: "a"}, {Scope: "*", VulnID: "a", Rule: "b", Justification: "x", CreatedBy: "a"}, {Scope: "*", VulnID: "a", CreatedBy: "a"}} {
			if _, err := s.CreateException(ctx, bad); err == nil {
				t.Errorf("CreateException(%+v) accepted", bad)
			}
		}
		ex.Expires = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
		if err := s.UpdateException(ctx, ex); err != nil {
			t.Fatal(err)
		}
		if got, err := s.GetException(ctx, ex.ID); err != nil || !got.Expires.Equal(ex.Expires) {
			t.Errorf("GetException = %+v, %v", got, err)
		}
		if p, err := s.ListExceptions(ctx, ListOptions{Filter: "expires>2029-01-01;scope=payments"}); err != nil || len(p.Items) != 1 {
			t.Errorf("ListExceptions = %+v, %v", p.Items, err)
		}
		if err := s.DeleteException(ctx, ex.ID); err != nil {
			t.Fatal(err)
		}
	})
}

// TestConcurrentWrites appends audit events and ingests scans from several
// goroutines: the audit chain stays linear and nothing is lost.
func TestConcurrentWrites(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		const workers, each = 4, 5
		errs := make(chan error, workers*each*2)
		done := make(chan struct{})
		for w := 0; w < workers; w++ {
			go func() {
				defer func() { done <- struct{}{} }()
				for i := 0; i < each; i++ {
					errs <- appendAudit(ctx, s, fmt.Sprintf("worker:%d", w))
					_, err := s.IngestScan(ctx, testImage(w*each+i), storetest.Scan(uint64(w*each+i), 20, 5))
					errs <- err
				}
			}()
		}
		for w := 0; w < workers; w++ {
			<-done
		}
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		var n int64
		if err := s.RangeAuditEvents(ctx, 1, func([]byte) error { n++; return nil }); err != nil || n != workers*each {
			t.Errorf("%d audit records (%v), want %d", n, err, workers*each)
		}
		if n, _ := s.CountImages(ctx, ListOptions{}); n != workers*each {
			t.Errorf("%d images, want %d", n, workers*each)
		}
	})
}

func FuzzParseConstraint(f *testing.F) {
	for _, s := range []string{"< 2.17", ">=2.0,<2.17.1", "=1.0", "!=1", "", "<", "~1", "<1 2"} {
		f.Add("maven", s, "2.14.0")
		f.Add("deb", s, "1:2.3-1+deb12u1")
	}
	f.Fuzz(func(t *testing.T, typ, constraint, v string) {
		c, err := ParseConstraint(typ, constraint)
		if err != nil {
			return
		}
		c.Match(v)
	})
}

func TestErrInvalid(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		for name, err := range map[string]error{
			"filter": func() error { _, err := s.ListImages(ctx, ListOptions{Filter: "nope=1"}); return err }(),
			"sort":   func() error { _, err := s.ListScans(ctx, ListOptions{Sort: "nope"}); return err }(),
			"cursor": func() error { _, err := s.CountVulnerabilities(ctx, ListOptions{Filter: "severity=BAD"}); return err }(),
			"constraint": func() error {
				_, err := s.ImagesWithPackage(ctx, "maven", "x", "<", CrossImageOptions{})
				return err
			}(),
			"user":    func() error { _, err := s.CreateUser(ctx, User{Source: SourceLocal}); return err }(),
			"setting": s.SetSetting(ctx, "k", json.RawMessage("{")),
		} {
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("%s: %v does not match ErrInvalid", name, err)
			}
		}
		if _, err := s.GetUser(ctx, 42); errors.Is(err, ErrInvalid) || !errors.Is(err, ErrNotFound) {
			t.Errorf("missing user: %v", err)
		}
		if err := s.Ping(ctx); err != nil {
			t.Error(err)
		}
	})
}

func TestSessionsIdle(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		u, err := s.CreateUser(ctx, User{Username: "carol", Source: SourceOIDC})
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now().UTC().Truncate(time.Microsecond)
		for i, h := range []string{"a", "b"} {
			_, err := s.CreateSession(ctx, Session{IDHash: hashHex(h), UserID: u.ID, CSRFHash: hashHex("c" + h), Expires: now.Add(time.Hour),
				Created: now.Add(-time.Duration(i) * time.Hour), Identity: SessionIdentity{Username: "carol", Groups: []string{"ops"}, Source: SourceOIDC}})
			if err != nil {
				t.Fatal(err)
			}
		}
		if err := s.TouchSession(ctx, hashHex("a"), now.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		got, err := s.GetSession(ctx, hashHex("a"))
		if err != nil || !got.LastSeen.Equal(now.Add(time.Minute)) || got.Identity.Groups[0] != "ops" {
			t.Errorf("GetSession = %+v, %v", got, err)
		}
		// b was last seen an hour ago.
		if n, err := s.DeleteIdleSessions(ctx, now.Add(-30*time.Minute), time.Time{}); err != nil || n != 1 {
			t.Errorf("DeleteIdleSessions = %d, %v", n, err)
		}
		if _, err := s.GetSession(ctx, hashHex("b")); !errors.Is(err, ErrNotFound) {
			t.Errorf("idle session: %v", err)
		}
		if n, _ := s.DeleteUserSessions(ctx, u.ID); n != 1 {
			t.Errorf("DeleteUserSessions = %d", n)
		}
	})
}

func TestAuditRecords(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		if _, ok, err := s.LastAuditEvent(ctx); ok || err != nil {
			t.Fatalf("LastAuditEvent on an empty log = %v, %v", ok, err)
		}
		for seq := int64(1); seq <= 3; seq++ {
			err := s.AppendAuditEvent(ctx, AuditRecord{Seq: seq, Time: time.Now(), Actor: "alice", Action: "user.create", ResourceType: "users",
				Outcome: "success", Hash: fmt.Sprint("h", seq), Event: json.RawMessage(fmt.Sprintf(`{"seq":%d}`, seq))})
			if err != nil {
				t.Fatal(err)
			}
		}
		for _, seq := range []int64{3, 5} {
			err := s.AppendAuditEvent(ctx, AuditRecord{Seq: seq, Action: "x", Event: json.RawMessage(`{}`)})
			if !IsConflict(err) {
				t.Errorf("appending seq %d after 3: %v", seq, err)
			}
		}
		last, ok, err := s.LastAuditEvent(ctx)
		if err != nil || !ok || string(last) != `{"seq":3}` {
			t.Errorf("LastAuditEvent = %s, %v, %v", last, ok, err)
		}
		var got []string
		err = s.RangeAuditEvents(ctx, 2, func(b []byte) error { got = append(got, string(b)); return nil })
		if err != nil || strings.Join(got, " ") != `{"seq":2} {"seq":3}` {
			t.Errorf("RangeAuditEvents = %v, %v", got, err)
		}
		p, err := s.ListAuditEvents(ctx, ListOptions{Limit: 2, Filter: "action=user.create"})
		if err != nil || len(p.Items) != 2 || string(p.Items[0]) != `{"seq":3}` || p.Next == "" {
			t.Errorf("ListAuditEvents = %+v, %v", p, err)
		}
		if _, err := s.db.Exec("DELETE FROM audit_events"); err == nil {
			t.Error("deleting audit records succeeded")
		}
	})
}
