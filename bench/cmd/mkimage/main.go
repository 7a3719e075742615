// Command mkimage turns layer directories into a container image without a
// container daemon or registry. It writes the same image twice: as an
// uncompressed Docker archive (the format of "docker save", layers stored as
// plain tar) and as an OCI image layout with gzip-compressed layers.
//
// Usage:
//
//	mkimage -tar-dir DIR [-docker FILE] [-oci DIR] [-tag NAME:TAG] \
//	    -layer LAYERDIR=CREATED_BY [-layer ...]
//
// Layers are given base first. Each directory holds the files that layer adds
// (no whiteouts are needed for the benchmark image). The layer tars are
// deterministic: entries are sorted, owners are numeric, and every timestamp is
// SOURCE_DATE_EPOCH (default 1700000000), so rebuilding from the same
// directories yields the same digests. Device nodes, FIFOs and sockets are
// left out, as a container runtime provides them.
package main

import (
	"archive/tar"
	"bufio"
	"crypto/sha256"
	"flag"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"log"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"
)

// layerSpec is one -layer argument.
type layerSpec struct {
	dir       string
	createdBy string
}

// builtLayer is a layer written to disk both as plain tar and as tar.gz.
type builtLayer struct {
	spec   layerSpec
	tar    string
	gz     string
	diffID v1.Hash
	size   int64
}

func main() {
	log.SetFlags(0)
	log.SetPrefix("mkimage: ")
	var (
		layers  []layerSpec
		tarDir  = flag.String("tar-dir", "", "directory for the intermediate layer tars (required)")
		docker  = flag.String("docker", "", "write an uncompressed Docker archive to this file")
		ociDir  = flag.String("oci", "", "write an OCI image layout with gzip layers to this directory")
		tagName = flag.String("tag", "mamori-bench:latest", "image name recorded in both outputs")
	)
	flag.Func("layer", "`DIR=CREATED_BY`: a layer directory and its history entry, base first (repeatable)", func(s string) error {
		dir, createdBy, ok := strings.Cut(s, "=")
		if !ok || dir == "" {
			return fmt.Errorf("want DIR=CREATED_BY, got %q", s)
		}
		layers = append(layers, layerSpec{dir: dir, createdBy: createdBy})
		return nil
	})
	flag.Parse()
	if *tarDir == "" || len(layers) == 0 || (*docker == "" && *ociDir == "") {
		flag.Usage()
		os.Exit(2)
	}
	epoch, err := sourceDateEpoch()
	if err != nil {
		log.Fatal(err)
	}
	if err := run(layers, *tarDir, *docker, *ociDir, *tagName, epoch); err != nil {
		log.Fatal(err)
	}
}

// sourceDateEpoch reads SOURCE_DATE_EPOCH, defaulting to a fixed time.
func sourceDateEpoch() (time.Time, error) {
	s := os.Getenv("SOURCE_DATE_EPOCH")
	if s == "" {
		s = "1700000000"
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH=%q is not a number of seconds: %w", s, err)
	}
	return time.Unix(n, 0).UTC(), nil
}

func run(specs []layerSpec, tarDir, dockerOut, ociDir, tagName string, epoch time.Time) error {
	tag, err := name.NewTag(tagName)
	if err != nil {
		return fmt.Errorf("parsing -tag %q: %w", tagName, err)
	}
	if err := os.MkdirAll(tarDir, 0o755); err != nil {
		return err
	}
	built := make([]builtLayer, len(specs))
	for i, s := range specs {
		b := builtLayer{
			spec: s,
			tar:  filepath.Join(tarDir, fmt.Sprintf("layer%d.tar", i)),
			gz:   filepath.Join(tarDir, fmt.Sprintf("layer%d.tar.gz", i)),
		}
		start := time.Now()
		if b.diffID, b.size, err = writeLayerTar(s.dir, b.tar, epoch); err != nil {
			return err
		}
		if err := gzipFile(b.tar, b.gz); err != nil {
			return err
		}
		log.Printf("layer %d: %s, %d MiB, %s (%s)", i, s.dir, b.size>>20, b.diffID, time.Since(start).Round(time.Second))
		built[i] = b
	}
	if dockerOut != "" {
		if err := writeDocker(built, dockerOut, tag, epoch); err != nil {
			return err
		}
		log.Printf("wrote %s", dockerOut)
	}
	if ociDir != "" {
		if err := writeOCI(built, ociDir, tag, epoch); err != nil {
			return err
		}
		log.Printf("wrote %s", ociDir)
	}
	return nil
}

// image assembles the image config and manifest around the given layers.
func image(built []builtLayer, layers []v1.Layer, epoch time.Time) (v1.Image, error) {
	created := v1.Time{Time: epoch}
	adds := make([]mutate.Addendum, len(layers))
	for i, l := range layers {
		adds[i] = mutate.Addendum{
			Layer: l,
			History: v1.History{
				Created:   created,
				CreatedBy: built[i].spec.createdBy,
				Comment:   "mamori benchmark image",
			},
		}
	}
	img, err := mutate.Append(empty.Image, adds...)
	if err != nil {
		return nil, fmt.Errorf("assembling image: %w", err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg = cfg.DeepCopy()
	cfg.Architecture = "amd64"
	cfg.OS = "linux"
	cfg.Created = created
	cfg.Config.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	cfg.Config.Cmd = []string{"/bin/bash"}
	return mutate.ConfigFile(img, cfg)
}

func writeDocker(built []builtLayer, out string, tag name.Tag, epoch time.Time) error {
	layers := make([]v1.Layer, len(built))
	for i, b := range built {
		layers[i] = &plainLayer{path: b.tar, diffID: b.diffID, size: b.size}
	}
	img, err := image(built, layers, epoch)
	if err != nil {
		return err
	}
	tmp := out + ".tmp"
	if err := tarball.WriteToFile(tmp, tag, img); err != nil {
		return fmt.Errorf("writing Docker archive %s: %w", tmp, err)
	}
	return os.Rename(tmp, out)
}

func writeOCI(built []builtLayer, dir string, tag name.Tag, epoch time.Time) error {
	layers := make([]v1.Layer, len(built))
	for i, b := range built {
		l, err := tarball.LayerFromFile(b.gz, tarball.WithMediaType(types.OCILayer))
		if err != nil {
			return fmt.Errorf("reading %s: %w", b.gz, err)
		}
		layers[i] = l
	}
	img, err := image(built, layers, epoch)
	if err != nil {
		return err
	}
	img = mutate.MediaType(img, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	tmp := dir + ".tmp"
	if err := os.RemoveAll(tmp); err != nil {
		return err
	}
	p, err := layout.Write(tmp, empty.Index)
	if err != nil {
		return fmt.Errorf("creating OCI layout %s: %w", tmp, err)
	}
	ann := map[string]string{"org.opencontainers.image.ref.name": tag.TagStr()}
	if err := p.AppendImage(img, layout.WithAnnotations(ann)); err != nil {
		return fmt.Errorf("writing OCI layout %s: %w", tmp, err)
	}
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	return os.Rename(tmp, dir)
}

// plainLayer is an uncompressed layer stored in a file: its "compressed" form
// is the tar itself, so the Docker archive stores it as plain tar.
type plainLayer struct {
	path   string
	diffID v1.Hash
	size   int64
}

func (l *plainLayer) Digest() (v1.Hash, error)             { return l.diffID, nil }
func (l *plainLayer) DiffID() (v1.Hash, error)             { return l.diffID, nil }
func (l *plainLayer) Compressed() (io.ReadCloser, error)   { return os.Open(l.path) }
func (l *plainLayer) Uncompressed() (io.ReadCloser, error) { return os.Open(l.path) }
func (l *plainLayer) Size() (int64, error)                 { return l.size, nil }
func (l *plainLayer) MediaType() (types.MediaType, error)  { return types.DockerUncompressedLayer, nil }

// writeLayerTar writes dir as a deterministic tar to out and returns its
// sha256 and size.
func writeLayerTar(dir, out string, epoch time.Time) (v1.Hash, int64, error) {
	f, err := os.Create(out + ".tmp")
	if err != nil {
		return v1.Hash{}, 0, err
	}
	defer f.Close()
	h := sha256.New()
	cw := &countWriter{w: io.MultiWriter(f, h)}
	bw := bufio.NewWriterSize(cw, 1<<20)
	tw := tar.NewWriter(bw)
	if err := addTree(tw, dir, epoch); err != nil {
		return v1.Hash{}, 0, fmt.Errorf("archiving %s: %w", dir, err)
	}
	if err := tw.Close(); err != nil {
		return v1.Hash{}, 0, err
	}
	if err := bw.Flush(); err != nil {
		return v1.Hash{}, 0, err
	}
	if err := f.Close(); err != nil {
		return v1.Hash{}, 0, err
	}
	if err := os.Rename(out+".tmp", out); err != nil {
		return v1.Hash{}, 0, err
	}
	return hashOf(h), cw.n, nil
}

func hashOf(h hash.Hash) v1.Hash {
	return v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%x", h.Sum(nil))}
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// addTree adds every file under root to tw in lexical order.
func addTree(tw *tar.Writer, root string, epoch time.Time) error {
	type inode struct{ dev, ino uint64 }
	links := map[inode]string{}
	skipped := 0
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil || rel == "." {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return fmt.Errorf("%s: no stat data", p)
		}
		hdr := &tar.Header{
			Name:    filepath.ToSlash(rel),
			Mode:    tarMode(fi.Mode()),
			Uid:     int(st.Uid),
			Gid:     int(st.Gid),
			ModTime: epoch,
		}
		var body *os.File
		switch {
		case fi.Mode().IsDir():
			hdr.Typeflag = tar.TypeDir
			hdr.Name += "/"
		case fi.Mode()&fs.ModeSymlink != 0:
			hdr.Typeflag = tar.TypeSymlink
			if hdr.Linkname, err = os.Readlink(p); err != nil {
				return err
			}
		case fi.Mode().IsRegular():
			key := inode{uint64(st.Dev), st.Ino}
			if first, seen := links[key]; seen && st.Nlink > 1 {
				hdr.Typeflag = tar.TypeLink
				hdr.Linkname = first
				break
			}
			if st.Nlink > 1 {
				links[key] = hdr.Name
			}
			hdr.Typeflag = tar.TypeReg
			hdr.Size = fi.Size()
			if body, err = os.Open(p); err != nil {
				return err
			}
			defer body.Close()
		default:
			skipped++
			return nil
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		if body != nil {
			n, err := io.Copy(tw, body)
			if err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
			if n != hdr.Size {
				return fmt.Errorf("%s: changed size while archiving", p)
			}
		}
		return nil
	})
	if skipped > 0 {
		log.Printf("%s: left out %d device nodes, FIFOs or sockets", root, skipped)
	}
	return err
}

// tarMode converts a Go file mode to tar's mode bits.
func tarMode(m fs.FileMode) int64 {
	mode := int64(m.Perm())
	if m&fs.ModeSetuid != 0 {
		mode |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		mode |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		mode |= 0o1000
	}
	return mode
}

// gzipFile compresses src to dst at the default level, with a header that
// carries no name or time, so the output is reproducible.
func gzipFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst + ".tmp")
	if err != nil {
		return err
	}
	defer out.Close()
	bw := bufio.NewWriterSize(out, 1<<20)
	zw, err := gzip.NewWriterLevel(bw, gzip.DefaultCompression)
	if err != nil {
		return err
	}
	if _, err := io.Copy(zw, in); err != nil {
		return fmt.Errorf("compressing %s: %w", src, err)
	}
	if err := zw.Close(); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Rename(dst+".tmp", dst)
}
