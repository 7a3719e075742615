package cri

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mamorisec/mamori/internal/enforcer/container/cri/critest"
	"github.com/mamorisec/mamori/internal/testenv"
)

func TestPrivateContainerd(t *testing.T) {
	ctrd := critest.Start(t)
	c, err := New(ctrd.Socket)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	v, err := c.Version(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if v.GetRuntimeName() != "containerd" || v.GetRuntimeApiVersion() != "v1" {
		t.Errorf("Version = %+v", v)
	}
	l, err := c.ListRunning(ctx)
	if err != nil || len(l) != 0 {
		t.Errorf("ListRunning on an empty runtime = %v, %v", l, err)
	}
	pods, err := c.ListPods(ctx)
	if err != nil || len(pods) != 0 {
		t.Errorf("ListPods on an empty runtime = %v, %v", pods, err)
	}
	if _, err := c.Status(ctx, "0000000000000000000000000000000000000000000000000000000000000000"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Status of a missing container: %v, want ErrNotFound", err)
	}

	if !ctrd.Network {
		testenv.Missing(t, "no CNI loopback plugin (containernetworking-plugins): pods cannot be run")
	}
	ctrd.ImportImages(t)
	pod := ctrd.RunPod(t, "prod", "web-0", "0d7a2a4e-5b1f-4a4c-9c1e-2f3b4c5d6e7f", "docker.io/mamori-test/busybox:latest", "sleep", "300")
	l, err = c.ListRunning(ctx)
	if err != nil || len(l) != 1 || l[0].GetId() != pod.ContainerID {
		t.Fatalf("ListRunning = %v, %v; want %s", l, err, pod.ContainerID)
	}
	st, err := c.Status(ctx, pod.ContainerID)
	if err != nil {
		t.Fatal(err)
	}
	if st.Info.Pid <= 0 || st.Info.SandboxID != pod.SandboxID || st.GetLabels()["io.kubernetes.pod.name"] != "web-0" || !strings.Contains(st.Info.RuntimeSpec.Linux.CgroupsPath, pod.UID) {
		t.Errorf("Status = %+v, info %+v", st.ContainerStatus, st.Info)
	}
}

func TestUnreachable(t *testing.T) {
	c, err := New(t.TempDir() + "/none.sock")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_, err = c.Version(ctx)
	if err == nil || !strings.Contains(err.Error(), "none.sock") {
		t.Errorf("Version of a missing socket: %v", err)
	}
}

func TestDecodeInfo(t *testing.T) {
	tests := []struct {
		in, err string
		pid     int
	}{
		{`{"sandboxID":"abc","pid":4242,"snapshotter":"overlayfs","runtimeSpec":{"linux":{"cgroupsPath":"/kubepods/besteffort/podx/abc"}}}`, "", 4242},
		{`{}`, "", 0},
		{`{"pid":-1}`, "negative pid", 0},
		{`{"pid":"x"}`, "bad verbose container info JSON", 0},
		{`[`, "bad verbose container info JSON", 0},
		{`"` + strings.Repeat("a", MaxInfo) + `"`, "larger than", 0},
	}
	for _, tt := range tests {
		in, err := DecodeInfo([]byte(tt.in))
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("DecodeInfo(%.40s) error = %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || in.Pid != tt.pid {
			t.Errorf("DecodeInfo(%.40s) = %+v, %v", tt.in, in, err)
		}
	}
}

func FuzzDecodeInfo(f *testing.F) {
	f.Add([]byte(`{"sandboxID":"abc","pid":4242,"snapshotter":"overlayfs","runtimeSpec":{"linux":{"cgroupsPath":"/kubepods/besteffort/podx/abc"}}}`))
	f.Add([]byte(`{"pid":-1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if in, err := DecodeInfo(b); err == nil && in.Pid < 0 {
			t.Fatalf("negative pid accepted")
		}
	})
}
