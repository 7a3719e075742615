package docker

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeInspect(t *testing.T) {
	in, err := DecodeInspect(readTestdata(t, "inspect.json"))
	if err != nil {
		t.Fatal(err)
	}
	if in.ID != "e9c0340a75c3890b2e6f8886a8c8f4d024c8f35ccca6cfb0f678017e501aeee4" || in.Name != "/mamori-fixture" {
		t.Errorf("id/name = %s %s", in.ID, in.Name)
	}
	if in.Config.Image != "mamori-test/busybox:latest" || !strings.HasPrefix(in.Image, "sha256:") {
		t.Errorf("image = %q %q", in.Config.Image, in.Image)
	}
	if in.Config.Labels["app"] != "web" || !in.State.Running || in.State.Pid <= 0 || in.State.StartedAt.IsZero() {
		t.Errorf("labels/state = %v %+v", in.Config.Labels, in.State)
	}
	if in.GraphDriver.Name != "overlay2" || !strings.HasSuffix(in.GraphDriver.Data["UpperDir"], "/diff") || len(in.LowerDirs()) != 2 {
		t.Errorf("graph driver = %+v, lowers %q", in.GraphDriver, in.LowerDirs())
	}
}

func TestDecodeList(t *testing.T) {
	l, err := DecodeList(readTestdata(t, "list.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(l) != 1 || l[0].Names[0] != "/mamori-fixture" || l[0].Labels["app"] != "web" || l[0].State != "running" {
		t.Errorf("list = %+v", l)
	}
}

func TestDecodeExec(t *testing.T) {
	ex, err := DecodeExec(readTestdata(t, "exec.json"))
	if err != nil {
		t.Fatal(err)
	}
	if ex.Pid <= 0 || ex.ProcessConfig.Entrypoint != "sleep" || len(ex.ProcessConfig.Arguments) != 1 {
		t.Errorf("exec = %+v", ex)
	}
}

func TestDecodeEvents(t *testing.T) {
	var got []string
	for _, line := range bytes.Split(bytes.TrimSpace(readTestdata(t, "events.jsonl")), []byte("\n")) {
		ev, err := DecodeEvent(line)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ev.Action+"|"+ev.Command+"|"+ev.ExecID()[:min(12, len(ev.ExecID()))])
		if ev.Type != "container" || len(ev.Actor.ID) != 64 || ev.Time().Year() < 2020 {
			t.Errorf("event = %+v", ev)
		}
	}
	want := []string{
		"exec_create|sh -c echo hi|69385b33433a",
		"exec_start|sh -c echo hi|69385b33433a",
		"exec_die||69385b33433a",
		"exec_create|sleep 5|47393647f3db",
		"exec_start|sleep 5|47393647f3db",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name string
		fn   func([]byte) error
		in   string
		want string
	}{
		{"list not JSON", func(b []byte) error { _, err := DecodeList(b); return err }, "<html>", "bad container list JSON"},
		{"list bad id", func(b []byte) error { _, err := DecodeList(b); return err }, `[{"Id":"../../x"}]`, "invalid id"},
		{"inspect not object", func(b []byte) error { _, err := DecodeInspect(b); return err }, `[]`, "bad container inspect JSON"},
		{"inspect no id", func(b []byte) error { _, err := DecodeInspect(b); return err }, `{}`, "invalid id"},
		{"inspect negative pid", func(b []byte) error { _, err := DecodeInspect(b); return err }, `{"Id":"abc","State":{"Pid":-1}}`, "negative pid"},
		{"inspect bad time", func(b []byte) error { _, err := DecodeInspect(b); return err }, `{"Id":"abc","State":{"StartedAt":"yesterday"}}`, "bad container inspect JSON"},
		{"exec negative pid", func(b []byte) error { _, err := DecodeExec(b); return err }, `{"Pid":-2}`, "negative pid"},
		{"event no action", func(b []byte) error { _, err := DecodeEvent(b); return err }, `{"Type":"container"}`, "no Action"},
		{"event bad actor", func(b []byte) error { _, err := DecodeEvent(b); return err }, `{"Type":"container","Action":"start","Actor":{"ID":"a/b"}}`, "invalid container id"},
		{"event truncated", func(b []byte) error { _, err := DecodeEvent(b); return err }, `{"Type":"cont`, "bad event JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.fn([]byte(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want %q", err, tt.want)
			}
		})
	}
}

func FuzzDecode(f *testing.F) {
	for _, name := range []string{"inspect.json", "list.json", "exec.json"} {
		f.Add(readTestdata(f, name))
	}
	for _, line := range bytes.Split(readTestdata(f, "events.jsonl"), []byte("\n")) {
		f.Add(line)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if l, err := DecodeList(b); err == nil {
			for _, s := range l {
				if !validID(s.ID) {
					t.Fatalf("invalid id accepted: %q", s.ID)
				}
			}
		}
		if in, err := DecodeInspect(b); err == nil && (in.State.Pid < 0 || !validID(in.ID)) {
			t.Fatalf("bad inspect accepted: %+v", in)
		}
		if ex, err := DecodeExec(b); err == nil && ex.Pid < 0 {
			t.Fatalf("negative exec pid accepted")
		}
		if ev, err := DecodeEvent(b); err == nil && ev.Action == "" {
			t.Fatalf("event without action accepted")
		}
	})
}
