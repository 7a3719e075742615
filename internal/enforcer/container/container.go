// Package container discovers the containers running on a host and keeps a
// live view of them for the enforcer: a Tracker seeds itself from the
// container runtimes (Docker Engine, containerd's CRI) and from /proc — so
// containers started before the enforcer are covered — and follows the
// runtimes' events. For each container it knows the processes, the cgroup
// ids eBPF programs see, the labels (and Kubernetes namespace and pod), and
// the overlay directories, from which FromImage tells whether a file came
// with the image or drifted in later. ExecSession tells whether a process
// belongs to an exec session rather than to the container's own tree.
package container

import (
	"maps"
	"slices"
	"time"

	"github.com/mamorisec/mamori/internal/fleet"
)

// Kubernetes labels the kubelet puts on every container.
const (
	LabelPodNamespace = "io.kubernetes.pod.namespace"
	LabelPodName      = "io.kubernetes.pod.name"
	LabelPodUID       = "io.kubernetes.pod.uid"
)

// Container is one container the Tracker knows.
type Container struct {
	// ID is the runtime's full container id (64 hex digits).
	ID string
	// Name is the runtime's name for it (without Docker's leading slash).
	Name string
	// Runtime is "docker", "containerd", "cri-o", "podman" or "cri" (see
	// CgroupRef.Runtime).
	Runtime string
	// Image is the reference the container was created from.
	Image string
	// ImageID is the runtime's image id (sha256:...).
	ImageID string
	// ImageDigest is the image's repository digest (sha256:...) when known.
	ImageDigest string
	Labels      map[string]string
	// Namespace and Pod are the Kubernetes namespace and pod name; PodUID
	// the pod's uid.
	Namespace, Pod, PodUID string
	// PID is the host pid of the container's init process (0: unknown).
	PID     int
	Started time.Time
	// CgroupParent is the cgroup parent the runtime was asked for.
	CgroupParent string
	// CgroupIDs are the cgroup ids of the init process (see CgroupIDs).
	CgroupIDs []uint64
	// UpperDir is the overlay's writable layer, LowerDirs the image layers
	// (topmost first), MergedDir the mounted root.
	UpperDir  string
	LowerDirs []string
	MergedDir string
	// FromProc is set for a container found only in /proc, which no
	// runtime API described.
	FromProc bool
	// Processes are the container's processes when the view was taken.
	Processes []Process
}

// ShortID returns the first 12 digits of the id.
func (c *Container) ShortID() string {
	if len(c.ID) > 12 {
		return c.ID[:12]
	}
	return c.ID
}

// clone returns a deep copy.
func (c *Container) clone() *Container {
	d := *c
	d.Labels = maps.Clone(c.Labels)
	d.CgroupIDs = slices.Clone(c.CgroupIDs)
	d.LowerDirs = slices.Clone(c.LowerDirs)
	d.Processes = slices.Clone(c.Processes)
	return &d
}

// setKubernetes fills Namespace, Pod and PodUID from the kubelet's labels.
func (c *Container) setKubernetes() {
	if v := c.Labels[LabelPodNamespace]; v != "" {
		c.Namespace = v
	}
	if v := c.Labels[LabelPodName]; v != "" {
		c.Pod = v
	}
	if v := c.Labels[LabelPodUID]; v != "" {
		c.PodUID = v
	}
}

// Fleet converts the container to the wire model.
func (c *Container) Fleet() fleet.Container {
	fc := fleet.Container{
		ID:          c.ID,
		Name:        c.Name,
		Image:       c.Image,
		ImageDigest: c.ImageDigest,
		Runtime:     c.Runtime,
		Labels:      maps.Clone(c.Labels),
		Namespace:   c.Namespace,
		Pod:         c.Pod,
		Started:     c.Started,
	}
	for _, p := range c.Processes {
		fc.Processes = append(fc.Processes, fleet.Process{PID: p.PID, Path: p.Exe, Args: slices.Clone(p.Args), UID: p.UID})
	}
	return fc
}
