package image

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/mamorisec/mamori/internal/testenv"
)

// dockerCLI runs the docker command against sock.
func dockerCLI(t testing.TB, sock string, stdin []byte, args ...string) string {
	t.Helper()
	bin := testenv.NeedCommand(t, "docker")
	cmd := exec.Command(bin, append([]string{"-H", "unix://" + sock}, args...)...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return strings.TrimSpace(string(out))
}

// testTag returns a unique tag for a test image and removes the image when
// the test ends.
func testTag(t testing.TB, sock, what string) string {
	t.Helper()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	tag := "mamori-test/" + what + "-" + hex.EncodeToString(b) + ":v1"
	t.Cleanup(func() {
		bin, _ := exec.LookPath("docker")
		_ = exec.Command(bin, "-H", "unix://"+sock, "rmi", "-f", tag).Run()
	})
	return tag
}

func TestDockerEngine(t *testing.T) {
	sock := testenv.Docker(t)
	host := "unix://" + sock
	dir := t.TempDir()

	// An image with history, loaded from a tarball, and one imported from a
	// plain root filesystem tar. Docker 20.10 cannot load zstd layers, so
	// the loaded image has a gzip and an uncompressed layer.
	layers := []testLayer{standardLayers[0], standardLayers[2]}
	img := makeImage(t, "linux/amd64", layers...)
	loaded := testTag(t, sock, "loaded")
	tag, err := name.NewTag(loaded)
	must(t, err)
	loadTar := filepath.Join(dir, "load.tar")
	must(t, tarball.WriteToFile(loadTar, tag, img))
	dockerCLI(t, sock, nil, "load", "-i", loadTar)

	imported := testTag(t, sock, "imported")
	rootfs := map[string]string{"etc/os-release": "ID=imported\n", "app/main": "binary"}
	importedID := dockerCLI(t, sock, layerTar(t, rootfs), "import", "-", imported)

	tmp := t.TempDir()
	opts := Options{DockerHost: host, TempDir: tmp}
	for _, ref := range []string{"docker:" + loaded, loaded} {
		t.Run(ref, func(t *testing.T) {
			got, err := Open(context.Background(), ref, opts)
			if err != nil {
				t.Fatal(err)
			}
			if got.Source != SourceDocker || got.Name != loaded || !slices.Contains(got.RepoTags, loaded) {
				t.Errorf("Source, Name, RepoTags = %q, %q, %v", got.Source, got.Name, got.RepoTags)
			}
			checkImage(t, got, img, layers)
			must(t, got.Close())
			if left, _ := os.ReadDir(tmp); len(left) != 0 {
				t.Errorf("temp dir not cleaned up: %v", left)
			}
		})
	}

	got, err := Open(context.Background(), "docker:"+imported, opts)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != importedID || len(got.Layers) != 1 {
		t.Errorf("ID = %s (want %s), %d layers", got.ID, importedID, len(got.Layers))
	} else if files, _ := readLayer(t, got.Layers[0]); files["etc/os-release"] != rootfs["etc/os-release"] || files["app/main"] != "binary" {
		t.Errorf("imported layer files = %v", files)
	}
	must(t, got.Close())

	// A real docker save archive with two images.
	saved := filepath.Join(dir, "saved.tar")
	dockerCLI(t, sock, nil, "save", "-o", saved, loaded, imported)
	_, err = Open(context.Background(), "docker-archive:"+saved, Options{})
	if err == nil || !strings.Contains(err.Error(), loaded) || !strings.Contains(err.Error(), imported) {
		t.Errorf("ambiguous docker save: err = %v", err)
	}
	got, err = Open(context.Background(), "docker-archive:"+saved+":"+loaded, Options{})
	if err != nil {
		t.Fatal(err)
	}
	checkImage(t, got, img, layers)
	must(t, got.Close())

	missing := testTag(t, sock, "missing")
	for _, tt := range []struct {
		ref  string
		opts Options
		err  string
	}{
		{"docker:" + missing, opts, "image not found in the Docker Engine at " + host},
		{"docker:" + loaded, Options{DockerHost: "unix://" + filepath.Join(dir, "none.sock")}, "cannot reach the Docker Engine"},
		{"docker:" + loaded, Options{DockerHost: "ssh://host"}, "unsupported Docker host"},
		// Not in the engine, so the registry is tried and fails too.
		{"127.0.0.1:1/" + missing, opts, "image not found in the Docker Engine at " + host + "; registry: registry 127.0.0.1:1"},
	} {
		_, err := Open(context.Background(), tt.ref, tt.opts)
		if err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("Open(%s): err = %v, want %q", tt.ref, err, tt.err)
		}
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("temp dir not cleaned up: %v", left)
	}
}
