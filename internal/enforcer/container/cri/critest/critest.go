// Package critest starts a private containerd with its CRI plugin for
// tests, and runs pods in it. The instance has its own root, state and
// socket under the test's temp dir, so the system containerd (the one
// dockerd uses) is never touched; pods get a network namespace with only a
// loopback interface and a veth pair whose both ends stay inside it, never
// a real network.
package critest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/mamorisec/mamori/internal/testenv"
)

// CNIDir is where Debian's containernetworking-plugins installs the CNI
// plugins (the loopback plugin is the only one used).
const CNIDir = "/usr/lib/cni"

// podPlugin is a CNI plugin that gives a pod the eth0 interface containerd
// insists on without touching the host's network: a veth pair whose both
// ends stay inside the pod's own network namespace, addressed from
// TEST-NET-1 (192.0.2.0/24).
const podPlugin = `#!/bin/sh
case "$CNI_COMMAND" in
VERSION)
	echo '{"cniVersion":"0.4.0","supportedVersions":["0.3.0","0.3.1","0.4.0"]}'
	;;
ADD)
	cat >/dev/null
	nsenter --net="$CNI_NETNS" ip link add "$CNI_IFNAME" type veth peer name mamori-peer >&2 || exit 1
	nsenter --net="$CNI_NETNS" ip addr add 192.0.2.10/24 dev "$CNI_IFNAME" >&2 || exit 1
	nsenter --net="$CNI_NETNS" ip link set "$CNI_IFNAME" up >&2 || exit 1
	printf '{"cniVersion":"0.4.0","interfaces":[{"name":"%s","sandbox":"%s"}],"ips":[{"version":"4","address":"192.0.2.10/24","interface":0}]}\n' "$CNI_IFNAME" "$CNI_NETNS"
	;;
*)
	cat >/dev/null
	;;
esac
`

// Containerd is a private containerd the test started.
type Containerd struct {
	// Socket is its gRPC socket, where the CRI plugin answers.
	Socket string
	dir    string
	// Network reports whether pods can be run (the CNI loopback plugin
	// is installed).
	Network bool
}

// Start starts a private containerd with the CRI plugin and stops it (and
// removes its state) when the test ends. Pods need the CNI loopback
// plugin; without it Network is false and only the empty runtime can be
// asked.
func Start(t *testing.T) *Containerd {
	t.Helper()
	bin := testenv.NeedCommand(t, "containerd")
	testenv.NeedCommand(t, "runc")
	if os.Geteuid() != 0 {
		testenv.Missing(t, "a private containerd needs root")
	}
	// Unix socket paths are limited to 108 bytes: keep the dir short.
	dir, err := os.MkdirTemp("", "mamori-cri-")
	if err != nil {
		t.Fatal(err)
	}
	c := &Containerd{Socket: filepath.Join(dir, "containerd.sock"), dir: dir}
	confDir, binDir := filepath.Join(dir, "cni"), filepath.Join(dir, "cnibin")
	for _, d := range []string{confDir, binDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	_, errLo := os.Stat(filepath.Join(CNIDir, "loopback"))
	_, errNS := exec.LookPath("nsenter")
	_, errIP := exec.LookPath("ip")
	if errLo == nil && errNS == nil && errIP == nil {
		c.Network = true
		conf := `{"cniVersion":"0.4.0","name":"mamori-pod","plugins":[{"type":"mamori-pod"}]}`
		if err := os.WriteFile(filepath.Join(confDir, "10-pod.conflist"), []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(binDir, "mamori-pod"), []byte(podPlugin), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(filepath.Join(CNIDir, "loopback"), filepath.Join(binDir, "loopback")); err != nil {
			t.Fatal(err)
		}
	}
	config := fmt.Sprintf(`version = 2
root = %[1]q
state = %[2]q
[grpc]
  address = %[3]q
[ttrpc]
  address = %[4]q
[plugins."io.containerd.grpc.v1.cri"]
  disable_tcp_service = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  sandbox_image = %[5]q
  netns_mounts_under_state_dir = true
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = %[6]q
    conf_dir = %[7]q
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
      Root = %[8]q
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), c.Socket, c.Socket+".ttrpc", PauseImage, binDir, confDir, filepath.Join(dir, "runc"))
	cfgFile := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfgFile, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "containerd.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config", cfgFile)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting containerd: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		logf.Close()
		unmountUnder(dir)
		if !t.Failed() {
			os.RemoveAll(dir)
		} else {
			t.Logf("private containerd state kept in %s", dir)
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := os.Stat(c.Socket); err == nil {
			break
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "containerd.log"))
			t.Fatalf("private containerd did not start:\n%s", tail(log))
		}
		time.Sleep(50 * time.Millisecond)
	}
	return c
}

// unmountUnder lazily unmounts whatever is still mounted below dir (a
// rootfs or netns left behind by a failed test).
func unmountUnder(dir string) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return
	}
	var points []string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
			points = append(points, f[4])
		}
	}
	for i := len(points) - 1; i >= 0; i-- {
		_ = unix.Unmount(points[i], unix.MNT_DETACH)
	}
}

func tail(b []byte) string {
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// PauseImage is the image the private containerd runs pod sandboxes from:
// busybox sleeping forever (no registry is reachable for the real pause
// image).
const PauseImage = "docker.io/mamori-test/pause:latest"

// ImportImages makes PauseImage and the busybox test image (as
// docker.io/mamori-test/busybox:latest) from the Docker Engine's busybox
// image and imports them into the private containerd's k8s.io namespace.
func (c *Containerd) ImportImages(t *testing.T) {
	t.Helper()
	ctr := testenv.NeedCommand(t, "ctr")
	img := testenv.BusyboxImage(t)
	id := testenv.DockerCLI(t, nil, "create", "--network", "none", img)
	defer testenv.DockerCLIErr(t, nil, "rm", "-f", id)
	exported := filepath.Join(c.dir, "busybox-fs.tar")
	testenv.DockerCLI(t, nil, "export", "-o", exported, id)
	tarData, err := os.ReadFile(exported)
	if err != nil {
		t.Fatal(err)
	}
	testenv.DockerCLI(t, tarData, "import", "-c", `CMD ["/bin/sleep","2147483"]`, "-", PauseImage)
	archive := filepath.Join(c.dir, "images.tar")
	testenv.DockerCLI(t, nil, "save", "-o", archive, PauseImage, img)
	out, err := exec.Command(ctr, "--address", c.Socket, "--namespace", "k8s.io", "images", "import", archive).CombinedOutput()
	if err != nil {
		t.Fatalf("ctr images import: %v\n%s", err, out)
	}
	os.Remove(archive)
	os.Remove(exported)
}

// Pod is a pod sandbox with one container, run through the CRI.
type Pod struct {
	SandboxID   string
	ContainerID string
	UID         string
	remove      func()
}

// Remove stops and removes the pod (RunPod also does when the test ends).
func (p *Pod) Remove() { p.remove() }

// RunPod runs a pod (cgroup parent /kubepods/besteffort/pod<uid>) with one
// container of image running cmd, labelled as the kubelet labels it, and
// removes it when the test ends.
func (c *Containerd) RunPod(t *testing.T, namespace, name, uid, image string, cmd ...string) *Pod {
	t.Helper()
	if !c.Network {
		testenv.Missing(t, "CNI loopback plugin (%s/loopback, package containernetworking-plugins), nsenter and ip", CNIDir)
	}
	conn, err := grpc.NewClient("unix://"+c.Socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	rt := runtimeapi.NewRuntimeServiceClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	podLabels := map[string]string{
		"io.kubernetes.pod.namespace": namespace,
		"io.kubernetes.pod.name":      name,
		"io.kubernetes.pod.uid":       uid,
	}
	sbConfig := &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: name, Namespace: namespace, Uid: uid},
		Labels:       podLabels,
		LogDirectory: filepath.Join(c.dir, "logs", uid),
		Linux:        &runtimeapi.LinuxPodSandboxConfig{CgroupParent: "/kubepods/besteffort/pod" + uid},
	}
	sb, err := rt.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: sbConfig})
	if err != nil {
		log, _ := os.ReadFile(filepath.Join(c.dir, "containerd.log"))
		t.Fatalf("RunPodSandbox: %v\n%s", err, tail(log))
	}
	pod := &Pod{SandboxID: sb.GetPodSandboxId(), UID: uid}
	pod.remove = func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_, _ = rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: pod.SandboxID})
		_, _ = rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: pod.SandboxID})
	}
	t.Cleanup(pod.remove)
	labels := map[string]string{"io.kubernetes.container.name": "main"}
	for k, v := range podLabels {
		labels[k] = v
	}
	cc, err := rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{
		PodSandboxId:  pod.SandboxID,
		SandboxConfig: sbConfig,
		Config: &runtimeapi.ContainerConfig{
			Metadata: &runtimeapi.ContainerMetadata{Name: "main"},
			Image:    &runtimeapi.ImageSpec{Image: image},
			Command:  cmd,
			Labels:   labels,
			LogPath:  "main.log",
		},
	})
	if err != nil {
		t.Fatalf("CreateContainer: %v", err)
	}
	pod.ContainerID = cc.GetContainerId()
	if _, err := rt.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: pod.ContainerID}); err != nil {
		var log bytes.Buffer
		b, _ := os.ReadFile(filepath.Join(c.dir, "containerd.log"))
		log.Write(b)
		t.Fatalf("StartContainer: %v\n%s", err, tail(log.Bytes()))
	}
	return pod
}
