package misconfig

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/moby/buildkit/frontend/dockerfile/command"
	"github.com/moby/buildkit/frontend/dockerfile/parser"

	"github.com/mamorisec/mamori/internal/inventory"
)

// MaxDockerfileSize is the largest Dockerfile LintDockerfile accepts.
// Callers read the file with inventory.ReadAllLimited and this limit.
const MaxDockerfileSize = 8 << 20

// maxMatch bounds the instruction text kept in a finding.
const maxMatch = 512

// stage is the state of one build stage that the final-image checks need.
type stage struct {
	name       string
	from       *parser.Node
	user       string
	userNode   *parser.Node
	health     *parser.Node
	pipNoCache bool
}

// linter collects the findings of one Dockerfile.
type linter struct {
	name     string
	findings []inventory.Finding
}

func (l *linter) add(id string, n *parser.Node, meta map[string]string) *inventory.Finding {
	f := newFinding(id, inventory.SourceDockerfile, meta)
	f.Path = l.name
	f.StartLine, f.EndLine = n.StartLine, n.EndLine
	f.Match = clip(redactInstruction(n.Original))
	l.findings = append(l.findings, f)
	return &l.findings[len(l.findings)-1]
}

// LintDockerfile checks a Dockerfile; name is the path shown in findings
// and errors. Rules that concern the built image (USER, HEALTHCHECK,
// EXPOSE, caches, sudo) look at the last stage, which is what docker build
// produces without --target; rules about how things are fetched and
// secrets look at every stage. A Dockerfile that does not parse gives an
// error naming the file and the line.
func LintDockerfile(name string, data []byte) ([]inventory.Finding, error) {
	if len(data) > MaxDockerfileSize {
		return nil, fmt.Errorf("%s: Dockerfile is %d bytes, over the %d MiB limit", name, len(data), MaxDockerfileSize>>20)
	}
	res, err := parser.Parse(bytes.NewReader(data))
	if err != nil {
		return nil, locate(name, err)
	}
	l := &linter{name: name}
	stages := map[string]*stage{} // named stages by lower-case name
	var cur *stage
	for _, n := range res.AST.Children {
		instr := strings.ToUpper(n.Value)
		if _, ok := command.Commands[strings.ToLower(n.Value)]; !ok {
			return nil, fmt.Errorf("%s:%d: unknown instruction %q", name, n.StartLine, n.Value)
		}
		if instr == "FROM" {
			cur = l.from(n, stages)
			if cur.name != "" {
				stages[strings.ToLower(cur.name)] = cur
			}
			continue
		}
		if cur == nil {
			if instr == "ARG" {
				l.secrets(n, instr)
				continue
			}
			return nil, fmt.Errorf("%s:%d: %s before the first FROM", name, n.StartLine, instr)
		}
		switch instr {
		case "USER":
			if n.Next != nil {
				cur.user, cur.userNode = n.Next.Value, n
			}
		case "HEALTHCHECK":
			cur.health = n
		case "ENV", "ARG", "LABEL":
			l.secrets(n, instr)
			if instr == "ENV" {
				for _, kv := range pairs(n) {
					if strings.EqualFold(kv[0], "PIP_NO_CACHE_DIR") && !isFalse(kv[1]) {
						cur.pipNoCache = true
					}
				}
			}
		case "ADD":
			l.addInstr(n)
		case "RUN":
			l.run(n, cur, false)
		}
	}
	if cur == nil {
		return nil, fmt.Errorf("%s: no FROM instruction", name)
	}
	l.final(cur, res.AST.Children)
	slices.SortStableFunc(l.findings, func(a, b inventory.Finding) int {
		return cmp.Or(cmp.Compare(a.StartLine, b.StartLine), cmp.Compare(a.RuleID, b.RuleID))
	})
	return l.findings, nil
}

// locate turns a parser error into "name:line: message".
func locate(name string, err error) error {
	var le *parser.LocationError
	if errors.As(err, &le) && len(le.Locations) > 0 && len(le.Locations[0]) > 0 && le.Locations[0][0].Start.Line > 0 {
		return fmt.Errorf("%s:%d: %v", name, le.Locations[0][0].Start.Line, le.Unwrap())
	}
	if le != nil {
		err = le.Unwrap()
	}
	return fmt.Errorf("%s: %w", name, err)
}

func isFalse(v string) bool {
	v = strings.ToLower(unquote(v))
	return v == "" || v == "0" || v == "false" || v == "off" || v == "no"
}

// from starts a stage. A stage built on an earlier stage inherits its USER
// and HEALTHCHECK.
func (l *linter) from(n *parser.Node, stages map[string]*stage) *stage {
	s := &stage{from: n}
	if n.Next == nil {
		return s
	}
	image := n.Next.Value
	if as := n.Next.Next; as != nil && strings.EqualFold(as.Value, "AS") && as.Next != nil {
		s.name = as.Next.Value
	}
	if prev := stages[strings.ToLower(image)]; prev != nil {
		s.user, s.userNode, s.health, s.pipNoCache = prev.user, prev.userNode, prev.health, prev.pipNoCache
		return s
	}
	if unpinned(image) {
		l.add(UnpinnedBaseImage, n, map[string]string{"image": image})
	}
	return s
}

// unpinned reports whether an image reference has no tag, or the latest
// tag, and no digest. References with variables cannot be judged.
func unpinned(ref string) bool {
	if strings.EqualFold(ref, "scratch") || strings.Contains(ref, "$") || strings.Contains(ref, "@") {
		return false
	}
	last := ref[strings.LastIndex(ref, "/")+1:]
	_, tag, ok := strings.Cut(last, ":")
	return !ok || tag == "latest"
}

// secrets reports secret-looking ENV, ARG and LABEL names with a literal
// value.
func (l *linter) secrets(n *parser.Node, instr string) {
	var names []string
	switch instr {
	case "ARG":
		for w := n.Next; w != nil; w = w.Next {
			name, value, ok := strings.Cut(w.Value, "=")
			if ok && isSecretName(name) && !isPlaceholder(value) && !slices.Contains(names, name) {
				names = append(names, name)
			}
		}
	default:
		for _, kv := range pairs(n) {
			if isSecretName(kv[0]) && !isPlaceholder(kv[1]) && !slices.Contains(names, kv[0]) {
				names = append(names, kv[0])
			}
		}
	}
	if len(names) == 0 {
		return
	}
	match := clip(redactInstruction(n.Original))
	for _, name := range names {
		f := newFinding(SecretEnv, inventory.SourceDockerfile, map[string]string{"instruction": instr})
		f.Title = "Secret in " + instr + " " + name
		f.Path = l.name
		f.StartLine, f.EndLine = n.StartLine, n.EndLine
		f.Match = match
		// The generic redaction does not understand every quoting; fall
		// back to the name alone rather than risk the value.
		if !strings.Contains(match, Redacted) {
			f.Match = instr + " " + name + "=" + Redacted
		}
		l.findings = append(l.findings, f)
	}
}

// pairs returns the name/value pairs of ENV and LABEL, which the parser
// gives as name, value, separator triples.
func pairs(n *parser.Node) [][2]string {
	var out [][2]string
	for k := n.Next; k != nil && k.Next != nil; {
		out = append(out, [2]string{unquote(k.Value), k.Next.Value})
		if k.Next.Next == nil {
			break
		}
		k = k.Next.Next.Next
	}
	return out
}

// archiveSuffixes are the local sources ADD unpacks, where ADD is the
// right instruction.
var archiveSuffixes = []string{".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tbz", ".tar.xz", ".txz", ".tar.zst", ".tzst"}

func (l *linter) addInstr(n *parser.Node) {
	var args []string
	for w := n.Next; w != nil; w = w.Next {
		args = append(args, w.Value)
	}
	if len(args) < 2 {
		return
	}
	checksum := slices.ContainsFunc(n.Flags, func(f string) bool { return strings.HasPrefix(f, "--checksum") })
	local := false
	for _, src := range args[:len(args)-1] {
		switch {
		case urlPattern.MatchString(src):
			// ADD --checksum verifies what it downloads: Docker's own
			// recommendation for remote files.
			if !checksum {
				l.add(AddURL, n, map[string]string{"source": redact(src)})
			}
		case !slices.ContainsFunc(archiveSuffixes, func(s string) bool { return strings.HasSuffix(strings.ToLower(src), s) }):
			local = true
		}
	}
	if local {
		l.add(AddInsteadOfCopy, n, nil)
	}
}

// run checks a RUN instruction; final is set for the last stage, whose
// caches and packages end up in the image.
func (l *linter) run(n *parser.Node, s *stage, final bool) {
	var cmd strings.Builder
	for w := n.Next; w != nil; w = w.Next {
		cmd.WriteString(w.Value)
		cmd.WriteByte(' ')
	}
	for _, h := range n.Heredocs {
		cmd.WriteByte('\n')
		cmd.WriteString(h.Content)
	}
	rf := analyzeRun(cmd.String())
	if !final {
		if rf.pipeToShell {
			l.add(PipeToShell, n, nil)
		}
		if rf.updateAlone {
			l.add(UpdateAlone, n, nil)
		}
		return
	}
	targets := cacheTargets(n.Flags)
	for _, c := range rf.caches {
		if cacheMounted(c, targets) || c == "pip" && s.pipNoCache {
			continue
		}
		l.add(PackageCache, n, map[string]string{"manager": c})
	}
	if slices.ContainsFunc(rf.installs, isSudoPackage) {
		l.add(SudoInstalled, n, nil)
	}
}

// versionSuffix is the "-1.9.5" of yum's NAME-VERSION install form.
var versionSuffix = regexp.MustCompile(`-[0-9][^/]*$`)

// isSudoPackage reports whether an install argument names sudo, with or
// without a version.
func isSudoPackage(arg string) bool {
	return sudoPackages[arg] || sudoPackages[versionSuffix.ReplaceAllString(arg, "")]
}

// cacheTargets returns the targets of RUN --mount=type=cache flags.
func cacheTargets(flags []string) []string {
	var out []string
	for _, fl := range flags {
		spec, ok := strings.CutPrefix(fl, "--mount=")
		if !ok {
			continue
		}
		var typ, target string
		for field := range strings.SplitSeq(spec, ",") {
			k, v, _ := strings.Cut(field, "=")
			switch strings.ToLower(k) {
			case "type":
				typ = v
			case "target", "dst", "destination":
				target = v
			}
		}
		if typ == "cache" && target != "" {
			out = append(out, target)
		}
	}
	return out
}

// final applies the rules about the built image to the last stage.
func (l *linter) final(s *stage, nodes []*parser.Node) {
	switch {
	case s.userNode == nil:
		l.add(RootUser, s.from, map[string]string{"user": ""}).Match = "no USER in the final stage: the process runs as the base image's user, root unless the base image sets one"
	case isRootUser(s.user):
		l.add(RootUser, s.userNode, map[string]string{"user": s.user})
	}
	switch {
	case s.health == nil:
		l.add(NoHealthcheck, s.from, nil).Match = "no HEALTHCHECK in the final stage"
	case s.health.Next == nil || strings.EqualFold(s.health.Next.Value, "NONE"):
		l.add(NoHealthcheck, s.health, nil)
	}
	inFinal := false
	for _, n := range nodes {
		if n == s.from {
			inFinal = true
			continue
		}
		if !inFinal {
			continue
		}
		switch strings.ToUpper(n.Value) {
		case "EXPOSE":
			for w := n.Next; w != nil; w = w.Next {
				if w.Value == "" {
					continue
				}
				if pf, ok := portFinding(w.Value, inventory.SourceDockerfile); ok {
					f := l.add(AdminPort, n, pf.Metadata)
					f.Severity = pf.Severity
				}
			}
		case "RUN":
			l.run(n, s, true)
		}
	}
}

// clip shortens s to maxMatch bytes at a rune boundary.
func clip(s string) string {
	if len(s) <= maxMatch {
		return s
	}
	cut := maxMatch
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
