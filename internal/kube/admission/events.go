package admission

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mamorisec/mamori/internal/fleet"
)

// StatusAllow is the Status of the event recorded for a request admitted
// without any violation (fleet.StatusAllow). Denials are fleet.StatusBlock
// and audit-mode violations fleet.StatusDetect.
const StatusAllow = fleet.StatusAllow

// Sink receives batches of admission events (the lead wires it to the
// server's event API, fleet.PathEvents).
type Sink interface {
	Send(ctx context.Context, events []fleet.Event) error
}

// Queue is a bounded event queue between the admission handler and a Sink.
// Add never blocks: when the queue is full the event is dropped and counted.
type Queue struct {
	ch      chan fleet.Event
	sink    Sink
	dropped atomic.Int64
	failed  atomic.Int64
	done    chan struct{}
	stop    sync.Once
}

// NewQueue starts a queue of at most size events that sends batches of up
// to 100 events to sink. Close flushes it.
func NewQueue(sink Sink, size int) *Queue {
	if size < 1 {
		size = 1
	}
	q := &Queue{ch: make(chan fleet.Event, size), sink: sink, done: make(chan struct{})}
	go q.run()
	return q
}

// Add enqueues an event, or drops it when the queue is full.
func (q *Queue) Add(e fleet.Event) {
	select {
	case q.ch <- e:
	default:
		q.dropped.Add(1)
	}
}

// Dropped returns how many events were dropped because the queue was full.
func (q *Queue) Dropped() int64 { return q.dropped.Load() }

// Failed returns how many events the sink failed to take.
func (q *Queue) Failed() int64 { return q.failed.Load() }

// Close stops accepting events, sends what is queued and returns when done.
// Add must not be called after Close.
func (q *Queue) Close() {
	q.stop.Do(func() { close(q.ch) })
	<-q.done
}

func (q *Queue) run() {
	defer close(q.done)
	batch := make([]fleet.Event, 0, 100)
	flush := func() {
		if len(batch) == 0 {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := q.sink.Send(ctx, batch); err != nil {
			q.failed.Add(int64(len(batch)))
		}
		cancel()
		batch = batch[:0]
	}
	for e := range q.ch {
		batch = append(batch, e)
		// Take what is already queued, then send.
	drain:
		for len(batch) < cap(batch) {
			select {
			case e, ok := <-q.ch:
				if !ok {
					break drain
				}
				batch = append(batch, e)
			default:
				break drain
			}
		}
		flush()
	}
	flush()
}
