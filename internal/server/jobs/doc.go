// Package jobs is the console server's scan queue: prioritized,
// deduplicated scan jobs run by a bounded pool of local workers or leased
// over HTTP by remote scanners (mamori scanner --server URL --token T).
//
// A job moves from queued to running when a worker leases it, and ends
// done, failed or canceled. A lease must be renewed by heartbeats; when it
// expires the job is queued again, so a dead worker never loses a job.
// Transient failures are retried with exponential backoff up to
// Config.MaxAttempts.
package jobs
