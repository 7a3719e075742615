package image

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// Options configure how an image is opened.
type Options struct {
	// Platform selects the image of a multi-platform index ("linux/amd64",
	// "linux/arm/v7"). The default is linux on the host's architecture
	// (container images are Linux images on every host).
	Platform string
	// Insecure allows plain HTTP and self-signed certificates for
	// registries; meant for registries on the loopback interface.
	Insecure bool
	// Username and Password authenticate to the registry. RegistryToken is
	// a bearer token used as is. Without them the Docker config
	// (~/.docker/config.json or $DOCKER_CONFIG) is used, else anonymous.
	Username, Password string
	RegistryToken      string
	// DockerHost is the Docker Engine API address; the default is
	// $DOCKER_HOST, else unix:///var/run/docker.sock.
	DockerHost string
	// TempDir is the parent of private temp directories; the default is
	// os.TempDir().
	TempDir string
}

func (o Options) platform() string {
	if o.Platform != "" {
		return o.Platform
	}
	return "linux/" + runtime.GOARCH
}

// Open opens the image ref names.
//
// ref may carry an explicit source prefix: "docker-archive:PATH[:TAG]",
// "oci-layout:PATH[:TAG|@DIGEST]", "oci-archive:PATH[:TAG]",
// "registry:REF", "docker:REF" (the Docker Engine) or "dir:PATH". Without
// one, an existing path is recognised by its contents (an OCI layout
// directory, any other directory as a root filesystem, a docker save or OCI
// archive tar), and anything else is an image reference, looked up in the
// local Docker Engine when it runs and has the image, then in its registry.
//
// The caller must Close the image.
func Open(ctx context.Context, ref string, opts Options) (*Image, error) {
	img, err := open(ctx, ref, opts)
	if err != nil {
		return nil, fmt.Errorf("open image %q: %w", ref, err)
	}
	img.Ref = ref
	return img, nil
}

func open(ctx context.Context, ref string, opts Options) (*Image, error) {
	if ref == "" {
		return nil, errors.New("empty image reference")
	}
	kind, rest, ok := strings.Cut(ref, ":")
	if ok {
		switch kind {
		case SourceDockerArchive, SourceOCIArchive:
			p, sel, err := splitPath(rest)
			if err != nil {
				return nil, err
			}
			return openArchive(p, kind, sel, opts.platform())
		case SourceOCILayout:
			p, sel, err := splitPath(rest)
			if err != nil {
				return nil, err
			}
			return openLayoutDir(p, sel, opts.platform())
		case SourceDir:
			return openDir(rest)
		case SourceRegistry:
			return openRegistry(ctx, rest, opts)
		case SourceDocker:
			return openEngine(ctx, rest, opts)
		}
	}
	if fi, err := os.Stat(ref); err == nil {
		if fi.IsDir() {
			if isFile(ref+"/index.json") && isFile(ref+"/oci-layout") {
				return openLayoutDir(ref, selection{}, opts.platform())
			}
			return openDir(ref)
		}
		return openArchive(ref, "", selection{}, opts.platform())
	}
	if looksLikePath(ref) {
		return nil, fmt.Errorf("%s: %w", ref, fs.ErrNotExist)
	}
	if _, err := name.ParseReference(ref); err != nil {
		return nil, fmt.Errorf("no such file or directory, and not an image reference: %w", err)
	}
	img, engineErr := openEngine(ctx, ref, opts)
	if engineErr == nil {
		return img, nil
	}
	var ee *engineError
	if errors.As(engineErr, &ee) && ee.fatal {
		return nil, engineErr
	}
	img, err := openRegistry(ctx, ref, opts)
	if err != nil {
		if errors.As(engineErr, &ee) && ee.notFound {
			return nil, fmt.Errorf("%w; registry: %w", engineErr, err)
		}
		return nil, err
	}
	return img, nil
}

// looksLikePath reports whether a reference that names no existing file was
// meant as a path, so that no registry is asked for it.
func looksLikePath(ref string) bool {
	for _, p := range []string{"./", "../", "/", "~"} {
		if strings.HasPrefix(ref, p) {
			return true
		}
	}
	for _, s := range []string{".tar", ".tar.gz", ".tgz"} {
		if strings.HasSuffix(ref, s) {
			return true
		}
	}
	return false
}

// splitPath splits "PATH[:TAG|@DIGEST]". The longest existing path wins, so
// paths containing ':' or '@' still work.
func splitPath(s string) (string, selection, error) {
	if s == "" {
		return "", selection{}, errors.New("missing path")
	}
	if exists(s) {
		return s, selection{}, nil
	}
	if p, d, ok := cutLast(s, "@"); ok && exists(p) {
		return p, selection{digest: d}, nil
	}
	for i := len(s) - 1; i > 0; i-- {
		if s[i] == ':' && exists(s[:i]) {
			return s[:i], selection{tag: s[i+1:]}, nil
		}
	}
	return "", selection{}, fmt.Errorf("%s: %w", s, fs.ErrNotExist)
}

func cutLast(s, sep string) (before, after string, ok bool) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+len(sep):], true
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func isFile(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

// openLayoutDir opens an OCI image layout directory.
func openLayoutDir(dir string, sel selection, platform string) (*Image, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	store := &dirStore{root: root}
	img, err := (&ociLayout{store: store}).open(dir, sel, platform)
	if err != nil {
		store.close()
		return nil, err
	}
	img.Source = SourceOCILayout
	img.AddCloser(store.close)
	return img, nil
}
