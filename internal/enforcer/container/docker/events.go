package docker

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"time"
)

// ContainerActions are the container event actions Events asks for.
var ContainerActions = []string{"start", "die", "destroy", "exec_create", "exec_start", "exec_die"}

// Events follows the Engine's container events from since (zero: from now)
// and calls fn for each, in order, until ctx ends (it then returns nil) or
// the stream fails. The stream is newline-delimited JSON; one event larger
// than MaxEvent fails it.
func (c *Client) Events(ctx context.Context, since time.Time, fn func(*Event)) error {
	filters, err := json.Marshal(map[string][]string{"type": {"container"}, "event": ContainerActions})
	if err != nil {
		return err
	}
	q := url.Values{"filters": {string(filters)}}
	if !since.IsZero() {
		q.Set("since", fmt.Sprintf("%d.%09d", since.Unix(), since.Nanosecond()))
	}
	resp, err := c.get(ctx, "/events", q)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	stop := context.AfterFunc(ctx, func() { resp.Body.Close() })
	defer stop()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), MaxEvent)
	for sc.Scan() {
		if len(sc.Bytes()) == 0 {
			continue
		}
		ev, err := DecodeEvent(sc.Bytes())
		if err != nil {
			return err
		}
		fn(ev)
	}
	if ctx.Err() != nil {
		return nil
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return fmt.Errorf("docker engine event stream: an event is larger than %d bytes", MaxEvent)
		}
		return fmt.Errorf("reading the Docker Engine event stream: %w", err)
	}
	return errors.New("the Docker Engine closed its event stream")
}
