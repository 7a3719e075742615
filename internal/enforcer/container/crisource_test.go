package container

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/mamorisec/mamori/internal/enforcer/container/cri"
	"github.com/mamorisec/mamori/internal/enforcer/container/cri/critest"
	"github.com/mamorisec/mamori/internal/testenv"
)

func TestTrackerCRI(t *testing.T) {
	ctrd := critest.Start(t)
	if !ctrd.Network {
		testenv.Missing(t, "pods cannot be run without the CNI loopback plugin (containernetworking-plugins)")
	}
	ctrd.ImportImages(t)
	const uid = "0d7a2a4e-5b1f-4a4c-9c1e-2f3b4c5d6e7f"
	const image = "docker.io/mamori-test/busybox:latest"
	pod := ctrd.RunPod(t, "prod", "web-0", uid, image, "sleep", "305")

	client, err := cri.New(ctrd.Socket)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	src := NewCRISource(client, "containerd")
	src.Poll = 100 * time.Millisecond
	tr := NewTracker(func(err error) { t.Log(err) }, src)
	ch := changes(t, tr)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := tr.Start(ctx); err != nil {
		t.Fatal(err)
	}

	c, ok := tr.Container(pod.ContainerID)
	if !ok {
		t.Fatalf("CRI container %s is not tracked", pod.ContainerID)
	}
	if c.Runtime != "containerd" || c.Name != "main" || c.Image != image || c.Namespace != "prod" || c.Pod != "web-0" || c.PodUID != uid || c.PID <= 0 || c.FromProc {
		t.Errorf("container = %+v", c)
	}
	want := inode(t, "/sys/fs/cgroup/pids/kubepods/besteffort/pod"+uid+"/"+pod.ContainerID)
	if want == 0 || !slices.Contains(c.CgroupIDs, want) {
		t.Errorf("CgroupIDs = %v, want the pids cgroup dir inode %d", c.CgroupIDs, want)
	}
	if got, err := FromImage(c, "/bin/busybox"); err != nil || !got {
		t.Errorf("FromImage(/bin/busybox) = %v, %v", got, err)
	}
	if got, err := ExecSession(c.PID); err != nil || got {
		t.Errorf("ExecSession(init) = %v, %v", got, err)
	}
	// The pod's sandbox (pause) container is seen through /proc: its
	// kubepods cgroupfs path names the pod but not the runtime.
	sb, ok := tr.Container(pod.SandboxID)
	if !ok || !sb.FromProc || sb.Runtime != "cri" || sb.PodUID != uid {
		t.Errorf("sandbox container = %+v, %v", sb, ok)
	}

	second := ctrd.RunPod(t, "prod", "web-1", "11111111-2222-3333-4444-555555555555", image, "sleep", "306")
	added := waitChange(t, ch, Added, second.ContainerID)
	if added.Container.Pod != "web-1" || added.Container.PID <= 0 {
		t.Errorf("added = %+v", added.Container)
	}
	second.Remove()
	waitChange(t, ch, Removed, second.ContainerID)
}
