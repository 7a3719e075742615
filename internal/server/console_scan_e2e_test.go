package server

import (
	"context"
	"fmt"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mamorisec/mamori/internal/server/store"
	"github.com/mamorisec/mamori/internal/server/store/storetest"
	"github.com/mamorisec/mamori/internal/webui/webtest"
)

// TestConsoleBrowserScan scans a real registry image from the console in
// Chromium, opens one of its vulnerabilities, writes an assurance policy,
// rescans and sees the image turn non-compliant (the page follows the
// scan's progress through the live feed and reloads by itself), and sees
// a refused request appear live on the dashboard.
func TestConsoleBrowserScan(t *testing.T) {
	reg, ref, dbPath := demoRegistry(t)
	f := newFixtureConfig(t, "", func(c *Config) { c.InsecureCookie = true })
	f.srv.cfg.VulnDB = dbPath
	if code, body := f.do("admin", "POST", "/api/v1/registries", registryRequest{Name: "local", URL: "http://" + reg.Host, AuthType: store.AuthBasic, Username: reg.Username, Secret: reg.Password}); code != 201 {
		t.Fatalf("registry: %d %s", code, body)
	}
	// The fixture's baseline policy would already fail the image; start
	// from no policy.
	if err := f.srv.db.DeletePolicy(context.Background(), store.PolicyAssurance, "baseline"); err != nil {
		t.Fatal(err)
	}
	f.srv.Start()
	hs := httptest.NewServer(f.h)
	defer hs.Close()
	defer f.srv.console.Stop() // end live feeds, or Close waits for them

	b := webtest.New(t)
	browserFirstLogin(t, b, hs.URL, f)
	b.Navigate(hs.URL + "/images")
	b.WaitVisible("#scan-ref")
	b.SetValue("#scan-ref", ref)
	b.Submit("form.scan")
	b.WaitVisible(".notice")
	checkPage(t, b, "scan-queued")
	// The image appears once the worker has stored the scan.
	var id int64
	for deadline := time.Now().Add(90 * time.Second); ; {
		p, err := f.srv.db.ListImages(context.Background(), store.ListOptions{Filter: "repository=team-a/demo;tag=1"})
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Items) == 1 {
			id = p.Items[0].ID
			break
		}
		if time.Now().After(deadline) {
			all, _ := f.srv.db.ListImages(context.Background(), store.ListOptions{})
			t.Fatalf("the console's scan of %s did not finish: %v %+v", ref, f.srv.queue.List(), all.Items)
		}
		time.Sleep(200 * time.Millisecond)
	}
	page := hs.URL + "/images/" + strconv.FormatInt(id, 10)
	b.Navigate(page)
	b.WaitVisible("#vulns")
	if got := b.Text("#scan-state"); got != "Done" {
		t.Errorf("scan state %q", got)
	}
	if got := b.Text("#layers"); !strings.Contains(got, "ADD base") || !strings.Contains(got, "Show packages") {
		t.Errorf("layers table without the package that a layer added: %q", got)
	}
	checkPage(t, b, "scanned-image")
	// Open a vulnerability from the image: its page lists the image.
	b.Click("#vulns tbody tr:first-child td:first-child a")
	b.WaitVisible("#affected")
	if got := b.Text("#affected"); !strings.Contains(got, "team-a/demo") {
		t.Errorf("the vulnerability's affected images: %q", got)
	}
	checkPage(t, b, "vulnerability")

	// A policy against malware, then a rescan: the page shows the
	// progress and reloads when the scan is done.
	b.Navigate(hs.URL + "/policies")
	b.WaitVisible("#definition")
	b.SetValue("#definition", "apiVersion: mamori.dev/v1\nkind: AssurancePolicy\nname: no-malware\ncontrols:\n  disallow_malware: true\n")
	b.Submit("form.policy")
	b.WaitVisible(".notice")
	b.Navigate(page)
	b.WaitVisible("#rescan")
	b.Click("#rescan")
	b.WaitVisible("#assurance.assurance-fail")
	if got := b.Text("#assurance"); !strings.Contains(got, "Non-compliant") || !strings.Contains(got, "no-malware") {
		t.Errorf("after the rescan: %q", got)
	}
	checkPage(t, b, "non-compliant")
	b.Navigate(hs.URL + "/images?status=fail")
	b.WaitVisible("#images")
	if got := b.Text("#images"); !strings.Contains(got, "team-a/demo") {
		t.Errorf("non-compliant images: %q", got)
	}

	// The dashboard's live feed shows a refused request without a reload.
	b.Navigate(hs.URL + "/")
	b.WaitVisible("#live-events")
	time.Sleep(300 * time.Millisecond) // let the feed connect
	if code, _ := f.do("erin", "GET", "/api/v1/users", nil); code != 403 && code != 404 {
		t.Fatalf("erin lists users: %d", code)
	}
	b.WaitVisible("#live-events li.live-new")
	if got := b.Text("#live-events li.live-new"); !strings.Contains(got, "access.denied") || !strings.Contains(got, "erin") {
		t.Errorf("live event: %q", got)
	}
	checkPage(t, b, "dashboard-live")
}

// TestConsoleBrowserLoad measures, in Chromium, how long the main pages
// take to load with 10,000 images and 100,000 vulnerability findings in
// the database. The figures are printed (and recorded in
// docs/benchmarks.md), not asserted: speed is a benchmark's business.
func TestConsoleBrowserLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("seeds 10,000 scans")
	}
	const images, findings = 10000, 10
	f := newFixtureConfig(t, "", func(c *Config) { c.InsecureCookie = true })
	ctx := context.Background()
	start := time.Now()
	for i := range images {
		rep := storetest.Scan(uint64(i), 5, findings)
		im := store.Image{Registry: "registry.example.com", Repository: fmt.Sprintf("team%d/app%d", i%7, i), Tag: fmt.Sprintf("1.%d", i%5), Digest: rep.Inventory.Image.Digest}
		if _, err := f.srv.db.IngestScan(ctx, im, rep); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.srv.db.Analyze(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("seeded %d images and %d findings in %v", images, images*findings, time.Since(start).Round(time.Second))
	hs := httptest.NewServer(f.h)
	defer hs.Close()
	defer f.srv.console.Stop() // end live feeds, or Close waits for them
	b := webtest.New(t)
	browserFirstLogin(t, b, hs.URL, f)
	for _, p := range []string{"/", "/images", "/images?sort=-critical%2C-high", "/images?status=fail&fixable=true",
		"/images/5000", "/vulnerabilities", "/vulnerabilities?filter=severity%3DCRITICAL%3Bfixable%3Dtrue", "/audit"} {
		var ds []time.Duration
		for range 5 {
			ds = append(ds, b.Timing(hs.URL+p))
		}
		slices.Sort(ds)
		t.Logf("page load %-60s median %6.1f ms  max %6.1f ms", p, float64(ds[2].Microseconds())/1000, float64(ds[4].Microseconds())/1000)
		if errs := b.ConsoleErrors(); len(errs) > 0 {
			t.Errorf("%s: console errors: %q", p, errs)
		}
	}
}
