package jobs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/mamorisec/mamori/internal/report"
)

// ScanFunc scans one image reference.
type ScanFunc func(ctx context.Context, ref string) (*report.Scan, error)

// PermanentError marks a scan failure that retrying cannot fix.
type PermanentError struct{ Err error }

// Error returns the wrapped error's text.
func (e *PermanentError) Error() string { return e.Err.Error() }

// Unwrap returns the wrapped error.
func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent wraps err so that the job fails without retries.
func Permanent(err error) error { return &PermanentError{Err: err} }

// IsTransient reports whether a scan error may go away on retry: network
// failures, timeouts and registry answers 408, 429 and 5xx. Errors marked
// Permanent, cancellations and everything else are not transient.
func IsTransient(err error) bool {
	if err == nil {
		return false
	}
	var perm *PermanentError
	if errors.As(err, &perm) || errors.Is(err, context.Canceled) {
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) {
		return true
	}
	var terr *transport.Error
	if errors.As(err, &terr) {
		s := terr.StatusCode
		return s == http.StatusRequestTimeout || s == http.StatusTooManyRequests || s >= 500
	}
	var nerr net.Error
	return errors.As(err, &nerr) && nerr.Timeout()
}

// PoolOptions configures RunWorkers.
type PoolOptions struct {
	// Workers is the number of scans run at once (1 when 0).
	Workers int
	// JobTimeout bounds one scan (30 min when 0).
	JobTimeout time.Duration
	// Name prefixes the worker names shown in jobs ("local" when empty).
	Name string
}

// RunWorkers runs a pool of local workers that lease jobs from q and scan
// them with scan until ctx is canceled. It returns when every worker has
// stopped.
func (q *Queue) RunWorkers(ctx context.Context, scan ScanFunc, opts PoolOptions) {
	if opts.Workers <= 0 {
		opts.Workers = 1
	}
	if opts.JobTimeout <= 0 {
		opts.JobTimeout = 30 * time.Minute
	}
	if opts.Name == "" {
		opts.Name = "local"
	}
	var wg sync.WaitGroup
	for i := range opts.Workers {
		name := fmt.Sprintf("%s-%d", opts.Name, i+1)
		wg.Go(func() {
			for ctx.Err() == nil {
				l, err := q.Lease(ctx, name, time.Minute)
				if err != nil || l == nil {
					continue
				}
				q.runLocal(ctx, l, scan, opts.JobTimeout)
			}
		})
	}
	wg.Wait()
}

// runLocal runs one leased job, renewing the lease while it runs.
func (q *Queue) runLocal(ctx context.Context, l *Lease, scan ScanFunc, timeout time.Duration) {
	jctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if !q.setCancel(l.Job.ID, l.Token, cancel) {
		return
	}
	done := make(chan struct{})
	var hb sync.WaitGroup
	hb.Go(func() {
		t := time.NewTicker(max(q.cfg.LeaseDuration/3, time.Millisecond))
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if _, err := q.Heartbeat(l.Job.ID, l.Token); err != nil {
					cancel()
					return
				}
			}
		}
	})
	res, err := scan(jctx, l.Job.Ref)
	close(done)
	hb.Wait()
	if err == nil && res == nil {
		err = Permanent(errors.New("scanner returned no result"))
	}
	if err != nil {
		if ctx.Err() != nil {
			// The server is stopping: give the job back for a later run.
			_ = q.Fail(l.Job.ID, l.Token, "server stopped during the scan", true)
			return
		}
		_ = q.Fail(l.Job.ID, l.Token, fmt.Sprintf("scanning %s: %v", l.Job.Ref, err), IsTransient(err))
		return
	}
	if err := q.Complete(ctx, l.Job.ID, l.Token, res); err != nil && !errors.Is(err, ErrLeaseLost) {
		_ = q.Fail(l.Job.ID, l.Token, err.Error(), true)
	}
}
