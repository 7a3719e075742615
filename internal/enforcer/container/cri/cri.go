// Package cri is a client of the Kubernetes Container Runtime Interface
// (k8s.io/cri-api runtime.v1 RuntimeService) over a runtime's unix socket —
// containerd's /run/containerd/containerd.sock or cri-o's
// /var/run/crio/crio.sock — so the enforcer sees the containers of
// Kubernetes nodes. It only reads: version, containers, their status.
package cri

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// DefaultSocket is containerd's socket, where its CRI plugin listens.
const DefaultSocket = "/run/containerd/containerd.sock"

// Limits on what the runtime may send.
const (
	// MaxMessage bounds one gRPC answer.
	MaxMessage = 16 << 20
	// MaxInfo bounds the verbose info of one container.
	MaxInfo = 1 << 20
	// callTimeout bounds one call.
	callTimeout = 30 * time.Second
)

// Client talks to one CRI runtime.
type Client struct {
	socket string
	conn   *grpc.ClientConn
	rt     runtimeapi.RuntimeServiceClient
}

// New returns a client of the CRI runtime at the unix socket path. The
// connection is made lazily, on the first call.
func New(socket string) (*Client, error) {
	conn, err := grpc.NewClient("unix://"+socket,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(MaxMessage)),
	)
	if err != nil {
		return nil, fmt.Errorf("CRI runtime at %s: %w", socket, err)
	}
	return &Client{socket: socket, conn: conn, rt: runtimeapi.NewRuntimeServiceClient(conn)}, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// Socket returns the socket path the client talks to.
func (c *Client) Socket() string { return c.socket }

// wrap names the socket and the call in an error.
func (c *Client) wrap(call string, err error) error {
	return fmt.Errorf("CRI runtime at %s: %s: %w", c.socket, call, err)
}

// Version returns the runtime's name and version, and the CRI version it
// speaks.
func (c *Client) Version(ctx context.Context) (*runtimeapi.VersionResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	v, err := c.rt.Version(ctx, &runtimeapi.VersionRequest{})
	if err != nil {
		return nil, c.wrap("Version", err)
	}
	return v, nil
}

// ListRunning returns the running containers.
func (c *Client) ListRunning(ctx context.Context) ([]*runtimeapi.Container, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	r, err := c.rt.ListContainers(ctx, &runtimeapi.ListContainersRequest{
		Filter: &runtimeapi.ContainerFilter{State: &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_RUNNING}},
	})
	if err != nil {
		return nil, c.wrap("ListContainers", err)
	}
	return r.GetContainers(), nil
}

// ListPods returns the pod sandboxes.
func (c *Client) ListPods(ctx context.Context) ([]*runtimeapi.PodSandbox, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	r, err := c.rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		return nil, c.wrap("ListPodSandbox", err)
	}
	return r.GetItems(), nil
}

// ErrNotFound is returned (wrapped) for a container the runtime does not
// know.
var ErrNotFound = errors.New("no such container in the CRI runtime")

// Status is a container's status with what the verbose info adds.
type Status struct {
	*runtimeapi.ContainerStatus
	// Info is the runtime's verbose info (containerd's "info" key).
	Info Info
}

// Status returns a container's status, asking for the verbose info that
// holds the init pid.
func (c *Client) Status(ctx context.Context, id string) (*Status, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	r, err := c.rt.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: id, Verbose: true})
	if err != nil {
		if isNotFound(err) {
			return nil, fmt.Errorf("CRI runtime at %s: container %s: %w", c.socket, id, ErrNotFound)
		}
		return nil, c.wrap("ContainerStatus "+id, err)
	}
	if r.GetStatus() == nil {
		return nil, c.wrap("ContainerStatus "+id, errors.New("answer has no status"))
	}
	st := &Status{ContainerStatus: r.GetStatus()}
	if raw, ok := r.GetInfo()["info"]; ok {
		info, err := DecodeInfo([]byte(raw))
		if err != nil {
			return nil, c.wrap("ContainerStatus "+id, err)
		}
		st.Info = *info
	}
	return st, nil
}

// Info is the part of containerd's (and cri-o's) verbose container info
// the enforcer uses.
type Info struct {
	// Pid is the host pid of the container's init.
	Pid         int    `json:"pid"`
	SandboxID   string `json:"sandboxID"`
	Snapshotter string `json:"snapshotter"`
	SnapshotKey string `json:"snapshotKey"`
	RuntimeSpec struct {
		Linux struct {
			CgroupsPath string `json:"cgroupsPath"`
		} `json:"linux"`
	} `json:"runtimeSpec"`
}

// DecodeInfo decodes the verbose info JSON of ContainerStatus.
func DecodeInfo(b []byte) (*Info, error) {
	if len(b) > MaxInfo {
		return nil, fmt.Errorf("verbose container info is larger than %d bytes", MaxInfo)
	}
	var in Info
	if err := json.Unmarshal(b, &in); err != nil {
		return nil, fmt.Errorf("bad verbose container info JSON: %w", err)
	}
	if in.Pid < 0 {
		return nil, fmt.Errorf("bad verbose container info JSON: negative pid %d", in.Pid)
	}
	return &in, nil
}

// isNotFound reports whether a gRPC error says the object does not exist.
func isNotFound(err error) bool { return status.Code(err) == codes.NotFound }
