// Package docker is a small client of the Docker Engine API over its unix
// socket: it lists and inspects containers and follows the event stream
// (container start/die/destroy and exec sessions). Every answer is read
// with a size limit and decoded by a function that reports bad input as an
// error naming the endpoint; see docs/decisions/0012-docker-engine-client.md
// for why this is not the official client module.
package docker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/mamorisec/mamori/internal/inventory"
)

// DefaultSocket is the Engine socket used when $DOCKER_HOST names no unix
// socket.
const DefaultSocket = "/var/run/docker.sock"

// Limits on what the Engine may send.
const (
	// MaxResponse bounds one list or inspect answer.
	MaxResponse = 32 << 20
	// MaxEvent bounds one event of the /events stream.
	MaxEvent = 1 << 20
	// maxError bounds the body of an error answer.
	maxError = 64 << 10
)

// ErrNotFound is returned (wrapped) when the Engine has no such object.
var ErrNotFound = errors.New("no such object in the Docker Engine")

// Client talks to one Docker Engine.
type Client struct {
	socket string
	http   *http.Client
}

// SocketFromEnv returns the socket named by $DOCKER_HOST (unix://path), or
// DefaultSocket; it fails for a DOCKER_HOST that is not a unix socket.
func SocketFromEnv() (string, error) {
	h := os.Getenv("DOCKER_HOST")
	if h == "" {
		return DefaultSocket, nil
	}
	sock, ok := strings.CutPrefix(h, "unix://")
	if !ok || sock == "" {
		return "", fmt.Errorf("DOCKER_HOST=%q: only unix:///path sockets are supported", h)
	}
	return sock, nil
}

// New returns a client of the Engine listening on the unix socket path.
func New(socket string) *Client {
	tr := &http.Transport{
		DisableCompression: true,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
		ResponseHeaderTimeout: 30 * time.Second,
	}
	return &Client{socket: socket, http: &http.Client{Transport: tr}}
}

// Socket returns the socket path the client talks to.
func (c *Client) Socket() string { return c.socket }

// Close releases idle connections.
func (c *Client) Close() { c.http.CloseIdleConnections() }

// APIError is a non-200 answer of the Engine.
type APIError struct {
	Path    string
	Status  int
	Message string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("Docker Engine answered %d to %s: %s", e.Status, e.Path, e.Message)
}

// Is makes errors.Is(err, ErrNotFound) true for 404 answers.
func (e *APIError) Is(target error) bool {
	return target == ErrNotFound && e.Status == http.StatusNotFound
}

// get sends GET path?query and returns the open response of a 200 answer.
func (c *Client) get(ctx context.Context, path string, query url.Values) (*http.Response, error) {
	u := url.URL{Scheme: "http", Host: "docker", Path: path, RawQuery: query.Encode()}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("docker engine request %s: %w", path, err)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach the Docker Engine at %s (%s): %w", c.socket, path, err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		body, _ := inventory.ReadAllLimited(resp.Body, maxError)
		var msg struct {
			Message string `json:"message"`
		}
		text := strings.TrimSpace(string(body))
		if json.Unmarshal(body, &msg) == nil && msg.Message != "" {
			text = msg.Message
		}
		return nil, &APIError{Path: path, Status: resp.StatusCode, Message: text}
	}
	return resp, nil
}

// getBody returns the bounded body of GET path.
func (c *Client) getBody(ctx context.Context, path string, query url.Values) ([]byte, error) {
	resp, err := c.get(ctx, path, query)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := inventory.ReadAllLimited(resp.Body, MaxResponse)
	if err != nil {
		return nil, fmt.Errorf("reading the Docker Engine's answer to %s: %w", path, err)
	}
	return b, nil
}

// Ping checks that the Engine answers.
func (c *Client) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err := c.getBody(ctx, "/_ping", nil)
	return err
}

// validID reports whether id can be put in an API path: container and exec
// ids and names are made of [A-Za-z0-9_.-].
func validID(id string) bool {
	if id == "" || len(id) > 256 {
		return false
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '.' || r == '-') {
			return false
		}
	}
	return true
}

// List returns the running containers (GET /containers/json).
func (c *Client) List(ctx context.Context) ([]Summary, error) {
	b, err := c.getBody(ctx, "/containers/json", nil)
	if err != nil {
		return nil, err
	}
	return DecodeList(b)
}

// Inspect returns the details of a container (GET /containers/{id}/json).
func (c *Client) Inspect(ctx context.Context, id string) (*Inspect, error) {
	if !validID(id) {
		return nil, fmt.Errorf("invalid container id %q", id)
	}
	b, err := c.getBody(ctx, "/containers/"+id+"/json", nil)
	if err != nil {
		return nil, err
	}
	return DecodeInspect(b)
}

// ImageDigests returns the repository digests (name@sha256:...) of an
// image (GET /images/{id}/json); an image built or imported locally has
// none.
func (c *Client) ImageDigests(ctx context.Context, imageID string) ([]string, error) {
	id := strings.TrimPrefix(imageID, "sha256:")
	if !validID(id) {
		return nil, fmt.Errorf("invalid image id %q", imageID)
	}
	b, err := c.getBody(ctx, "/images/"+id+"/json", nil)
	if err != nil {
		return nil, err
	}
	var img struct {
		RepoDigests []string `json:"RepoDigests"`
	}
	if err := json.Unmarshal(b, &img); err != nil {
		return nil, fmt.Errorf("bad image inspect JSON from the Docker Engine: %w", err)
	}
	return img.RepoDigests, nil
}

// ExecInspect returns an exec session's details (GET /exec/{id}/json),
// among them the host pid of its first process.
func (c *Client) ExecInspect(ctx context.Context, execID string) (*Exec, error) {
	if !validID(execID) {
		return nil, fmt.Errorf("invalid exec id %q", execID)
	}
	b, err := c.getBody(ctx, "/exec/"+execID+"/json", nil)
	if err != nil {
		return nil, err
	}
	return DecodeExec(b)
}
