package misconfig

import (
	"regexp"
	"strings"
)

// Redacted replaces every secret value in findings.
const Redacted = "<redacted>"

// secretWords are the name parts that mark a variable as holding a secret.
var secretWords = []string{
	"PASSWORD", "PASSWD", "PASSPHRASE", "SECRET", "TOKEN", "API_KEY", "APIKEY",
	"ACCESS_KEY", "PRIVATE_KEY", "CREDENTIAL", "AUTH_KEY", "CLIENT_KEY",
}

// notSecretSuffixes mark variables that name where a secret is, not the
// secret itself (POSTGRES_PASSWORD_FILE=/run/secrets/db).
var notSecretSuffixes = []string{"_FILE", "_PATH", "_DIR", "_LOCATION", "_URL", "_ENDPOINT"}

// isSecretName reports whether a variable name looks like it holds a
// secret.
func isSecretName(name string) bool {
	n := strings.ToUpper(strings.TrimSpace(name))
	for _, s := range notSecretSuffixes {
		if strings.HasSuffix(n, s) {
			return false
		}
	}
	n = strings.NewReplacer("-", "_", ".", "_").Replace(n)
	for _, w := range secretWords {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}

// placeholders are values that are obviously not a real secret.
var placeholders = map[string]bool{
	"true": true, "false": true, "yes": true, "no": true, "on": true, "off": true,
	"0": true, "1": true, "none": true, "null": true, "nil": true, "empty": true,
	"changeme": true, "change_me": true, "change-me": true, "placeholder": true,
	"secret": true, "password": true, "token": true, "redacted": true, "dummy": true,
	"example": true, "todo": true, "unset": true, "undefined": true, "-": true,
}

var placeholderShape = regexp.MustCompile(`^(?:\$\{?[A-Za-z_][A-Za-z0-9_]*(?::?[-=?+][^}]*)?\}?|<[^<>]*>|\{\{[^{}]*\}\}|[xX*.#_-]+|(?i:your[_-].*))$`)

// isPlaceholder reports whether a value is empty or a placeholder rather
// than a literal secret: a variable reference, <...>, {{...}}, xxx, ***,
// a command substitution, a boolean or an absolute file path.
func isPlaceholder(v string) bool {
	v = unquote(strings.TrimSpace(v))
	if v == "" || placeholders[strings.ToLower(v)] || placeholderShape.MatchString(v) || strings.HasPrefix(v, "$") || strings.HasPrefix(v, "`") {
		return true
	}
	return strings.HasPrefix(v, "/") && !strings.ContainsAny(v, " \t")
}

// unquote strips one pair of matching surrounding quotes.
func unquote(s string) string {
	if len(s) >= 2 && (s[0] == '"' || s[0] == '\'') && s[len(s)-1] == s[0] {
		return s[1 : len(s)-1]
	}
	return s
}

// assignment matches NAME=value where value is a quoted string or runs to
// the next whitespace.
var assignment = regexp.MustCompile(`([A-Za-z_][A-Za-z0-9_.-]*)=("(?:[^"\\]|\\.)*"?|'[^']*'?|[^\s"']*)`)

// credentialURL matches the password of user:password@ in URLs.
var credentialURL = regexp.MustCompile(`(?i)([a-z][a-z0-9+.-]*://[^/\s:@]*:)[^/\s@]+@`)

// credentialFlags matches credentials given on command lines:
// --password=..., --token ....
var credentialFlags = regexp.MustCompile(`(?i)((?:^|\s)(?:--password|--passwd|--token|--api-key|--secret)(?:\s+|=))("[^"]*"|'[^']*'|\S+)`)

// credentialUser matches the password of curl -u user:password and
// --user user:password (a bare user name or UID stays).
var credentialUser = regexp.MustCompile(`((?:^|\s)(?:-u|--user)(?:\s+|=)["']?[^\s"':]*:)[^\s"']+`)

// redact replaces the values of secret-named assignments, URL passwords
// and credential flags in s. Legacy "ENV NAME value" needs redactEnvLine.
func redact(s string) string {
	s = assignment.ReplaceAllStringFunc(s, func(m string) string {
		name, _, _ := strings.Cut(m, "=")
		if isSecretName(name) {
			return name + "=" + Redacted
		}
		return m
	})
	s = credentialURL.ReplaceAllString(s, "${1}"+Redacted+"@")
	s = credentialUser.ReplaceAllString(s, "${1}"+Redacted)
	return credentialFlags.ReplaceAllString(s, "${1}"+Redacted)
}

// legacyEnv matches the "ENV NAME value" form (one variable, value is the
// rest of the line) as the classic builder records it in history.
var legacyEnv = regexp.MustCompile(`(?is)^(.*?\b(?:ENV|ARG)\s+)([A-Za-z_][A-Za-z0-9_.-]*)([ \t]+)(.*)$`)

// redactInstruction redacts an instruction or history line, including the
// legacy ENV form whose value follows the name after whitespace.
func redactInstruction(s string) string {
	if m := legacyEnv.FindStringSubmatch(s); m != nil && !strings.Contains(m[2], "=") && isSecretName(m[2]) {
		return redact(m[1]) + m[2] + m[3] + Redacted
	}
	return redact(s)
}
