package registry

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// limitTransport spaces requests to one registry, retries 429 answers
// honouring Retry-After, and refuses plain HTTP unless allowed.
type limitTransport struct {
	base      http.RoundTripper
	interval  time.Duration // between request starts
	allowHTTP bool
	retries   int
	maxWait   time.Duration // longest Retry-After honoured

	mu   sync.Mutex
	next time.Time
}

// wait blocks until the next request may start.
func (t *limitTransport) wait(ctx context.Context) error {
	t.mu.Lock()
	now := time.Now()
	start := t.next
	if start.Before(now) {
		start = now
	}
	t.next = start.Add(t.interval)
	t.mu.Unlock()
	return sleep(ctx, start.Sub(now))
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-tm.C:
		return nil
	}
}

// RoundTrip implements http.RoundTripper.
func (t *limitTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme == "http" && !t.allowHTTP {
		// Reached when a registry is only reachable over plain HTTP, or a
		// token realm points to one: credentials must not go in clear.
		return nil, fmt.Errorf("refusing plain HTTP to %s (only loopback registries marked insecure may use it)", req.URL.Host)
	}
	backoff := time.Second
	for attempt := 0; ; attempt++ {
		if err := t.wait(req.Context()); err != nil {
			return nil, err
		}
		r := req
		if attempt > 0 {
			if req.GetBody == nil && req.Body != nil && req.Body != http.NoBody {
				return nil, fmt.Errorf("%s: rate limited (HTTP 429) and the request cannot be replayed", req.URL.Host)
			}
			r = req.Clone(req.Context())
			if req.GetBody != nil {
				body, err := req.GetBody()
				if err != nil {
					return nil, err
				}
				r.Body = body
			}
		}
		resp, err := t.base.RoundTrip(r)
		if err != nil || resp.StatusCode != http.StatusTooManyRequests || attempt >= t.retries {
			return resp, err
		}
		d := retryAfter(resp.Header.Get("Retry-After"), backoff, t.maxWait)
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		if err := sleep(req.Context(), d); err != nil {
			return nil, err
		}
		backoff = min(2*backoff, t.maxWait)
	}
}

// retryAfter parses a Retry-After header (seconds or an HTTP date),
// falling back to def, capped at limit.
func retryAfter(h string, def, limit time.Duration) time.Duration {
	d := def
	if s, err := strconv.Atoi(h); err == nil && s >= 0 {
		d = time.Duration(s) * time.Second
	} else if at, err := http.ParseTime(h); err == nil {
		d = time.Until(at)
	}
	return min(max(d, 0), limit)
}
