// Package demo builds mamori's built-in demo image: a small OCI image layout
// whose contents were written for mamori (nothing is copied from a real
// distribution). It exercises the inventory end to end without a registry or
// Docker Engine: OS packages with source packages and licenses, a language
// package owned by an OS package, npm and Python packages, a whiteout that
// deletes a package in a later layer, a real Go binary (the running mamori
// executable itself), and fake secrets, a crypto-miner configuration, a
// package the demo feed lists as malicious and a root user with an SSH port
// for the content analyzers.
package demo

import (
	"archive/tar"
	"bytes"
	"embed"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

//go:embed all:rootfs
var rootfs embed.FS

// epoch is the fixed timestamp of every file and history entry, so the demo
// image has the same digests on every build (apart from the binary layer).
var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// Tag is the tag of the demo image inside the layout.
const Tag = "mamori-demo:1"

type layerSpec struct {
	createdBy string
	build     func(tw *tar.Writer) error
}

// Write creates the demo image as an OCI image layout in dir (which must be
// empty or absent). binary is a Go executable to include as
// /usr/local/bin/mamori; empty skips that layer.
func Write(dir, binary string) error {
	specs := []layerSpec{
		{"ADD base / # demo OS packages", func(tw *tar.Writer) error {
			if err := addTree(tw, "rootfs/base"); err != nil {
				return err
			}
			return tw.WriteHeader(&tar.Header{Name: "etc/os-release", Typeflag: tar.TypeSymlink, Linkname: "../usr/lib/os-release", Mode: 0o777, ModTime: epoch})
		}},
		{"COPY app / # node_modules and Python site-packages", func(tw *tar.Writer) error {
			if err := addTree(tw, "rootfs/app"); err != nil {
				return err
			}
			return addBytes(tw, "opt/tools/config.json", []byte(strings.ReplaceAll(minerConfig, "·", "")))
		}},
		{"RUN rm -rf /srv/app/node_modules/minimist", func(tw *tar.Writer) error {
			return tw.WriteHeader(&tar.Header{Name: "srv/app/node_modules/.wh.minimist", Typeflag: tar.TypeReg, Mode: 0o644, ModTime: epoch})
		}},
	}
	if binary != "" {
		specs = append(specs, layerSpec{"COPY mamori /usr/local/bin/mamori", func(tw *tar.Writer) error {
			return addFile(tw, binary, "usr/local/bin/mamori")
		}})
	}
	img := empty.Image
	for _, s := range specs {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		if err := s.build(tw); err != nil {
			return fmt.Errorf("demo layer %q: %w", s.createdBy, err)
		}
		if err := tw.Close(); err != nil {
			return err
		}
		data := buf.Bytes()
		l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(data)), nil
		})
		if err != nil {
			return err
		}
		img, err = mutate.Append(img, mutate.Addendum{Layer: l, History: v1.History{CreatedBy: s.createdBy, Created: v1.Time{Time: epoch}}})
		if err != nil {
			return err
		}
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return err
	}
	cfg = cfg.DeepCopy()
	cfg.Architecture, cfg.OS = "amd64", "linux"
	cfg.Created = v1.Time{Time: epoch}
	cfg.Config.Cmd = []string{"/usr/local/bin/mamori", "version"}
	// No USER, an SSH port and a password in ENV: misconfigurations and a
	// secret in the image configuration for the demo scan to find.
	cfg.Config.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin", "REPORTS_DB=mysql://reports:Vb4nK8sQ2mXz7Lp0@reports-db:3306/reports"}
	cfg.Config.ExposedPorts = map[string]struct{}{"8080/tcp": {}, "22/tcp": {}}
	img, err = mutate.ConfigFile(img, cfg)
	if err != nil {
		return err
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return fmt.Errorf("writing demo layout %s: %w", dir, err)
	}
	return p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": Tag}))
}

// minerConfig is a crypto-miner configuration for the malware engine to
// find. Its keywords carry a "·" that Write removes, so that the mamori
// executable, which holds this text, does not look like a miner itself.
const minerConfig = `{
    "autosave": true,
    "donate·-level": 1,
    "cpu": {"enabled": true, "max-threads-hint": 100},
    "pools": [
        {
            "url": "stratum·+tcp://pool.demo-mining.invalid:3333",
            "user": "demo-wallet",
            "pass": "x",
            "keepalive": true
        }
    ]
}
`

// addBytes writes one regular file.
func addBytes(tw *tar.Writer, name string, b []byte) error {
	if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(b)), ModTime: epoch}); err != nil {
		return err
	}
	_, err := tw.Write(b)
	return err
}

func addTree(tw *tar.Writer, root string) error {
	var paths []string
	err := fs.WalkDir(rootfs, root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != root {
			paths = append(paths, p)
		}
		return nil
	})
	if err != nil {
		return err
	}
	sort.Strings(paths)
	for _, p := range paths {
		name := p[len(root)+1:]
		info, err := fs.Stat(rootfs, p)
		if err != nil {
			return err
		}
		if info.IsDir() {
			if err := tw.WriteHeader(&tar.Header{Name: name + "/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: epoch}); err != nil {
				return err
			}
			continue
		}
		b, err := rootfs.ReadFile(p)
		if err != nil {
			return err
		}
		if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(b)), ModTime: epoch}); err != nil {
			return err
		}
		if _, err := tw.Write(b); err != nil {
			return err
		}
	}
	return nil
}

func addFile(tw *tar.Writer, src, name string) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o755, Size: st.Size(), ModTime: epoch}); err != nil {
		return err
	}
	_, err = io.Copy(tw, f)
	return err
}

//go:embed feed
var feed embed.FS

// WriteFeed writes the demo vulnerability feed (OSV records written for
// mamori; none is a real advisory) to dir, for building a demo database.
func WriteFeed(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("demo feed: %w", err)
	}
	entries, err := feed.ReadDir("feed")
	if err != nil {
		return err
	}
	for _, e := range entries {
		b, err := feed.ReadFile("feed/" + e.Name())
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644); err != nil {
			return fmt.Errorf("demo feed: %w", err)
		}
	}
	return nil
}
