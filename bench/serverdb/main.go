// Command serverdb benchmarks the console server's database layer on
// SQLite and PostgreSQL in the same run: it ingests synthetic image scans
// (by default 1,000 scans of 500 packages and 100 vulnerability findings
// each, so 100,000 findings) into each database, then times list and
// cross-image queries and prints their p50 and p99 latencies as a table.
//
//	scripts/start-postgres.sh    # once: starts the throwaway cluster
//	go run ./bench/serverdb [-scans 1000] [-packages 500] [-findings 100] [-runs 200]
//
// PostgreSQL is found through $MAMORI_TEST_POSTGRES_URL or the URL file
// written by scripts/start-postgres.sh; the benchmark creates and drops
// its own database there. Without PostgreSQL only SQLite is measured.
package main

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/mamorisec/mamori/internal/inventory"
	"github.com/mamorisec/mamori/internal/server"
	"github.com/mamorisec/mamori/internal/server/store"
	"github.com/mamorisec/mamori/internal/server/store/storetest"
	"github.com/mamorisec/mamori/internal/testenv"
)

func main() {
	scans := flag.Int("scans", 1000, "image scans to ingest")
	pkgs := flag.Int("packages", 500, "packages per scan")
	findings := flag.Int("findings", 100, "vulnerability findings per scan")
	runs := flag.Int("runs", 200, "timed runs of each query")
	flag.Parse()
	if err := run(*scans, *pkgs, *findings, *runs); err != nil {
		fmt.Fprintln(os.Stderr, "serverdb:", err)
		os.Exit(1)
	}
}

// query is one timed query.
type query struct {
	name string
	fn   func(ctx context.Context, s *store.Store) (int, error)
}

var queries = []query{
	{"first page, sorted by severity", func(ctx context.Context, s *store.Store) (int, error) {
		p, err := s.ListVulnerabilities(ctx, store.ListOptions{Sort: "-severity", Limit: 50})
		return len(p.Items), err
	}},
	{"10th page, sorted by severity", func(ctx context.Context, s *store.Store) (int, error) {
		o := store.ListOptions{Sort: "-severity", Limit: 50}
		var p store.Page[store.Vulnerability]
		for range 10 {
			var err error
			if p, err = s.ListVulnerabilities(ctx, o); err != nil {
				return 0, err
			}
			o.Cursor = p.Next
		}
		return len(p.Items), nil
	}},
	{"filter severity=CRITICAL,HIGH;fixable=true", func(ctx context.Context, s *store.Store) (int, error) {
		p, err := s.ListVulnerabilities(ctx, store.ListOptions{Filter: "severity=CRITICAL,HIGH;fixable=true", Limit: 50})
		return len(p.Items), err
	}},
	{"same filter, sorted by -cvss", func(ctx context.Context, s *store.Store) (int, error) {
		p, err := s.ListVulnerabilities(ctx, store.ListOptions{Filter: "severity=CRITICAL,HIGH;fixable=true", Sort: "-cvss", Limit: 50})
		return len(p.Items), err
	}},
	{"filter package~ssl, scoped to one team", func(ctx context.Context, s *store.Store) (int, error) {
		p, err := s.ListVulnerabilities(ctx, store.ListOptions{Filter: "package~ssl", Limit: 50,
			Scope: &store.Scope{Images: []string{"registry.example.com/team3/*"}}})
		return len(p.Items), err
	}},
	{"images with CVE-2021-44228", func(ctx context.Context, s *store.Store) (int, error) {
		p, err := s.ImagesWithVulnerability(ctx, "CVE-2021-44228", store.CrossImageOptions{Limit: 50})
		return len(p.Items), err
	}},
	{"images with log4j-core < 2.17", func(ctx context.Context, s *store.Store) (int, error) {
		p, err := s.ImagesWithPackage(ctx, inventory.TypeMaven, "org.apache.logging.log4j:log4j-core", "< 2.17", store.CrossImageOptions{Limit: 50})
		return len(p.Items), err
	}},
	{"count severity=CRITICAL", func(ctx context.Context, s *store.Store) (int, error) {
		n, err := s.CountVulnerabilities(ctx, store.ListOptions{Filter: "severity=CRITICAL"})
		return int(n), err
	}},
}

// httpQueries are timed through the console's HTTP handler as the first
// admin (session cookie): authentication, the role and scope lookup, the
// query and the JSON answer; the last three are web console pages (HTML).
var httpQueries = []string{
	"/api/v1/vulnerabilities?limit=50&sort=-severity",
	"/api/v1/vulnerabilities?limit=50&filter=severity%3DCRITICAL,HIGH%3Bfixable%3Dtrue",
	"/api/v1/images?limit=50",
	"/api/v1/vulnerabilities/CVE-2021-44228/images",
	"/api/v1/packages/images?type=maven&name=org.apache.logging.log4j:log4j-core&version=%3C2.17",
	"/images",
	"/vulnerabilities?filter=severity%3DCRITICAL",
	"/",
}

// result is the measurements of one database.
type result struct {
	db     string
	ingest time.Duration
	// analyze is the time Store.Analyze took after the ingest.
	analyze time.Duration
	rows    []int
	p50     []time.Duration
	p99     []time.Duration
	// httpP50 and httpP99 are the latencies of httpQueries.
	httpP50, httpP99 []time.Duration
}

func run(scans, pkgs, findings, runs int) error {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "serverdb")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	dbs := []struct{ name, url string }{{"SQLite", "sqlite://" + filepath.Join(dir, "bench.db")}}
	pg, cleanup, err := postgresDB(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "serverdb: PostgreSQL not measured:", err)
	} else {
		defer cleanup()
		dbs = append(dbs, struct{ name, url string }{"PostgreSQL", pg})
	}
	var results []result
	for _, db := range dbs {
		r, err := measure(ctx, db.name, db.url, scans, pkgs, findings, runs)
		if err != nil {
			return fmt.Errorf("%s: %w", db.name, err)
		}
		results = append(results, r)
	}
	fmt.Printf("\n%d scans x %d packages, %d vulnerability findings per scan (%d findings, %d packages); %d runs per query\n\n",
		scans, pkgs, findings, scans*findings, scans*pkgs, runs)
	fmt.Printf("%-44s", "query")
	for _, r := range results {
		fmt.Printf(" | %-10s p50 / p99      rows", r.db)
	}
	fmt.Println()
	fmt.Printf("%-44s", "ingest (per scan, one transaction)")
	for _, r := range results {
		fmt.Printf(" | %8.1f ms mean  (total %5.0f s)", float64(r.ingest.Microseconds())/1000/float64(scans), r.ingest.Seconds())
	}
	fmt.Println()
	fmt.Printf("%-44s", "Analyze after ingest")
	for _, r := range results {
		fmt.Printf(" | %8.1f ms                       ", ms(r.analyze))
	}
	fmt.Println()
	for i, q := range queries {
		fmt.Printf("%-44s", q.name)
		for _, r := range results {
			fmt.Printf(" | %7.2f / %7.2f ms %7d", ms(r.p50[i]), ms(r.p99[i]), r.rows[i])
		}
		fmt.Println()
	}
	fmt.Printf("\nThrough the HTTP API (session, RBAC, query, JSON):\n\n")
	for i, q := range httpQueries {
		fmt.Printf("GET %-82s", q)
		for _, r := range results {
			fmt.Printf(" | %s %7.2f / %7.2f ms", r.db, ms(r.httpP50[i]), ms(r.httpP99[i]))
		}
		fmt.Println()
	}
	return nil
}

// measureHTTP opens a console server on the benchmark database, logs in
// as its first admin and times httpQueries.
func measureHTTP(ctx context.Context, r *result, u, dir string, runs int) error {
	var password string
	srv, err := server.New(ctx, server.Config{DataDir: filepath.Join(dir, "data-"+r.db), DatabaseURL: u, VulnDB: filepath.Join(dir, "none.db"),
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), FirstRun: func(_, pw string) { password = pw }})
	if err != nil {
		return err
	}
	defer srv.Close()
	h := srv.Handler()
	req := httptest.NewRequest("POST", "https://console.example/api/v1/auth/login", strings.NewReader(`{"username":"admin","password":"`+password+`"}`))
	req.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != 200 {
		return fmt.Errorf("login: %d %s", w.Code, w.Body)
	}
	cookies := w.Result().Cookies()
	for _, q := range httpQueries {
		var lat []time.Duration
		for range runs {
			req := httptest.NewRequest("GET", "https://console.example"+q, nil)
			for _, c := range cookies {
				req.AddCookie(c)
			}
			w := httptest.NewRecorder()
			t := time.Now()
			h.ServeHTTP(w, req)
			lat = append(lat, time.Since(t))
			if w.Code != 200 {
				return fmt.Errorf("GET %s: %d %s", q, w.Code, w.Body)
			}
		}
		slices.Sort(lat)
		r.httpP50 = append(r.httpP50, lat[len(lat)/2])
		r.httpP99 = append(r.httpP99, lat[min(len(lat)-1, len(lat)*99/100)])
	}
	return nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func measure(ctx context.Context, name, u string, scans, pkgs, findings, runs int) (result, error) {
	s, err := store.Open(ctx, u)
	if err != nil {
		return result{}, err
	}
	defer s.Close()
	r := result{db: name}
	start := time.Now()
	for i := 0; i < scans; i++ {
		rep := storetest.Scan(uint64(i), pkgs, findings)
		im := store.Image{Registry: "registry.example.com", Repository: fmt.Sprintf("team%d/app%d", i%7, i), Tag: fmt.Sprintf("1.%d", i%5),
			Digest: rep.Inventory.Image.Digest}
		if _, err := s.IngestScan(ctx, im, rep); err != nil {
			return result{}, err
		}
		if (i+1)%100 == 0 {
			fmt.Fprintf(os.Stderr, "%s: %d scans ingested in %s\n", name, i+1, time.Since(start).Round(time.Second))
		}
	}
	r.ingest = time.Since(start)
	t := time.Now()
	if err := s.Analyze(ctx); err != nil {
		return result{}, err
	}
	r.analyze = time.Since(t)
	for _, q := range queries {
		var lat []time.Duration
		n := 0
		for i := 0; i < runs; i++ {
			t := time.Now()
			if n, err = q.fn(ctx, s); err != nil {
				return result{}, fmt.Errorf("%s: %w", q.name, err)
			}
			lat = append(lat, time.Since(t))
		}
		slices.Sort(lat)
		r.rows = append(r.rows, n)
		r.p50 = append(r.p50, lat[len(lat)/2])
		r.p99 = append(r.p99, lat[min(len(lat)-1, len(lat)*99/100)])
	}
	dir, err := os.MkdirTemp("", "serverdb-http")
	if err != nil {
		return result{}, err
	}
	defer os.RemoveAll(dir)
	if err := measureHTTP(ctx, &r, u, dir, runs); err != nil {
		return result{}, fmt.Errorf("HTTP: %w", err)
	}
	return r, nil
}

// postgresDB creates a fresh database on the test cluster and returns its
// URL and a function dropping it.
func postgresDB(ctx context.Context) (string, func(), error) {
	base := os.Getenv("MAMORI_TEST_POSTGRES_URL")
	if base == "" {
		b, err := os.ReadFile(testenv.PostgresURLFile)
		if err != nil {
			return "", nil, fmt.Errorf("no $MAMORI_TEST_POSTGRES_URL and %w (run scripts/start-postgres.sh)", err)
		}
		base = strings.TrimSpace(string(b))
	}
	admin, err := sql.Open("pgx", base)
	if err != nil {
		return "", nil, err
	}
	const name = "mamori_serverdb_bench"
	if _, err := admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
		admin.Close()
		return "", nil, err
	}
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		admin.Close()
		return "", nil, err
	}
	u, err := url.Parse(base)
	if err != nil {
		admin.Close()
		return "", nil, err
	}
	u.Path = "/" + name
	return u.String(), func() {
		admin.ExecContext(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
		admin.Close()
	}, nil
}
