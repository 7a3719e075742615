package docker

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/mamorisec/mamori/internal/testenv"
)

func TestEngine(t *testing.T) {
	c := New(testenv.Docker(t))
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := c.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	img := testenv.BusyboxImage(t)

	// Follow the events from before the container starts.
	events := make(chan *Event, 64)
	evCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- c.Events(evCtx, time.Now().Add(-time.Second), func(e *Event) { events <- e })
	}()

	id := testenv.RunContainer(t, img, []string{"--label", "team=blue"}, "sleep", "60")
	l, err := c.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, s := range l {
		found = found || s.ID == id
	}
	if !found {
		t.Fatalf("List does not show %s: %+v", id, l)
	}
	in, err := c.Inspect(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if in.Config.Labels["team"] != "blue" || in.Config.Image != img || in.State.Pid <= 0 || in.GraphDriver.Data["UpperDir"] == "" {
		t.Errorf("inspect = %+v", in)
	}
	if digests, err := c.ImageDigests(ctx, in.Image); err != nil || len(digests) != 0 {
		t.Errorf("ImageDigests of an imported image = %v, %v; want none", digests, err)
	}
	testenv.DockerCLI(t, nil, "exec", "-d", id, "sleep", "30")

	var execID string
	deadline := time.After(20 * time.Second)
	for execID == "" {
		select {
		case e := <-events:
			if e.Actor.ID == id && e.Action == "exec_start" && e.Command == "sleep 30" {
				execID = e.ExecID()
			}
		case <-deadline:
			t.Fatal("no exec_start event")
		}
	}
	ex, err := c.ExecInspect(ctx, execID)
	if err != nil {
		t.Fatal(err)
	}
	if ex.ContainerID != id || ex.Pid <= 0 || ex.ProcessConfig.Entrypoint != "sleep" {
		t.Errorf("exec inspect = %+v", ex)
	}
	stop()
	if err := <-done; err != nil {
		t.Errorf("Events after cancel: %v", err)
	}

	if _, err := c.Inspect(ctx, "0000000000000000000000000000000000000000000000000000000000000000"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Inspect of a missing container: %v, want ErrNotFound", err)
	}
	if _, err := c.Inspect(ctx, "../images/json"); err == nil {
		t.Error("Inspect accepted a path as id")
	}
}

func TestUnreachable(t *testing.T) {
	c := New("/nonexistent/docker.sock")
	err := c.Ping(context.Background())
	if err == nil {
		t.Fatal("Ping of a missing socket succeeded")
	}
	t.Log(err)
}

func TestSocketFromEnv(t *testing.T) {
	tests := []struct{ env, want, err string }{
		{"", DefaultSocket, ""},
		{"unix:///run/user/1000/docker.sock", "/run/user/1000/docker.sock", ""},
		{"tcp://127.0.0.1:2375", "", "only unix"},
		{"unix://", "", "only unix"},
	}
	for _, tt := range tests {
		t.Setenv("DOCKER_HOST", tt.env)
		got, err := SocketFromEnv()
		if got != tt.want || (err == nil) != (tt.err == "") {
			t.Errorf("DOCKER_HOST=%q: %q, %v", tt.env, got, err)
		}
	}
}
