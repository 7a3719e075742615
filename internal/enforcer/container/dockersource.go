package container

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/mamorisec/mamori/internal/enforcer/container/docker"
)

// execPIDWait bounds how long an exec_start event waits for the session's
// pid.
const execPIDWait = 2 * time.Second

// DockerSource is the Docker Engine as a Source.
type DockerSource struct {
	client *docker.Client
}

// NewDockerSource returns a Source over a Docker Engine client.
func NewDockerSource(c *docker.Client) *DockerSource { return &DockerSource{client: c} }

// Runtime returns "docker".
func (d *DockerSource) Runtime() string { return "docker" }

// List inspects every running container.
func (d *DockerSource) List(ctx context.Context) ([]*Container, error) {
	l, err := d.client.List(ctx)
	if err != nil {
		return nil, err
	}
	var out []*Container
	for _, s := range l {
		c, err := d.Get(ctx, s.ID)
		if errors.Is(err, ErrNotFound) {
			continue // removed meanwhile
		}
		if err != nil {
			return nil, err
		}
		if c.PID > 0 {
			out = append(out, c)
		}
	}
	return out, nil
}

// Get inspects one container.
func (d *DockerSource) Get(ctx context.Context, id string) (*Container, error) {
	in, err := d.client.Inspect(ctx, id)
	if errors.Is(err, docker.ErrNotFound) {
		return nil, fmt.Errorf("docker container %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	c := &Container{
		ID:           in.ID,
		Name:         strings.TrimPrefix(in.Name, "/"),
		Runtime:      "docker",
		Image:        in.Config.Image,
		ImageID:      in.Image,
		Labels:       in.Config.Labels,
		PID:          in.State.Pid,
		Started:      in.State.StartedAt,
		CgroupParent: in.HostConfig.CgroupParent,
		UpperDir:     in.GraphDriver.Data["UpperDir"],
		MergedDir:    in.GraphDriver.Data["MergedDir"],
		LowerDirs:    in.LowerDirs(),
	}
	if !in.State.Running {
		c.PID = 0
	}
	c.setKubernetes()
	if digests, err := d.client.ImageDigests(ctx, in.Image); err == nil {
		c.ImageDigest = pickDigest(digests, c.Image)
	}
	return c, nil
}

// pickDigest returns the digest of the repository digest (name@sha256:...)
// matching ref's repository, or else of the first one.
func pickDigest(digests []string, ref string) string {
	repo := ref
	if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
		repo = repo[:i]
	}
	first := ""
	for _, d := range digests {
		name, dg, ok := strings.Cut(d, "@")
		if !ok {
			continue
		}
		if name == repo {
			return dg
		}
		if first == "" {
			first = dg
		}
	}
	return first
}

// Watch follows the Engine's events: start, die/destroy and exec_start
// (whose first process's pid it asks the Engine for).
func (d *DockerSource) Watch(ctx context.Context, since time.Time, fn func(Event)) error {
	return d.client.Events(ctx, since, func(e *docker.Event) {
		ev := Event{ID: e.Actor.ID, Time: e.Time()}
		switch e.Action {
		case "start":
			ev.Kind = EventStart
		case "die", "destroy":
			ev.Kind = EventStop
		case "exec_start":
			ev.Kind = EventExec
			ev.Exec = &Exec{ID: e.ExecID(), Command: e.Command}
			ev.Exec.PID = d.execPID(ctx, ev.Exec.ID)
		default:
			return
		}
		fn(ev)
	})
}

// execPID asks the Engine for the host pid of an exec session's first
// process. The Engine reports exec_start just before it starts the process,
// so it polls briefly; 0 when the pid is not known in time.
func (d *DockerSource) execPID(ctx context.Context, execID string) int {
	if execID == "" {
		return 0
	}
	ctx, cancel := context.WithTimeout(ctx, execPIDWait)
	defer cancel()
	for {
		ex, err := d.client.ExecInspect(ctx, execID)
		if err != nil {
			return 0
		}
		if ex.Pid > 0 {
			return ex.Pid
		}
		select {
		case <-ctx.Done():
			return 0
		case <-time.After(20 * time.Millisecond):
		}
	}
}
