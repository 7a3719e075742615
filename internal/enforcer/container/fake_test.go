package container

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// fakeSource is a Source whose containers and failures the test sets.
type fakeSource struct {
	mu   sync.Mutex
	list []*Container
	err  error
}

func (f *fakeSource) Runtime() string { return "fake" }

func (f *fakeSource) List(context.Context) ([]*Container, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	var out []*Container
	for _, c := range f.list {
		out = append(out, c.clone())
	}
	return out, nil
}

func (f *fakeSource) Get(_ context.Context, id string) (*Container, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.list {
		if c.ID == id {
			return c.clone(), nil
		}
	}
	return nil, ErrNotFound
}

func (f *fakeSource) Watch(ctx context.Context, _ time.Time, _ func(Event)) error {
	<-ctx.Done()
	return nil
}

func TestTrackerSync(t *testing.T) {
	src := &fakeSource{list: []*Container{{ID: id1, Runtime: "fake", Labels: map[string]string{"a": "b"}}}}
	tr := NewTracker(nil, src)
	var got []string
	unsubscribe := tr.Subscribe(func(c Change) {
		if c.Container.ID != id1 && c.Container.ID != id2 {
			return // a real container of the host, seen in /proc
		}
		// A subscriber may read the tracker.
		_, present := tr.Container(c.Container.ID)
		got = append(got, c.Kind.String()+" "+c.Container.ShortID()+" "+map[bool]string{true: "present", false: "absent"}[present])
	})
	ctx := context.Background()
	if err := tr.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	// The runtime fails: what it reported is kept.
	src.err = errors.New("socket gone")
	if err := tr.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := tr.Container(id1); !ok {
		t.Error("container dropped while its runtime did not answer")
	}
	// The runtime answers again without it: it is removed.
	src.err, src.list = nil, []*Container{{ID: id2, Runtime: "fake"}}
	if err := tr.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	unsubscribe()
	src.list = nil
	if err := tr.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	want := []string{"added 26d9d236f6ba present", "removed 26d9d236f6ba absent", "added cb0439be7e50 present"}
	if len(got) != len(want) {
		t.Fatalf("changes = %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("change %d = %q, want %q", i, got[i], want[i])
		}
	}
	if c, _ := tr.Container(id2); c != nil {
		t.Errorf("container %s still tracked after removal", id2)
	}
}

func TestFleet(t *testing.T) {
	started := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	c := &Container{
		ID: id1, Name: "web", Runtime: "docker", Image: "nginx:1", ImageDigest: "sha256:abc",
		Labels:    map[string]string{LabelPodNamespace: "prod", LabelPodName: "web-0"},
		Started:   started,
		Processes: []Process{{PID: 10, PPID: 1, Exe: "/usr/sbin/nginx", Args: []string{"nginx", "-g", "daemon off;"}, UID: 101}},
	}
	c.setKubernetes()
	f := c.Fleet()
	if f.ID != id1 || f.Name != "web" || f.Runtime != "docker" || f.Image != "nginx:1" || f.ImageDigest != "sha256:abc" ||
		f.Namespace != "prod" || f.Pod != "web-0" || !f.Started.Equal(started) || len(f.Processes) != 1 ||
		f.Processes[0].Path != "/usr/sbin/nginx" || f.Processes[0].UID != 101 || f.Processes[0].Args[2] != "daemon off;" {
		t.Errorf("Fleet() = %+v", f)
	}
	f.Labels["x"] = "y"
	if _, ok := c.Labels["x"]; ok {
		t.Error("Fleet() shares the labels map")
	}
}

func TestPickDigest(t *testing.T) {
	digests := []string{"mirror.example/nginx@sha256:111", "nginx@sha256:222"}
	tests := []struct{ ref, want string }{
		{"nginx:1.27", "sha256:222"},
		{"nginx", "sha256:222"},
		{"other:1", "sha256:111"},
		{"localhost:5000/app", "sha256:111"},
	}
	for _, tt := range tests {
		if got := pickDigest(digests, tt.ref); got != tt.want {
			t.Errorf("pickDigest(%q) = %q, want %q", tt.ref, got, tt.want)
		}
	}
	if got := pickDigest(nil, "x"); got != "" {
		t.Errorf("pickDigest(nil) = %q", got)
	}
}
