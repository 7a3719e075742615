package jobs

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// WorkerOptions configures RunRemoteWorker.
type WorkerOptions struct {
	// Name identifies the worker in the server's job list.
	Name string
	// Client is the HTTP client (a client with no overall timeout when
	// nil; every request gets its own deadline).
	Client *http.Client
	// Wait is the long-poll wait per lease request (30 s when 0, at most
	// MaxWait).
	Wait time.Duration
	// JobTimeout bounds one scan (30 min when 0).
	JobTimeout time.Duration
	// MaxBackoff bounds the wait after server errors (30 s when 0).
	MaxBackoff time.Duration
	// Logf reports progress and errors (discarded when nil). The token is
	// never passed to it.
	Logf func(format string, args ...any)
}

// ErrUnauthorized is returned by RunRemoteWorker when the server rejects
// its token.
var ErrUnauthorized = errors.New("the server rejected the scanner token")

// remoteClient talks to the remote scanner API.
type remoteClient struct {
	base   string
	token  string
	client *http.Client
}

// CheckServerURL parses a scanner server URL. Plain http is allowed only
// for loopback hosts, so the token never crosses a network in clear text.
func CheckServerURL(serverURL string) (*url.URL, error) {
	u, err := url.Parse(serverURL)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("server URL %q: want http(s)://host[:port]", serverURL)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("server URL %q: must not contain credentials, a query or a fragment", u.Redacted())
	}
	if u.Scheme == "http" && !isLoopback(u.Hostname()) {
		return nil, fmt.Errorf("server URL %q: plain http is only allowed to localhost; use https", serverURL)
	}
	return u, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// statusError is an unexpected answer from the server.
type statusError struct {
	op     string
	status int
	msg    string
}

func (e *statusError) Error() string {
	return fmt.Sprintf("scanner server: %s: HTTP %d: %s", e.op, e.status, e.msg)
}

// do posts body (gzip-compressed when zip) to path and decodes a JSON
// answer into out when the status is 200.
func (c *remoteClient) do(ctx context.Context, op, path string, body []byte, header http.Header, zip bool, timeout time.Duration, out any) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if zip {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		_, _ = zw.Write(body)
		_ = zw.Close()
		body = buf.Bytes()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("scanner server: %s: %w", op, err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+c.token)
	if zip {
		req.Header.Set("Content-Encoding", "gzip")
	}
	resp, err := c.client.Do(req)
	if err != nil {
		// url.Error names the URL, which holds no secret.
		return 0, fmt.Errorf("scanner server: %s: %w", op, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return resp.StatusCode, fmt.Errorf("scanner server: %s: %w", op, ErrUnauthorized)
	case resp.StatusCode == http.StatusOK && out != nil:
		if err := json.Unmarshal(b, out); err != nil {
			return resp.StatusCode, fmt.Errorf("scanner server: %s: bad answer: %w", op, err)
		}
		return resp.StatusCode, nil
	case resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusNoContent:
		return resp.StatusCode, nil
	}
	var e struct {
		Error struct{ Message string } `json:"error"`
	}
	msg := strings.TrimSpace(string(b))
	if json.Unmarshal(b, &e) == nil && e.Error.Message != "" {
		msg = e.Error.Message
	}
	if len(msg) > 300 {
		msg = msg[:300]
	}
	return resp.StatusCode, &statusError{op: op, status: resp.StatusCode, msg: msg}
}

// RunRemoteWorker leases jobs from the console server at serverURL with
// the bearer token, scans them with scan and posts the results (gzip),
// until ctx is canceled. Heartbeats keep the lease while a scan runs; a
// lost lease (the job was canceled or expired) cancels the scan. Server
// and network errors are retried with backoff. It returns ctx.Err() when
// ctx ends, or an error wrapping ErrUnauthorized when the token is
// rejected.
func RunRemoteWorker(ctx context.Context, serverURL, token string, scan ScanFunc, opts WorkerOptions) error {
	u, err := CheckServerURL(serverURL)
	if err != nil {
		return err
	}
	if token == "" {
		return errors.New("scanner token is empty")
	}
	if scan == nil {
		return errors.New("remote worker: no scan function")
	}
	if opts.Client == nil {
		opts.Client = &http.Client{}
	}
	if opts.Wait <= 0 {
		opts.Wait = 30 * time.Second
	}
	opts.Wait = min(opts.Wait, MaxWait)
	if opts.JobTimeout <= 0 {
		opts.JobTimeout = 30 * time.Minute
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = 30 * time.Second
	}
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	c := &remoteClient{base: strings.TrimSuffix(u.String(), "/") + "/api/v1/scanner", token: token, client: opts.Client}
	backoff := time.Duration(0)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		var l LeaseResponse
		body, _ := json.Marshal(LeaseRequest{Worker: opts.Name, WaitSeconds: int(opts.Wait / time.Second)})
		status, err := c.do(ctx, "lease", PathLease, body, nil, false, opts.Wait+30*time.Second, &l)
		if errors.Is(err, ErrUnauthorized) {
			return err
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			backoff = min(max(2*backoff, 500*time.Millisecond), opts.MaxBackoff)
			opts.Logf("%v; retrying in %v", err, backoff)
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(backoff):
			}
			continue
		}
		backoff = 0
		if status == http.StatusNoContent {
			continue
		}
		c.runJob(ctx, l, scan, opts)
	}
}

// runJob scans a leased job and reports the outcome.
func (c *remoteClient) runJob(ctx context.Context, l LeaseResponse, scan ScanFunc, opts WorkerOptions) {
	opts.Logf("job %s: scanning %s", l.ID, l.Ref)
	jctx, cancel := context.WithTimeout(ctx, opts.JobTimeout)
	defer cancel()
	interval := time.Duration(l.HeartbeatMillis) * time.Millisecond
	if interval <= 0 {
		interval = 10 * time.Second
	}
	hbPath := strings.Replace(PathHeartbeat, "{id}", url.PathEscape(l.ID), 1)
	hbBody, _ := json.Marshal(HeartbeatRequest{LeaseToken: l.LeaseToken})
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				status, err := c.do(ctx, "heartbeat", hbPath, hbBody, nil, false, max(interval, 10*time.Second), nil)
				if status == http.StatusConflict || status == http.StatusNotFound {
					opts.Logf("job %s: %v; stopping the scan", l.ID, err)
					cancel()
					return
				}
				if err != nil {
					opts.Logf("job %s: %v", l.ID, err)
				}
			}
		}
	})
	res, err := scan(jctx, l.Ref)
	close(done)
	wg.Wait()
	if jctx.Err() != nil && ctx.Err() == nil && errors.Is(jctx.Err(), context.Canceled) {
		return // lease lost: the server no longer wants this result
	}
	if err == nil && res == nil {
		err = Permanent(errors.New("scanner returned no result"))
	}
	if err != nil {
		opts.Logf("job %s: %v", l.ID, err)
		fb, _ := json.Marshal(FailRequest{LeaseToken: l.LeaseToken, Error: err.Error(), Transient: IsTransient(err) || ctx.Err() != nil})
		// Report even when ctx is ending, so the job is retried at once.
		_, ferr := c.do(context.WithoutCancel(ctx), "fail", strings.Replace(PathFail, "{id}", url.PathEscape(l.ID), 1), fb, nil, false, 30*time.Second, nil)
		if ferr != nil {
			opts.Logf("job %s: %v", l.ID, ferr)
		}
		return
	}
	b, err := json.Marshal(res)
	if err != nil {
		opts.Logf("job %s: encoding result: %v", l.ID, err)
		return
	}
	h := http.Header{LeaseHeader: {l.LeaseToken}}
	path := strings.Replace(PathResult, "{id}", url.PathEscape(l.ID), 1)
	for attempt := 1; ; attempt++ {
		status, err := c.do(ctx, "result", path, b, h, true, 5*time.Minute, nil)
		if err == nil {
			opts.Logf("job %s: done", l.ID)
			return
		}
		opts.Logf("job %s: %v", l.ID, err)
		// Retry only server-side trouble; a 4xx will not change.
		if (status != 0 && status < 500) || attempt == 3 || ctx.Err() != nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Duration(attempt) * time.Second):
		}
	}
}
