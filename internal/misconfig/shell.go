package misconfig

import (
	"path"
	"regexp"
	"slices"
	"strings"
)

// runFacts is what a RUN command does that the checks care about.
type runFacts struct {
	// pipeToShell is set when a download is piped into a shell.
	pipeToShell bool
	// updateAlone is set when a package index is refreshed without any
	// install or upgrade in the same command (CIS 4.7).
	updateAlone bool
	// caches lists the package managers whose cache the command fills and
	// does not clean ("apt", "apk", "dnf/yum", "pip", "npm").
	caches []string
	// installs lists the OS packages the command installs.
	installs []string
}

// pipeToShellPatterns match a download handed straight to an interpreter:
// curl URL | sh, wget -O- URL | sudo bash, sh -c "$(curl ...)", bash <(curl ...).
var pipeToShellPatterns = []*regexp.Regexp{
	regexp.MustCompile(`\b(?:curl|wget)\b[^|;&\n]*\|\s*(?:sudo\s+(?:-\S+\s+)*)?(?:env\s+(?:\S+=\S*\s+)*)?(?:/usr)?(?:/bin/)?(?:ba|z|k|da|a|fi)?sh\b`),
	regexp.MustCompile(`\b(?:curl|wget)\b[^|;&\n]*\|\s*(?:sudo\s+(?:-\S+\s+)*)?(?:/usr)?(?:/bin/)?(?:python[0-9.]*|perl|ruby|node)\b\s*(?:-\s*)?(?:$|[;&|)\n])`),
	regexp.MustCompile(`\b(?:ba|z|k|da)?sh\s+(?:-\S+\s+)*-c\s+["']?\$\(\s*(?:curl|wget)\b`),
	regexp.MustCompile(`\b(?:ba|z|k|da)?sh\s+<\(\s*(?:curl|wget)\b`),
	regexp.MustCompile("\\b(?:ba|z|k|da)?sh\\s+(?:-\\S+\\s+)*-c\\s+[\"']?`\\s*(?:curl|wget)\\b"),
}

var dnfCache = regexp.MustCompile(`/var/cache/(dnf|yum)`)

var segmentSplit = regexp.MustCompile(`&&|\|\||[;|&\n()]`)

// optionsWithArg are package-manager options that take the next word as
// their argument.
var optionsWithArg = map[string]bool{
	"-o": true, "-t": true, "--target-release": true, "-X": true, "--repository": true,
	"--virtual": true, "-p": true, "--root": true, "--setopt": true, "--enablerepo": true,
	"--disablerepo": true, "-c": true, "--config": true, "--installroot": true,
	"-i": true, "--index-url": true, "--extra-index-url": true, "-r": true, "--requirement": true,
	"--cache-dir": true, "--cache": true, "-C": true, "--prefix": true,
}

// analyzeRun inspects a shell command line (the RUN text, heredoc bodies
// included).
func analyzeRun(cmd string) runFacts {
	var rf runFacts
	for _, re := range pipeToShellPatterns {
		if re.MatchString(cmd) {
			rf.pipeToShell = true
			break
		}
	}
	lower := strings.ToLower(cmd)
	var updated, installed bool
	used := map[string]bool{}
	for _, seg := range segmentSplit.Split(cmd, -1) {
		words := commandWords(seg)
		if len(words) == 0 {
			continue
		}
		tool := path.Base(words[0])
		args := words[1:]
		if strings.HasPrefix(tool, "python") && len(args) >= 2 && args[0] == "-m" {
			tool, args = args[1], args[2:]
		}
		sub, rest := subcommand(args)
		switch {
		case tool == "apt-get" || tool == "apt" || tool == "aptitude":
			switch sub {
			case "update":
				updated = true
			case "install", "reinstall":
				installed = true
				used["apt"] = true
				rf.installs = append(rf.installs, packageArgs(rest)...)
			case "upgrade", "dist-upgrade", "full-upgrade":
				installed = true
				used["apt"] = true
			}
		case tool == "apk":
			switch sub {
			case "update":
				updated = true
			case "add", "upgrade":
				installed = true
				if !slices.Contains(args, "--no-cache") {
					used["apk"] = true
				}
				if sub == "add" {
					rf.installs = append(rf.installs, packageArgs(rest)...)
				}
			}
		case tool == "yum" || tool == "dnf" || tool == "microdnf" || tool == "tdnf":
			switch sub {
			case "makecache":
				updated = true
			case "install", "reinstall", "update", "upgrade", "groupinstall":
				installed = true
				used["dnf/yum"] = true
				if strings.Contains(sub, "install") {
					rf.installs = append(rf.installs, packageArgs(rest)...)
				}
			}
		case strings.HasPrefix(tool, "pip"):
			if sub == "install" {
				if !slices.Contains(args, "--no-cache-dir") {
					used["pip"] = true
				}
			}
		case tool == "npm":
			if sub == "install" || sub == "i" || sub == "ci" {
				used["npm"] = true
			}
		}
	}
	rf.updateAlone = updated && !installed
	cleaned := map[string]bool{
		"apt":     strings.Contains(lower, "/var/lib/apt/lists") && hasRemove(lower),
		"apk":     strings.Contains(lower, "/var/cache/apk") && hasRemove(lower),
		"dnf/yum": strings.Contains(lower, " clean all") || (dnfCache.MatchString(lower) && hasRemove(lower)),
		"pip":     strings.Contains(lower, "pip_no_cache_dir") || strings.Contains(lower, "pip cache purge") || (strings.Contains(lower, ".cache/pip") && hasRemove(lower)) || (strings.Contains(lower, ".cache") && hasRemove(lower) && strings.Contains(lower, "/root")),
		"npm":     strings.Contains(lower, "npm cache clean") || (strings.Contains(lower, ".npm") && hasRemove(lower)),
	}
	for _, k := range []string{"apt", "apk", "dnf/yum", "pip", "npm"} {
		if used[k] && !cleaned[k] {
			rf.caches = append(rf.caches, k)
		}
	}
	return rf
}

func hasRemove(lower string) bool {
	return strings.Contains(lower, "rm ") || strings.Contains(lower, "rm\t")
}

// commandWords splits one simple command into words, without quotes, and
// drops leading variable assignments and wrappers (sudo, env, exec).
func commandWords(seg string) []string {
	words := strings.Fields(seg)
	for i, w := range words {
		words[i] = strings.Trim(w, `"'\`)
	}
	for len(words) > 0 {
		w := words[0]
		switch {
		case w == "" || w == "sudo" || w == "env" || w == "exec" || w == "command" || w == "nohup" || w == "then" || w == "do" || w == "!" || w == "{":
			words = words[1:]
		case w == "-E" || w == "-H":
			words = words[1:]
		case strings.Contains(w, "=") && !strings.HasPrefix(w, "-") && !strings.HasPrefix(w, "="):
			words = words[1:]
		default:
			return words
		}
	}
	return nil
}

// subcommand returns the first word that is not an option, and the words
// after it.
func subcommand(args []string) (string, []string) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if strings.HasPrefix(a, "-") {
			if optionsWithArg[a] {
				i++
			}
			continue
		}
		return a, args[i+1:]
	}
	return "", nil
}

// packageArgs returns the package names among install arguments: the
// words that are not options, with version suffixes removed.
func packageArgs(args []string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if strings.HasPrefix(a, "-") {
			if optionsWithArg[a] {
				i++
			}
			continue
		}
		if strings.ContainsAny(a, "$`<>/") {
			continue
		}
		name := a
		if j := strings.IndexAny(name, "=:<>~"); j >= 0 {
			name = name[:j]
		}
		if name != "" {
			out = append(out, name)
		}
	}
	return out
}

// cacheMountPrefixes map package managers to the directories a RUN
// --mount=type=cache target must cover to keep their cache out of the
// layer.
var cacheMountPrefixes = map[string][]string{
	"apt":     {"/var/lib/apt", "/var/cache/apt"},
	"apk":     {"/var/cache/apk", "/etc/apk/cache"},
	"dnf/yum": {"/var/cache/dnf", "/var/cache/yum"},
	"pip":     {"/root/.cache"},
	"npm":     {"/root/.npm"},
}

// cacheMounted reports whether one of the cache-mount targets covers the
// package manager's cache.
func cacheMounted(kind string, targets []string) bool {
	for _, t := range targets {
		t = path.Clean("/" + t)
		for _, p := range cacheMountPrefixes[kind] {
			if t == p || strings.HasPrefix(p, t+"/") || strings.HasPrefix(t, p+"/") || t == "/" {
				return true
			}
		}
	}
	return false
}
