package admission

import (
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Control names, as recorded in events and shown in denials.
const (
	ControlImage                  = "image-assurance"
	ControlExec                   = "block-exec"
	ControlPrivileged             = "privileged"
	ControlHostNamespaces         = "host-namespaces"
	ControlHostPath               = "host-path"
	ControlCapabilities           = "capabilities"
	ControlRunAsNonRoot           = "run-as-non-root"
	ControlReadOnlyRootFilesystem = "read-only-root-filesystem"
	ControlResourceLimits         = "resource-limits"
	ControlLatestTag              = "latest-tag"
	ControlServiceAccountToken    = "service-account-token"
)

// violation is one control a request violates.
type violation struct {
	control string
	mode    Mode
	policy  string
	image   string
	message string
}

// container is one container of a pod spec with its kind.
type container struct {
	kind string // "container", "initContainer", "ephemeralContainer"
	name string
	// image and securityContext, resources are those of the container.
	image     string
	sc        *corev1.SecurityContext
	resources corev1.ResourceRequirements
}

// containers lists every container, init container and ephemeral container
// of a pod spec.
func containers(spec *corev1.PodSpec) []container {
	var cs []container
	for _, c := range spec.InitContainers {
		cs = append(cs, container{"initContainer", c.Name, c.Image, c.SecurityContext, c.Resources})
	}
	for _, c := range spec.Containers {
		cs = append(cs, container{"container", c.Name, c.Image, c.SecurityContext, c.Resources})
	}
	for _, c := range spec.EphemeralContainers {
		cs = append(cs, container{"ephemeralContainer", c.Name, c.Image, c.SecurityContext, c.Resources})
	}
	return cs
}

// posture evaluates the posture controls on a pod spec.
func (h *Handler) posture(spec *corev1.PodSpec) []violation {
	p := h.cfg.Posture
	var vs []violation
	add := func(control string, mode Mode, format string, args ...any) {
		if mode == Off {
			return
		}
		vs = append(vs, violation{control: control, mode: mode, policy: "kubernetes-posture", message: fmt.Sprintf(format, args...)})
	}
	if spec.HostPID {
		add(ControlHostNamespaces, p.HostNamespaces, "hostPID is not allowed")
	}
	if spec.HostNetwork {
		add(ControlHostNamespaces, p.HostNamespaces, "hostNetwork is not allowed")
	}
	if spec.HostIPC {
		add(ControlHostNamespaces, p.HostNamespaces, "hostIPC is not allowed")
	}
	for _, v := range spec.Volumes {
		if v.HostPath != nil {
			add(ControlHostPath, p.HostPath, "volume %s mounts host path %s", v.Name, v.HostPath.Path)
		}
	}
	if (spec.ServiceAccountName == "" || spec.ServiceAccountName == "default") &&
		(spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken) {
		add(ControlServiceAccountToken, p.ServiceAccountToken, "the default service account's token is mounted (set automountServiceAccountToken: false)")
	}
	podNonRoot := spec.SecurityContext != nil && spec.SecurityContext.RunAsNonRoot != nil && *spec.SecurityContext.RunAsNonRoot
	podRoot := spec.SecurityContext != nil && spec.SecurityContext.RunAsUser != nil && *spec.SecurityContext.RunAsUser == 0
	for _, c := range containers(spec) {
		what := fmt.Sprintf("%s %s", c.kind, c.name)
		sc := c.sc
		if sc == nil {
			sc = &corev1.SecurityContext{}
		}
		if sc.Privileged != nil && *sc.Privileged {
			add(ControlPrivileged, p.Privileged, "%s is privileged", what)
		}
		if sc.Capabilities != nil {
			var extra []string
			for _, capName := range sc.Capabilities.Add {
				n := strings.TrimPrefix(strings.ToUpper(string(capName)), "CAP_")
				if !slices.Contains(p.AllowedCapabilities, n) {
					extra = append(extra, n)
				}
			}
			if len(extra) > 0 {
				add(ControlCapabilities, p.Capabilities, "%s adds capabilities %s not in the allow-list", what, strings.Join(extra, ","))
			}
		}
		nonRoot := podNonRoot && !podRoot
		if sc.RunAsNonRoot != nil {
			nonRoot = *sc.RunAsNonRoot
		}
		if sc.RunAsUser != nil && *sc.RunAsUser == 0 || sc.RunAsUser == nil && podRoot {
			nonRoot = false
		}
		if !nonRoot {
			add(ControlRunAsNonRoot, p.RunAsNonRoot, "%s does not set runAsNonRoot: true", what)
		}
		if c.kind != "ephemeralContainer" {
			if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
				add(ControlReadOnlyRootFilesystem, p.ReadOnlyRootFilesystem, "%s does not set readOnlyRootFilesystem: true", what)
			}
			var missing []string
			for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
				if _, ok := c.resources.Limits[r]; !ok {
					missing = append(missing, string(r))
				}
			}
			if len(missing) > 0 {
				add(ControlResourceLimits, p.ResourceLimits, "%s has no %s limit", what, strings.Join(missing, " and "))
			}
		}
		if latestTag(c.image) {
			add(ControlLatestTag, p.LatestTag, "%s image %q is untagged or :latest", what, c.image)
		}
	}
	return vs
}
