package container

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/mamorisec/mamori/internal/enforcer/container/cri"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// CRISource is a CRI runtime (containerd, cri-o) as a Source. CRI v1 has
// no event stream every runtime implements, so Watch polls.
type CRISource struct {
	client  *cri.Client
	runtime string
	// Poll is how often Watch lists the containers (default 2s).
	Poll time.Duration
}

// NewCRISource returns a Source over a CRI client; runtime names it
// ("containerd", "cri-o").
func NewCRISource(c *cri.Client, runtime string) *CRISource {
	return &CRISource{client: c, runtime: runtime, Poll: 2 * time.Second}
}

// Runtime returns the runtime's name.
func (s *CRISource) Runtime() string { return s.runtime }

// List returns the running containers with their status.
func (s *CRISource) List(ctx context.Context) ([]*Container, error) {
	l, err := s.client.ListRunning(ctx)
	if err != nil {
		return nil, err
	}
	var out []*Container
	for _, rc := range l {
		c, err := s.Get(ctx, rc.GetId())
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// Get returns one container from its status and its init's mounts.
func (s *CRISource) Get(ctx context.Context, id string) (*Container, error) {
	st, err := s.client.Status(ctx, id)
	if errors.Is(err, cri.ErrNotFound) {
		return nil, fmt.Errorf("%s container %s: %w", s.runtime, id, ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	c := &Container{
		ID:          st.GetId(),
		Name:        st.GetMetadata().GetName(),
		Runtime:     s.runtime,
		Image:       st.GetImage().GetImage(),
		ImageID:     st.GetImageId(),
		ImageDigest: digestOf(st.GetImageRef()),
		Labels:      st.GetLabels(),
		PID:         st.Info.Pid,
	}
	if st.GetStartedAt() > 0 {
		c.Started = time.Unix(0, st.GetStartedAt()).UTC()
	}
	if st.GetState() != runtimeapi.ContainerState_CONTAINER_RUNNING {
		c.PID = 0
	}
	c.CgroupParent = st.Info.RuntimeSpec.Linux.CgroupsPath
	c.setKubernetes()
	if o, ok := overlayOf(c.PID); ok {
		c.UpperDir, c.LowerDirs = o.upper, o.lowers
		c.MergedDir = fmt.Sprintf("/proc/%d/root", c.PID)
	}
	return c, nil
}

// digestOf returns the sha256:... digest of an image ref (name@sha256:...
// or a bare digest).
func digestOf(ref string) string {
	for i := 0; i+7 <= len(ref); i++ {
		if ref[i:i+7] == "sha256:" {
			return ref[i:]
		}
	}
	return ""
}

// Watch polls the running containers and reports starts and stops.
func (s *CRISource) Watch(ctx context.Context, _ time.Time, fn func(Event)) error {
	poll := s.Poll
	if poll <= 0 {
		poll = 2 * time.Second
	}
	known := map[string]bool{}
	first := true
	tick := time.NewTicker(poll)
	defer tick.Stop()
	for {
		l, err := s.client.ListRunning(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		now := map[string]bool{}
		for _, rc := range l {
			now[rc.GetId()] = true
			if !known[rc.GetId()] && !first {
				fn(Event{Kind: EventStart, ID: rc.GetId(), Time: time.Now()})
			}
		}
		for id := range known {
			if !now[id] {
				fn(Event{Kind: EventStop, ID: id, Time: time.Now()})
			}
		}
		known, first = now, false
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}
