package testenv

import (
	"archive/tar"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
)

// BusyboxPath is where Debian's busybox-static package installs its binary.
const BusyboxPath = "/bin/busybox"

// busyboxApplets are linked into the test image's /bin, so that containers
// have a shell and the usual tools without a registry.
var busyboxApplets = []string{
	"sh", "ls", "cat", "echo", "sleep", "true", "false", "cp", "chmod", "ps",
	"id", "env", "touch", "mkdir", "rm", "head", "wc", "grep", "nc", "seq",
}

var busyboxOnce struct {
	sync.Mutex
	ref string
}

// DockerCLI runs the docker client against the Engine that Docker(t)
// found, with stdin as standard input, and returns its trimmed standard
// output; it fails the test when the command fails.
func DockerCLI(t testing.TB, stdin []byte, args ...string) string {
	t.Helper()
	out, err := DockerCLIErr(t, stdin, args...)
	if err != nil {
		t.Fatalf("docker %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// DockerCLIErr is DockerCLI that returns the error (with the client's
// standard error in it) instead of failing the test.
func DockerCLIErr(t testing.TB, stdin []byte, args ...string) (string, error) {
	t.Helper()
	sock := Docker(t)
	bin := NeedCommand(t, "docker")
	cmd := exec.Command(bin, append([]string{"-H", "unix://" + sock}, args...)...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return strings.TrimSpace(stdout.String()), fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(stdout.String()), nil
}

// BusyboxImage returns the reference of a small test image holding Debian's
// static busybox (package busybox-static) and its applets in /bin, imported
// into the Docker Engine with `docker import` (no registry involved). The
// image is made once per test binary and left in the engine for reuse.
func BusyboxImage(t testing.TB) string {
	t.Helper()
	busyboxOnce.Lock()
	defer busyboxOnce.Unlock()
	if busyboxOnce.ref != "" {
		return busyboxOnce.ref
	}
	bin, err := os.ReadFile(BusyboxPath)
	if err != nil {
		Missing(t, "busybox-static (%s): %v", BusyboxPath, err)
		return ""
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, d := range []string{"bin/", "tmp/", "etc/", "proc/", "sys/", "dev/", "app/"} {
		mode := int64(0o755)
		if d == "tmp/" {
			mode = 0o1777
		}
		hdr := &tar.Header{Name: d, Typeflag: tar.TypeDir, Mode: mode}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.WriteHeader(&tar.Header{Name: "bin/busybox", Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(bin))}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write(bin); err != nil {
		t.Fatal(err)
	}
	for _, a := range busyboxApplets {
		if err := tw.WriteHeader(&tar.Header{Name: "bin/" + a, Typeflag: tar.TypeSymlink, Linkname: "busybox", Mode: 0o777}); err != nil {
			t.Fatal(err)
		}
	}
	passwd := []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n")
	if err := tw.WriteHeader(&tar.Header{Name: "etc/passwd", Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(passwd))}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write(passwd); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	ref := "mamori-test/busybox:latest"
	DockerCLI(t, buf.Bytes(), "import", "-c", "CMD [\"/bin/sh\"]", "-", ref)
	busyboxOnce.ref = ref
	return ref
}

// RunContainer starts a detached container of image with no network
// (`--network none`), the extra docker run flags in flags (labels, limits),
// and the command in cmd; it returns the full container id and removes the
// container (forcibly) when the test ends.
func RunContainer(t testing.TB, image string, flags []string, cmd ...string) string {
	t.Helper()
	var suffix [4]byte
	_, _ = rand.Read(suffix[:])
	name := "mamori-test-" + hex.EncodeToString(suffix[:])
	args := []string{"run", "-d", "--network", "none", "--name", name}
	args = append(args, flags...)
	args = append(args, image)
	args = append(args, cmd...)
	id := DockerCLI(t, nil, args...)
	t.Cleanup(func() { _, _ = DockerCLIErr(t, nil, "rm", "-f", id) })
	return id
}
