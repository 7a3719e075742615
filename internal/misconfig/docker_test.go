package misconfig

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/mamorisec/mamori/internal/image"
	"github.com/mamorisec/mamori/internal/inventory"
	"github.com/mamorisec/mamori/internal/inventory/all"
	"github.com/mamorisec/mamori/internal/scanner"
	"github.com/mamorisec/mamori/internal/testenv"
)

// TestDockerImage builds testdata/docker/Dockerfile with the real Docker
// Engine on a Debian 12 root filesystem made by debootstrap, saves it with
// docker save, and checks the image with the walk, the Files extractor and
// CheckImage.
func TestDockerImage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds an image with Docker")
	}
	testenv.Docker(t)
	docker := testenv.NeedCommand(t, "docker")
	tarBin := testenv.NeedCommand(t, "tar")
	rootfs := testenv.Debootstrap(t)

	b := make([]byte, 6)
	rand.Read(b)
	base := "mamori-misconfig-base:" + hex.EncodeToString(b)
	tag := "mamori-misconfig-test:" + hex.EncodeToString(b)
	run := func(cmd *exec.Cmd) {
		t.Helper()
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, out)
		}
	}
	t.Cleanup(func() {
		// Both tags were created by this test; remove them and their layers.
		exec.Command(docker, "rmi", "-f", tag, base).Run()
	})

	tarCmd := exec.Command(tarBin, "-C", rootfs, "--exclude=./.complete", "-c", ".")
	importCmd := exec.Command(docker, "import", "-", base)
	pipe, err := tarCmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	importCmd.Stdin = pipe
	if err := tarCmd.Start(); err != nil {
		t.Fatal(err)
	}
	run(importCmd)
	if err := tarCmd.Wait(); err != nil {
		t.Fatalf("tar of %s: %v", rootfs, err)
	}
	run(exec.Command(docker, "build", "--network", "none", "--build-arg", "BASE="+base, "-t", tag, filepath.Join("testdata", "docker")))
	archive := filepath.Join(t.TempDir(), "image.tar")
	run(exec.Command(docker, "save", "-o", archive, tag))

	v1img, err := tarball.ImageFromPath(archive, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := v1img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	img, err := image.Open(t.Context(), "docker-archive:"+archive, image.Options{TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	rep, err := scanner.InventoryImage(t.Context(), img, scanner.Options{NoCache: true, TempDir: t.TempDir(), Extractors: append(all.Extractors(), Files{})})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Packages) < 50 {
		t.Fatalf("inventory found %d packages in the Debian image", len(rep.Packages))
	}
	got := CheckImage(cfg, rep)
	checkFindings(t, got)
	raw, _ := json.Marshal(got)
	for _, secret := range []string{"hunter2-docker", "tok_live_docker"} {
		if strings.Contains(string(raw), secret) {
			t.Errorf("findings hold the secret %q", secret)
		}
	}

	// The first history entry of each instruction, and the layer it
	// produced (or the layer below for one that changed nothing).
	runEntry, runLayer := map[string]string{}, map[string]int{}
	n := 0
	for i, h := range cfg.History {
		for _, key := range []string{"chmod 4755", "ARG API_TOKEN", "apt-get update", "curl"} {
			if _, ok := runEntry[key]; !ok && strings.Contains(h.CreatedBy, key) {
				runEntry[key], runLayer[key] = strconv.Itoa(i), max(n-1, 0)
				if !h.EmptyLayer {
					runLayer[key] = n
				}
			}
		}
		if !h.EmptyLayer {
			n++
		}
	}
	find := func(rule, path string) *inventory.Finding {
		for i := range got {
			if got[i].RuleID == rule && (path == "" || got[i].Path == path) {
				return &got[i]
			}
		}
		t.Errorf("no %s finding for %q in %v", rule, path, rules(got))
		return nil
	}
	if f := find(RootUser, ""); f != nil && f.Source != inventory.SourceConfig {
		t.Errorf("root user from %s", f.Source)
	}
	find(NoHealthcheck, "")
	if f := find(AdminPort, ""); f != nil && f.Metadata["port"] != "22/tcp" {
		t.Errorf("admin port = %+v", f)
	}
	if f := find(SecretEnv, "DB_PASSWORD"); f != nil && f.Source != inventory.SourceEnv {
		t.Errorf("DB_PASSWORD from %s", f.Source)
	}
	if f := find(SecretEnv, "API_TOKEN"); f != nil && (f.Source != inventory.SourceHistory || f.Metadata["historyIndex"] != runEntry["ARG API_TOKEN"]) {
		t.Errorf("API_TOKEN = %+v, want history entry %s", f, runEntry["ARG API_TOKEN"])
	}
	if f := find(SetuidAdded, "/usr/local/bin/helper"); f != nil && (f.Layer.Index != runLayer["chmod 4755"] || f.Layer.Index == 0) {
		t.Errorf("helper in layer %d, want %d", f.Layer.Index, runLayer["chmod 4755"])
	}
	if f := find(SetuidBase, ""); f != nil {
		if files, _ := strconv.Atoi(f.Metadata["files"]); files < 5 || !strings.Contains(f.Metadata["paths"], "/usr/bin/su") {
			t.Errorf("base setuid summary = %+v", f.Metadata)
		}
	}
	if f := find(WorldWritable, "/opt/shared.conf"); f != nil && f.Metadata["mode"] != "0666" {
		t.Errorf("world-writable mode %s", f.Metadata["mode"])
	}
	if f := find(PackageCache, "/root/.cache/pip"); f != nil && f.Metadata["files"] != "1" {
		t.Errorf("pip cache = %+v", f.Metadata)
	}
	// debootstrap leaves the downloaded .deb files in the base layer.
	if f := find(PackageCache, "/var/cache/apt"); f != nil && !strings.HasPrefix(f.Metadata["layers"], "0,") {
		t.Errorf("apt cache in layers %s, want the base layer among them", f.Metadata["layers"])
	}
	for rule, key := range map[string]string{PipeToShell: "curl", UpdateAlone: "apt-get update"} {
		if f := find(rule, ""); f != nil && (f.Layer.Index != runLayer[key] || f.Metadata["historyIndex"] != runEntry[key]) {
			t.Errorf("%s at history entry %s layer %d, want %s layer %d", rule, f.Metadata["historyIndex"], f.Layer.Index, runEntry[key], runLayer[key])
		}
	}
	if slices.ContainsFunc(got, func(f inventory.Finding) bool { return f.RuleID == SudoInstalled }) {
		t.Error("sudo reported, but minbase does not install it")
	}
	t.Logf("%d findings: %v", len(got), rules(got))
}
