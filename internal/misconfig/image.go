package misconfig

import (
	"cmp"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/mamorisec/mamori/internal/inventory"
)

// adminPorts are the remote-administration ports MISC-006 reports, with
// the service and the severity. 6443 (Kubernetes API server) is left out:
// it authenticates every request and is the serving port of the
// control-plane images that expose it, so reporting it would only flag
// those images for doing their job.
var adminPorts = map[int]struct{ service, severity string }{
	22:    {"SSH", sevMedium},
	23:    {"telnet (cleartext)", sevHigh},
	2375:  {"Docker Engine API without TLS", sevHigh},
	2376:  {"Docker Engine API", sevMedium},
	2379:  {"etcd client API", sevMedium},
	2380:  {"etcd peer API", sevMedium},
	3389:  {"RDP", sevMedium},
	5900:  {"VNC", sevMedium},
	5901:  {"VNC", sevMedium},
	10250: {"kubelet API", sevMedium},
	10255: {"kubelet read-only API", sevMedium},
}

// maxPerFileFindings bounds the per-file findings of one check; beyond it
// one summary finding carries the count.
const maxPerFileFindings = 50

// maxListedPaths bounds the paths listed in a summary's metadata.
const maxListedPaths = 20

// CheckImage checks an image's configuration (cfg may be nil for a root
// filesystem directory) and inventory, and returns the image's complete
// list of misconfiguration findings.
//
// Contract: the result replaces every finding of kind
// inventory.KindMisconfig in rep.Findings. CheckImage reads the per-file
// findings that the Files extractor left there and folds them (one finding
// per package-manager cache directory, one summary for the base layer's
// setuid/setgid files); the caller drops the misconfiguration findings
// from rep.Findings and appends the result. rep is not modified.
func CheckImage(cfg *v1.ConfigFile, rep *inventory.Report) []inventory.Finding {
	var out []inventory.Finding
	if cfg != nil {
		out = append(out, configFindings(&cfg.Config)...)
		out = append(out, historyFindings(cfg)...)
	}
	if rep != nil {
		out = append(out, fileAndPackageFindings(rep)...)
	}
	for i := range out {
		// The walk copies the layer's history entry, which may carry build
		// arguments in clear ("|1 TOKEN=... /bin/sh -c ...").
		out[i].Layer.CreatedBy = RedactHistory(out[i].Layer.CreatedBy)
	}
	slices.SortStableFunc(out, func(a, b inventory.Finding) int {
		return cmp.Or(cmp.Compare(a.RuleID, b.RuleID), cmp.Compare(a.Path, b.Path),
			cmp.Compare(a.Layer.Index, b.Layer.Index), cmp.Compare(a.Match, b.Match))
	})
	return out
}

// isRootUser reports whether a USER value runs the process as root: empty
// (the default), "root" or UID 0, with or without a group.
func isRootUser(u string) bool {
	user, _, _ := strings.Cut(strings.TrimSpace(u), ":")
	if user == "" || user == "root" {
		return true
	}
	n, err := strconv.ParseUint(user, 10, 64)
	return err == nil && n == 0
}

func configFindings(c *v1.Config) []inventory.Finding {
	var out []inventory.Finding
	if isRootUser(c.User) {
		f := newFinding(RootUser, inventory.SourceConfig, map[string]string{"user": c.User})
		f.Match = "USER " + c.User
		if strings.TrimSpace(c.User) == "" {
			f.Match = "no USER: the process runs as root"
		}
		out = append(out, f)
	}
	if hc := c.Healthcheck; hc == nil || len(hc.Test) == 0 || strings.EqualFold(hc.Test[0], "NONE") {
		f := newFinding(NoHealthcheck, inventory.SourceConfig, nil)
		f.Match = "no HEALTHCHECK"
		if hc != nil && len(hc.Test) > 0 {
			f.Match = "HEALTHCHECK NONE"
		}
		out = append(out, f)
	}
	for spec := range c.ExposedPorts {
		if f, ok := portFinding(spec, inventory.SourceConfig); ok {
			out = append(out, f)
		}
	}
	for _, kv := range c.Env {
		name, value, _ := strings.Cut(kv, "=")
		if isSecretName(name) && !isPlaceholder(value) {
			f := newFinding(SecretEnv, inventory.SourceEnv, nil)
			f.Path = name
			f.Match = "ENV " + name + "=" + Redacted
			out = append(out, f)
		}
	}
	for name, value := range c.Labels {
		if isSecretName(name) && !isPlaceholder(value) {
			f := newFinding(SecretEnv, inventory.SourceLabel, nil)
			f.Path = name
			f.Match = "LABEL " + name + "=" + Redacted
			out = append(out, f)
		}
	}
	return out
}

// portFinding checks one EXPOSE entry ("22", "22/tcp", "5900-5910/tcp").
func portFinding(spec, source string) (inventory.Finding, bool) {
	num, proto, _ := strings.Cut(strings.TrimSpace(spec), "/")
	lo, hi, isRange := strings.Cut(num, "-")
	from, err1 := strconv.Atoi(lo)
	to := from
	var err2 error
	if isRange {
		to, err2 = strconv.Atoi(hi)
	}
	if err1 != nil || err2 != nil || from < 0 || to < from {
		return inventory.Finding{}, false
	}
	ports := make([]int, 0, len(adminPorts))
	for p := range adminPorts {
		if p >= from && p <= to {
			ports = append(ports, p)
		}
	}
	if len(ports) == 0 || strings.EqualFold(proto, "udp") && !slices.Contains(ports, 3389) {
		return inventory.Finding{}, false
	}
	slices.Sort(ports)
	var services []string
	sev := sevMedium
	for _, p := range ports {
		a := adminPorts[p]
		services = append(services, strconv.Itoa(p)+" "+a.service)
		if a.severity == sevHigh {
			sev = sevHigh
		}
	}
	f := newFinding(AdminPort, source, map[string]string{"port": spec, "service": strings.Join(services, ", ")})
	f.Severity = sev
	f.Match = "EXPOSE " + spec
	return f, true
}

// historyEntry is a build history line split into its instruction, its
// arguments and the build arguments BuildKit records for RUN ("|2 A=1 B=2").
type historyEntry struct {
	instr     string
	args      string
	buildArgs []string
}

var buildArgsPrefix = regexp.MustCompile(`^\|(\d+)\s+`)

var instructionWord = regexp.MustCompile(`^(ADD|ARG|CMD|COPY|ENTRYPOINT|ENV|EXPOSE|HEALTHCHECK|LABEL|MAINTAINER|ONBUILD|RUN|SHELL|STOPSIGNAL|USER|VOLUME|WORKDIR)(?:\s+|$)`)

// parseHistory understands the classic builder ("/bin/sh -c #(nop)  ADD
// file:... in /", "/bin/sh -c apt-get ...", "|1 A=b /bin/sh -c ...") and
// BuildKit ("RUN /bin/sh -c ... # buildkit", "ADD URL /x # buildkit").
func parseHistory(createdBy string) historyEntry {
	s := strings.TrimSpace(createdBy)
	s = strings.TrimSpace(strings.TrimSuffix(s, "# buildkit"))
	var e historyEntry
	if m := instructionWord.FindStringSubmatch(s); m != nil {
		e.instr = m[1]
		s = s[len(m[0]):]
		if e.instr != "RUN" {
			e.args = s
			return e
		}
	}
	if m := buildArgsPrefix.FindStringSubmatch(s); m != nil {
		n, _ := strconv.Atoi(m[1])
		rest := strings.Fields(s[len(m[0]):])
		n = min(n, len(rest))
		e.buildArgs = rest[:n]
		s = strings.Join(rest[n:], " ")
	}
	for _, sh := range []string{"/bin/sh -c ", "/bin/bash -c ", "sh -c "} {
		if after, ok := strings.CutPrefix(s, sh); ok {
			s = after
			break
		}
	}
	if after, ok := strings.CutPrefix(s, "#(nop)"); ok {
		after = strings.TrimSpace(after)
		word, rest, _ := strings.Cut(after, " ")
		e.instr = strings.ToUpper(word)
		e.args = strings.TrimSpace(rest)
		return e
	}
	e.instr, e.args = "RUN", s
	return e
}

var urlPattern = regexp.MustCompile(`(?i)\b(?:https?|ftp)://\S+|\bgit@\S+`)

// RedactHistory replaces secrets in a build history entry (or any
// Dockerfile instruction text): the values of secret-named NAME=value
// assignments, including the build arguments the builders record before
// RUN commands, the legacy "ENV NAME value" form, URL passwords and
// credential options such as curl -u. Reports should pass every
// Layer.CreatedBy through it: the history is part of the image config that
// anyone who can pull the image can read, but the report should not copy
// the secret further.
func RedactHistory(createdBy string) string { return redactInstruction(createdBy) }

func historyFindings(cfg *v1.ConfigFile) []inventory.Finding {
	var out []inventory.Finding
	// Builders repeat the build arguments before every later RUN: report
	// each secret once, at the first entry that shows it. Secrets still in
	// the config's Env are reported from there.
	seen := map[string]bool{}
	for _, kv := range cfg.Config.Env {
		if name, value, _ := strings.Cut(kv, "="); isSecretName(name) && !isPlaceholder(value) {
			seen[name] = true
		}
	}
	n := 0
	for i, h := range cfg.History {
		layer := inventory.Layer{Index: max(n-1, 0), CreatedBy: redactInstruction(h.CreatedBy)}
		meta := map[string]string{"historyIndex": strconv.Itoa(i)}
		if h.EmptyLayer {
			meta["emptyLayer"] = "true"
		} else {
			layer.Index = n
			n++
		}
		if !h.EmptyLayer && layer.Index < len(cfg.RootFS.DiffIDs) {
			layer.DiffID = cfg.RootFS.DiffIDs[layer.Index].String()
		}
		add := func(id string) {
			f := newFinding(id, inventory.SourceHistory, meta)
			f.Layer = layer
			f.Match = clip(layer.CreatedBy)
			out = append(out, f)
		}
		e := parseHistory(h.CreatedBy)
		var assigned []string
		switch e.instr {
		case "RUN":
			rf := analyzeRun(e.args)
			if rf.pipeToShell {
				add(PipeToShell)
			}
			if rf.updateAlone {
				add(UpdateAlone)
			}
			assigned = append(slices.Clone(e.buildArgs), e.args)
		case "ENV", "ARG":
			// An ENV overwritten later, or an ARG, is gone from the
			// config but not from the history.
			assigned = []string{e.args}
		case "ADD":
			if urlPattern.MatchString(e.args) {
				add(AddURL)
			}
		}
		for _, name := range secretAssignments(assigned) {
			if seen[name] {
				continue
			}
			seen[name] = true
			f := newFinding(SecretEnv, inventory.SourceHistory, meta)
			f.Layer = layer
			f.Path = name
			f.Match = clip(layer.CreatedBy)
			out = append(out, f)
		}
	}
	return out
}

// secretAssignments returns the names of secret-looking NAME=value
// assignments with a literal value in the texts, once each.
func secretAssignments(texts []string) []string {
	var names []string
	for _, t := range texts {
		for _, m := range assignment.FindAllStringSubmatch(t, -1) {
			if isSecretName(m[1]) && !isPlaceholder(m[2]) && !slices.Contains(names, m[1]) {
				names = append(names, m[1])
			}
		}
	}
	return names
}

// sudoPackages are package names that install sudo.
var sudoPackages = map[string]bool{"sudo": true, "sudo-ldap": true, "sudo-rs": true}

func fileAndPackageFindings(rep *inventory.Report) []inventory.Finding {
	var out []inventory.Finding
	sudo := false
	for _, p := range rep.Packages {
		if sudoPackages[p.Name] && p.OwnedBy == "" {
			f := newFinding(SudoInstalled, inventory.SourcePackage, map[string]string{"package": p.Type + ":" + p.Name, "version": p.Version})
			f.Path = p.Path
			f.Layer = p.Layer
			f.Match = p.Name + " " + p.Version
			out = append(out, f)
			sudo = true
		}
	}
	var setuidBase, setuidAdded, writable []inventory.Finding
	caches := map[string][]inventory.Finding{}
	for _, f := range rep.Findings {
		if f.Kind != inventory.KindMisconfig || f.Source != inventory.SourceFile {
			continue
		}
		switch f.RuleID {
		case SetuidAdded:
			if f.Layer.Index == 0 {
				setuidBase = append(setuidBase, f)
			} else {
				setuidAdded = append(setuidAdded, f)
			}
		case WorldWritable:
			writable = append(writable, f)
		case PackageCache:
			dir := f.Metadata["cacheDir"]
			if dir == "" {
				dir = f.Path
			}
			caches[dir] = append(caches[dir], f)
		case SudoInstalled:
			if !sudo {
				out = append(out, f)
				sudo = true
			}
		default:
			out = append(out, f)
		}
	}
	out = append(out, capped(setuidAdded)...)
	out = append(out, capped(writable)...)
	if len(setuidBase) > 0 {
		f := newFinding(SetuidBase, inventory.SourceFile, summary(setuidBase))
		f.Layer = setuidBase[0].Layer
		f.Match = strconv.Itoa(len(setuidBase)) + " setuid/setgid files in the base layer"
		out = append(out, f)
	}
	for dir, fs := range caches {
		out = append(out, cacheFinding(dir, fs))
	}
	return out
}

func byPath(a, b inventory.Finding) int {
	return cmp.Or(cmp.Compare(a.Path, b.Path), cmp.Compare(a.Layer.Index, b.Layer.Index))
}

// capped keeps the first maxPerFileFindings-1 per-file findings by path and
// folds the rest into one summary finding.
func capped(fs []inventory.Finding) []inventory.Finding {
	if len(fs) <= maxPerFileFindings {
		return fs
	}
	slices.SortFunc(fs, byPath)
	keep := slices.Clone(fs[:maxPerFileFindings-1])
	rest := fs[maxPerFileFindings-1:]
	f := newFinding(rest[0].RuleID, inventory.SourceFile, summary(rest))
	f.Severity = rest[0].Severity
	f.Layer = rest[0].Layer
	f.Match = strconv.Itoa(len(rest)) + " more files"
	return append(keep, f)
}

// summary lists the count and the first paths of per-file findings.
func summary(fs []inventory.Finding) map[string]string {
	slices.SortFunc(fs, byPath)
	paths := make([]string, 0, min(len(fs), maxListedPaths))
	for _, f := range fs[:min(len(fs), maxListedPaths)] {
		paths = append(paths, f.Path)
	}
	return map[string]string{"files": strconv.Itoa(len(fs)), "paths": strings.Join(paths, "\n")}
}

// cacheFinding folds the files of one cache directory into one finding,
// attributed to the highest layer that wrote a file there.
func cacheFinding(dir string, fs []inventory.Finding) inventory.Finding {
	var bytes int64
	layers := map[int]bool{}
	top := fs[0].Layer
	for _, f := range fs {
		n, _ := strconv.ParseInt(f.Metadata["bytes"], 10, 64)
		bytes += max(n, 0)
		layers[f.Layer.Index] = true
		if f.Layer.Index > top.Index {
			top = f.Layer
		}
	}
	idx := make([]string, 0, len(layers))
	for _, l := range slices.Sorted(maps.Keys(layers)) {
		idx = append(idx, strconv.Itoa(l))
	}
	f := newFinding(PackageCache, inventory.SourceFile, map[string]string{
		"cacheDir": dir, "manager": fs[0].Metadata["manager"], "files": strconv.Itoa(len(fs)),
		"bytes": strconv.FormatInt(bytes, 10), "layers": strings.Join(idx, ","),
	})
	f.Path = dir
	f.Layer = top
	f.Match = strconv.Itoa(len(fs)) + " files, " + strconv.FormatInt(bytes, 10) + " bytes in " + dir
	return f
}
