package image

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mamorisec/mamori/internal/inventory"
)

// DefaultDockerHost is the Docker Engine API address used when neither
// Options.DockerHost nor $DOCKER_HOST is set.
const DefaultDockerHost = "unix:///var/run/docker.sock"

// pingTimeout bounds the check whether the Docker Engine answers.
const pingTimeout = 3 * time.Second

// engineError is an error from the Docker Engine source. notFound means the
// daemon answered but has no such image; fatal means the image exists but
// could not be read, so no other source should be tried.
type engineError struct {
	err      error
	notFound bool
	fatal    bool
}

func (e *engineError) Error() string { return e.err.Error() }
func (e *engineError) Unwrap() error { return e.err }

// engine is a client of the Docker Engine API.
type engine struct {
	host   string
	client *http.Client
	base   string
}

// newEngine returns a client for host ("unix:///path" or "tcp://host:port").
func newEngine(host string) (*engine, error) {
	if host == "" {
		host = os.Getenv("DOCKER_HOST")
	}
	if host == "" {
		host = DefaultDockerHost
	}
	e := &engine{host: host}
	tr := &http.Transport{DisableCompression: true}
	switch {
	case strings.HasPrefix(host, "unix://"):
		sock := strings.TrimPrefix(host, "unix://")
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		}
		e.base = "http://docker"
	case strings.HasPrefix(host, "tcp://"):
		e.base = "http://" + strings.TrimPrefix(host, "tcp://")
	default:
		return nil, fmt.Errorf("unsupported Docker host %q: want unix:///path or tcp://host:port", host)
	}
	e.client = &http.Client{Transport: tr}
	return e, nil
}

// get sends GET path and returns the response, turning API errors into Go
// errors (with the daemon's message).
func (e *engine) get(ctx context.Context, path string) (*http.Response, error) {
	u := &url.URL{Path: path}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.base+u.EscapedPath(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := e.client.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		body, _ := inventory.ReadAllLimited(resp.Body, 64<<10)
		var msg struct {
			Message string `json:"message"`
		}
		text := strings.TrimSpace(string(body))
		if json.Unmarshal(body, &msg) == nil && msg.Message != "" {
			text = msg.Message
		}
		return resp, &apiError{status: resp.StatusCode, message: text}
	}
	return resp, nil
}

// apiError is a non-200 answer of the Docker Engine API.
type apiError struct {
	status  int
	message string
}

func (e *apiError) Error() string {
	return fmt.Sprintf("Docker Engine answered %d: %s", e.status, e.message)
}

// ping checks that the daemon answers.
func (e *engine) ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	resp, err := e.get(ctx, "/_ping")
	if err != nil {
		return fmt.Errorf("cannot reach the Docker Engine at %s (is dockerd running?): %w", e.host, err)
	}
	resp.Body.Close()
	return nil
}

// engineInspect is the part of GET /images/{name}/json mamori uses.
type engineInspect struct {
	ID          string   `json:"Id"`
	RepoTags    []string `json:"RepoTags"`
	RepoDigests []string `json:"RepoDigests"`
}

// inspect returns the image's metadata.
func (e *engine) inspect(ctx context.Context, ref string) (*engineInspect, error) {
	resp, err := e.get(ctx, "/images/"+ref+"/json")
	if err != nil {
		var ae *apiError
		if errors.As(err, &ae) && ae.status == http.StatusNotFound {
			return nil, &engineError{err: fmt.Errorf("image not found in the Docker Engine at %s", e.host), notFound: true}
		}
		return nil, &engineError{err: fmt.Errorf("inspecting the image in the Docker Engine at %s: %w", e.host, err)}
	}
	defer resp.Body.Close()
	data, err := inventory.ReadAllLimited(resp.Body, maxMetadata)
	if err != nil {
		return nil, &engineError{err: fmt.Errorf("inspecting the image in the Docker Engine at %s: %w", e.host, err), fatal: true}
	}
	var info engineInspect
	if err := json.Unmarshal(data, &info); err != nil {
		return nil, &engineError{err: fmt.Errorf("bad image inspect JSON from the Docker Engine at %s: %w", e.host, err), fatal: true}
	}
	return &info, nil
}

// save streams GET /images/{name}/get (a docker save archive) into file.
func (e *engine) save(ctx context.Context, ref, file string) error {
	resp, err := e.get(ctx, "/images/"+ref+"/get")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return fmt.Errorf("receiving the image: %w", err)
	}
	return f.Close()
}

// openEngine exports the image from the Docker Engine into a private temp
// dir (removed by Image.Close) and opens it as a docker archive.
func openEngine(ctx context.Context, ref string, opts Options) (*Image, error) {
	if ref == "" {
		return nil, errors.New("missing image name")
	}
	e, err := newEngine(opts.DockerHost)
	if err != nil {
		return nil, &engineError{err: err, fatal: true}
	}
	if err := e.ping(ctx); err != nil {
		return nil, &engineError{err: err}
	}
	info, err := e.inspect(ctx, ref)
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(opts.TempDir, "mamori-docker-")
	if err != nil {
		return nil, &engineError{err: fmt.Errorf("creating private temp dir: %w", err), fatal: true}
	}
	// Save by ID: the archive then holds exactly this image even if the tag
	// moves meanwhile.
	file := filepath.Join(tmp, "image.tar")
	if err := e.save(ctx, info.ID, file); err != nil {
		os.RemoveAll(tmp)
		return nil, &engineError{err: fmt.Errorf("exporting the image from the Docker Engine at %s: %w", e.host, err), fatal: true}
	}
	img, err := openArchive(file, SourceDockerArchive, selection{}, "")
	if err != nil {
		os.RemoveAll(tmp)
		return nil, &engineError{err: fmt.Errorf("reading the image exported by the Docker Engine: %w", err), fatal: true}
	}
	// Remove the temp dir last, after the archive is closed.
	img.closers = append([]func() error{func() error { return os.RemoveAll(tmp) }}, img.closers...)
	img.Source = SourceDocker
	img.Name = ref
	img.ID = info.ID
	img.RepoTags = info.RepoTags
	img.RepoDigests = info.RepoDigests
	if len(info.RepoDigests) > 0 {
		if _, d, ok := strings.Cut(info.RepoDigests[0], "@"); ok {
			img.Digest = d
		}
	}
	return img, nil
}
