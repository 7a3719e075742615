// Package misconfig finds ways an image or a Dockerfile is built that weaken
// the container it runs: running as root, no health check, setuid binaries,
// world-writable files, administration ports, secrets in ENV or build
// arguments, remote downloads piped to a shell, package-manager caches left
// behind and sudo installed. Checks map to section 4 of the CIS Docker
// Benchmark v1.6.0 where one fits (docs/misconfig.md has the table).
//
// Three entry points share the same checks and IDs:
//
//   - Files is an inventory.Extractor for the one filesystem walk. It picks
//     setuid/setgid and world-writable regular files, package-manager cache
//     files and sudo binaries by their metadata alone and returns one
//     finding per file without reading the content.
//   - CheckImage checks the image configuration and history, the package
//     inventory, and folds the per-file findings of Files into the final
//     image-level list (one finding per cache directory, a summary for the
//     base layer's setuid files). Its result replaces every misconfiguration
//     finding in the report.
//   - LintDockerfile applies the equivalent rules to a Dockerfile.
package misconfig

import (
	"maps"

	"github.com/mamorisec/mamori/internal/inventory"
)

// Severities used by the checks.
const (
	sevHigh   = "HIGH"
	sevMedium = "MEDIUM"
	sevLow    = "LOW"
)

// Check IDs. They are stable: ignore files and policies refer to them.
const (
	RootUser          = "MISC-001"
	NoHealthcheck     = "MISC-002"
	SetuidAdded       = "MISC-003"
	SetuidBase        = "MISC-004"
	WorldWritable     = "MISC-005"
	AdminPort         = "MISC-006"
	SecretEnv         = "MISC-007"
	AddURL            = "MISC-008"
	AddInsteadOfCopy  = "MISC-009"
	PipeToShell       = "MISC-010"
	PackageCache      = "MISC-011"
	UpdateAlone       = "MISC-012"
	SudoInstalled     = "MISC-013"
	UnpinnedBaseImage = "MISC-014"
)

// Check describes one misconfiguration check.
type Check struct {
	// ID is the stable mamori ID ("MISC-001").
	ID string
	// Title is the one-line description used as the finding title.
	Title string
	// Severity is the default severity; some findings raise it (a telnet
	// port is HIGH).
	Severity string
	// CIS is the CIS Docker Benchmark v1.6.0 recommendation ("4.1"), empty
	// when none fits.
	CIS string
	// Remediation says how to fix the finding.
	Remediation string
	// References are URLs explaining the check.
	References []string
}

const (
	refCIS        = "https://www.cisecurity.org/benchmark/docker"
	refDockerfile = "https://docs.docker.com/reference/dockerfile/"
	refPractices  = "https://docs.docker.com/build/building/best-practices/"
	refSecrets    = "https://docs.docker.com/build/building/secrets/"
)

var checks = []Check{
	{RootUser, "Image runs as root", sevHigh, "4.1",
		"Create an unprivileged user and end the Dockerfile with USER <name or UID> (not root, 0 or 0:0).",
		[]string{refCIS, refDockerfile + "#user"}},
	{NoHealthcheck, "No HEALTHCHECK instruction", sevLow, "4.6",
		"Add a HEALTHCHECK instruction that probes the service, so the runtime can detect and restart a broken container.",
		[]string{refCIS, refDockerfile + "#healthcheck"}},
	{SetuidAdded, "Setuid/setgid file added above the base layer", sevHigh, "4.8",
		"Remove the setuid/setgid bits (chmod u-s,g-s FILE) or the file itself in the layer that adds it, unless the container really needs it.",
		[]string{refCIS}},
	{SetuidBase, "Setuid/setgid files in the base layer", sevLow, "4.8",
		"Strip setuid/setgid bits the application does not need, for example: RUN find / -xdev -perm /6000 -type f -exec chmod a-s {} +",
		[]string{refCIS}},
	{WorldWritable, "World-writable file", sevMedium, "",
		"Remove write permission for others (chmod o-w FILE); any process in the container can otherwise alter it.",
		nil},
	{AdminPort, "Administration port exposed", sevMedium, "",
		"Do not run remote-administration services (SSH, telnet, RDP, VNC, Docker or Kubernetes node APIs) in an application image; remove the EXPOSE and the service, and use docker exec or kubectl exec instead.",
		[]string{refDockerfile + "#expose"}},
	{SecretEnv, "Secret in ENV, ARG or label", sevHigh, "4.10",
		"Do not put secrets in ENV, ARG or LABEL: they are stored in the image config and history. Use build secrets (RUN --mount=type=secret) and runtime secrets, and rotate the exposed value.",
		[]string{refCIS, refSecrets}},
	{AddURL, "ADD downloads from a URL", sevMedium, "4.9",
		"Download with RUN and verify a checksum or signature, or use ADD --checksum=sha256:...; prefer COPY for local files.",
		[]string{refCIS, refDockerfile + "#add"}},
	{AddInsteadOfCopy, "ADD used where COPY suffices", sevLow, "4.9",
		"Use COPY for local files and directories; ADD also unpacks archives and fetches URLs, which hides what the layer contains.",
		[]string{refCIS, refPractices + "#add-or-copy"}},
	{PipeToShell, "Remote script piped to a shell", sevMedium, "4.11",
		"Download the script, verify its checksum or signature, then run it; or install the software from a signed package repository.",
		[]string{refCIS}},
	{PackageCache, "Package manager cache left in the image", sevLow, "",
		"Clean the cache in the same RUN that fills it (rm -rf /var/lib/apt/lists/*, apk add --no-cache, pip install --no-cache-dir, npm cache clean --force, dnf/yum clean all) or use a cache mount.",
		[]string{refPractices + "#apt-get"}},
	{UpdateAlone, "Package index update alone in a RUN", sevLow, "4.7",
		"Combine the update with the install in one RUN (apt-get update && apt-get install -y ...) so a cached update layer never serves stale indexes.",
		[]string{refCIS, refPractices + "#apt-get"}},
	{SudoInstalled, "sudo is installed", sevMedium, "4.3",
		"Remove sudo from the image; use USER to switch users at build time and gosu or su-exec where an entrypoint must drop privileges.",
		[]string{refCIS, refPractices + "#user"}},
	{UnpinnedBaseImage, "Base image not pinned", sevLow, "",
		"Pin the base image to a version tag and, better, a digest (FROM image:1.2@sha256:...).",
		[]string{refDockerfile + "#from"}},
}

// Checks returns every check, ordered by ID. The slice is a copy.
func Checks() []Check {
	out := make([]Check, len(checks))
	copy(out, checks)
	return out
}

func lookup(id string) Check {
	for _, c := range checks {
		if c.ID == id {
			return c
		}
	}
	return Check{ID: id, Title: id, Severity: "UNKNOWN"}
}

// newFinding builds a finding for check id with the check's title,
// severity, CIS category and references. meta may be nil.
func newFinding(id, source string, meta map[string]string) inventory.Finding {
	c := lookup(id)
	f := inventory.Finding{
		Kind:       inventory.KindMisconfig,
		RuleID:     c.ID,
		Title:      c.Title,
		Severity:   c.Severity,
		Category:   "mamori",
		Source:     source,
		Engine:     "builtin",
		References: append([]string(nil), c.References...),
		Metadata:   map[string]string{"remediation": c.Remediation},
	}
	if c.CIS != "" {
		f.Category = "CIS-" + c.CIS
		f.Metadata["cis"] = c.CIS
	}
	maps.Copy(f.Metadata, meta)
	return f
}
