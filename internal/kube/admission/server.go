package admission

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/mamorisec/mamori/internal/inventory"
	"github.com/mamorisec/mamori/internal/report"
)

// ServerVerdicts answers image verdicts from the console server's REST API
// (GET /api/v1/images with a filter on the reference, the latest scan's
// report for the failure reasons), authenticated with an API token that
// needs images:view and scans:view (and scans:edit for UnscannedScan).
// Answers are cached for TTL; when the server cannot be reached a cached
// answer is used however old it is, so admission keeps working through a
// server outage for every image seen before.
type ServerVerdicts struct {
	// URL is the server's base URL ("https://mamori.example:8443").
	URL   string
	Token string
	// Client is the HTTP client (http.DefaultClient when nil); give it a
	// timeout well below the webhook's.
	Client *http.Client
	// TTL is how long an answer is fresh (default 30s).
	TTL time.Duration
	// MaxEntries bounds the cache (default 10000); the oldest half is
	// dropped when it is full.
	MaxEntries int

	mu    sync.Mutex
	cache map[string]cached
}

type cached struct {
	status  string
	reasons []string
	at      time.Time
}

// serverImage is the part of the server's store.Image the gate reads.
type serverImage struct {
	LatestScanID int64  `json:"latestScanID"`
	Assurance    string `json:"assurance"`
}

// maxResponse bounds a server response (a scan report can be large).
const maxResponse = 64 << 20

// Verdict implements ImageVerdicts.
func (s *ServerVerdicts) Verdict(ctx context.Context, imageRef string) (string, []string, error) {
	ttl := s.TTL
	if ttl == 0 {
		ttl = 30 * time.Second
	}
	s.mu.Lock()
	c, ok := s.cache[imageRef]
	s.mu.Unlock()
	if ok && time.Since(c.at) < ttl {
		return c.status, c.reasons, nil
	}
	status, reasons, err := s.fetch(ctx, imageRef)
	if err != nil {
		if ok {
			return c.status, c.reasons, nil
		}
		return "", nil, err
	}
	s.store(imageRef, cached{status, reasons, time.Now()})
	return status, reasons, nil
}

func (s *ServerVerdicts) store(ref string, c cached) {
	max := s.MaxEntries
	if max == 0 {
		max = 10000
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cache == nil {
		s.cache = map[string]cached{}
	}
	if len(s.cache) >= max {
		cut := time.Now()
		var times []time.Time
		for _, e := range s.cache {
			times = append(times, e.at)
		}
		// Drop entries older than the median age.
		if len(times) > 0 {
			cut = median(times)
		}
		for k, e := range s.cache {
			if !e.at.After(cut) {
				delete(s.cache, k)
			}
		}
	}
	s.cache[ref] = c
}

func median(ts []time.Time) time.Time {
	slices.SortFunc(ts, time.Time.Compare)
	return ts[len(ts)/2]
}

// filterValue escapes a value of a list filter.
func filterValue(v string) string {
	r := strings.NewReplacer(`\`, `\\`, `,`, `\,`, `;`, `\;`)
	return r.Replace(v)
}

// fetch asks the server for the verdict of imageRef.
func (s *ServerVerdicts) fetch(ctx context.Context, imageRef string) (string, []string, error) {
	ref, err := name.ParseReference(imageRef)
	if err != nil {
		return "", nil, fmt.Errorf("image reference %q: %w", imageRef, err)
	}
	repo := ref.Context()
	filter := "registry=" + filterValue(repo.RegistryStr()) + ";repository=" + filterValue(repo.RepositoryStr())
	switch r := ref.(type) {
	case name.Digest:
		filter += ";digest=" + filterValue(r.DigestStr())
	case name.Tag:
		filter += ";tag=" + filterValue(r.TagStr())
	}
	var list struct {
		Items []serverImage `json:"items"`
	}
	q := url.Values{"filter": {filter}, "sort": {"-lastSeen"}, "limit": {"1"}}
	if err := s.get(ctx, "/api/v1/images?"+q.Encode(), &list); err != nil {
		return "", nil, err
	}
	if len(list.Items) == 0 || list.Items[0].LatestScanID == 0 || list.Items[0].Assurance == "none" || list.Items[0].Assurance == "" {
		return VerdictUnknown, nil, nil
	}
	im := list.Items[0]
	if im.Assurance != "fail" {
		// "pass" and "warn" (an audit-mode policy failed) admit.
		return VerdictPass, nil, nil
	}
	var rep report.Scan
	if err := s.get(ctx, fmt.Sprintf("/api/v1/scans/%d/report", im.LatestScanID), &rep); err != nil {
		return VerdictFail, []string{"assurance policy failed (reasons unavailable: " + err.Error() + ")"}, nil
	}
	var reasons []string
	if rep.Assurance != nil {
		for _, v := range rep.Assurance.Violations {
			reasons = append(reasons, fmt.Sprintf("%s: %s (policy %s)", v.Control, v.Message, rep.Assurance.Policy))
		}
	}
	return VerdictFail, reasons, nil
}

// RequestScan implements Scanner: POST /api/v1/scans.
func (s *ServerVerdicts) RequestScan(ctx context.Context, imageRef string) error {
	body, _ := json.Marshal(map[string]string{"image": imageRef})
	_, err := s.do(ctx, http.MethodPost, "/api/v1/scans", body)
	return err
}

func (s *ServerVerdicts) get(ctx context.Context, path string, v any) error {
	b, err := s.do(ctx, http.MethodGet, path, nil)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("mamori server %s: decoding the answer: %w", path, err)
	}
	return nil
}

func (s *ServerVerdicts) do(ctx context.Context, method, path string, body []byte) ([]byte, error) {
	client := s.Client
	if client == nil {
		client = http.DefaultClient
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(s.URL, "/")+path, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("mamori server %s: %w", s.URL, err)
	}
	req.Header.Set("Authorization", "Bearer "+s.Token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("mamori server %s: %w", s.URL, err)
	}
	defer resp.Body.Close()
	b, err := inventory.ReadAllLimited(resp.Body, maxResponse)
	if err != nil {
		return nil, fmt.Errorf("mamori server %s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("mamori server %s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(b[:min(len(b), 300)]))
	}
	return b, nil
}
