package store

import (
	"context"
	"testing"
	"time"
)

// TestSummaries checks the dashboard's grouped counts against the list
// counts they replace, with and without a scope, and the scan trend.
func TestSummaries(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		seed(t, s, 14)
		for _, sc := range []*Scope{nil, {Images: []string{"registry.example.com/team2/*"}}, {}} {
			sum, err := s.VulnerabilitySummary(ctx, ListOptions{Scope: sc})
			if err != nil {
				t.Fatal(err)
			}
			var total int64
			for _, sev := range severityValues {
				all, err := s.CountVulnerabilities(ctx, ListOptions{Filter: "severity=" + sev, Scope: sc})
				if err != nil {
					t.Fatal(err)
				}
				fix, err := s.CountVulnerabilities(ctx, ListOptions{Filter: "severity=" + sev + ";fixable=true", Scope: sc})
				if err != nil {
					t.Fatal(err)
				}
				if got := sum[sev]; got.All != all || got.Fixable != fix {
					t.Errorf("scope %+v, %s: summary %+v, counts %d/%d", sc, sev, got, all, fix)
				}
				total += all
			}
			if n, _ := s.CountVulnerabilities(ctx, ListOptions{Scope: sc}); n != total {
				t.Errorf("scope %+v: summary total %d, count %d", sc, total, n)
			}
			states, err := s.AssuranceSummary(ctx, ListOptions{Scope: sc})
			if err != nil {
				t.Fatal(err)
			}
			var images int64
			for st, n := range states {
				c, err := s.CountImages(ctx, ListOptions{Filter: "assurance=" + st, Scope: sc})
				if err != nil || c != n {
					t.Errorf("scope %+v, %s: summary %d, count %d (%v)", sc, st, n, c, err)
				}
				images += n
			}
			if n, _ := s.CountImages(ctx, ListOptions{Scope: sc}); n != images {
				t.Errorf("scope %+v: %d images by status, %d in all", sc, images, n)
			}
		}
		trend, err := s.ScanTrend(ctx, time.Now().AddDate(0, 0, -1), nil)
		if err != nil {
			t.Fatal(err)
		}
		var scans int64
		for _, d := range trend {
			scans += d.Scans
		}
		if scans != 14 {
			t.Errorf("trend counts %d scans, want 14: %+v", scans, trend)
		}
		if trend, err := s.ScanTrend(ctx, time.Now().Add(time.Hour), nil); err != nil || len(trend) != 0 {
			t.Errorf("trend from the future: %+v %v", trend, err)
		}
		if _, err := s.VulnerabilitySummary(ctx, ListOptions{Filter: "nope=1"}); err == nil {
			t.Error("a bad filter was accepted")
		}
	})
}
