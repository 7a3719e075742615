package secret

import (
	"bytes"
	"encoding/base64"
	"regexp"
)

// Severities of findings.
const (
	SeverityCritical = "CRITICAL"
	SeverityHigh     = "HIGH"
	SeverityMedium   = "MEDIUM"
	SeverityLow      = "LOW"
)

// scope says which inputs a rule applies to.
type scope uint8

const (
	// scopeFile is the content of a file in a layer.
	scopeFile scope = 1 << iota
	// scopeDotenv is a file of KEY=value lines (.env files) and the ENV
	// and labels of the image config.
	scopeDotenv
	// scopeHistory is a build history line (the command of a RUN).
	scopeHistory

	scopeAll = scopeFile | scopeDotenv | scopeHistory
)

// Rule is one secret pattern.
type Rule struct {
	// ID names the rule in findings and in the custom rules file.
	ID string
	// Title is the one-line description used as the finding's title.
	Title string
	// Severity is CRITICAL, HIGH, MEDIUM or LOW.
	Severity string
	// Category is the provider or kind of credential ("AWS", "GitHub").
	Category string
	// Keywords are lowercase strings one of which must occur in the text
	// for the regex to run; the regex runs on the lines that hold them.
	Keywords []string
	// Regex finds the secret.
	Regex *regexp.Regexp
	// SecretGroup is the capture group that holds the secret value (0 for
	// the whole match).
	SecretGroup int
	// Entropy is the minimum Shannon entropy (bits per byte) of the
	// secret; 0 disables the check.
	Entropy float64
	// Path, when set, limits the rule to files whose path matches.
	Path *regexp.Regexp

	// builtin-only settings.

	// before and after bound the text around a keyword occurrence that
	// the regex sees (0 means defaultBefore and defaultAfter); a
	// single-line rule's text also ends at the end of the keyword's line.
	before, after int
	// multiline lets the text run past the end of the keyword's line.
	multiline bool
	// anchored marks a regex that matches only from a line start.
	anchored bool
	// need lists keywords that must all occur somewhere in the text.
	need []string
	// scope limits the inputs the rule applies to; zero means all.
	scope scope
	// placeholders enables the placeholder and documentation-word checks
	// on the secret (for rules whose secret is free text).
	placeholders bool
	// validate, when set, must accept the secret.
	validate func(secret []byte) bool
	// validateMatch, when set, must accept the match's groups (group 0
	// is the whole match; unmatched groups are nil).
	validateMatch func(groups [][]byte) bool
}

// secretKeys is the part of a variable or key name that marks its value
// as a secret in .env files, ENV, labels and assignments.
const secretKeys = `(?:PASSWORD|PASSWD|PASSPHRASE|SECRET|TOKEN|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY|AUTH_?KEY|APP_?KEY|SECRET_?KEY|SIGNING_?KEY|ENCRYPTION_?KEY|MASTER_?KEY|CREDENTIALS?|_PWD|_PASS)`

// builtinRules returns the built-in rules, most specific first: when two
// rules match the same bytes, the first one wins.
func builtinRules() []*Rule {
	re := regexp.MustCompile
	return []*Rule{
		{
			ID: "aws-access-key-id", Title: "AWS access key ID", Severity: SeverityCritical, Category: "AWS",
			Keywords: []string{"akia", "asia", "abia", "acca"},
			Regex:    re(`\b((?:AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16})\b`), SecretGroup: 1,
			validate: notPlaceholder,
		},
		{
			ID: "aws-secret-access-key", Title: "AWS secret access key", Severity: SeverityCritical, Category: "AWS",
			Keywords: []string{"secret_access_key", "secretaccesskey", "secret-access-key", "aws_secret", "awssecret"},
			Regex:    re(`(?i)(?:aws_?secret_?(?:access_?)?key|secret[_-]?access[_-]?key)["']?\s*(?:[:=]|=>)\s*["']?([A-Za-z0-9/+]{40})(?:[^A-Za-z0-9/+=]|$)`), SecretGroup: 1,
			Entropy: 3.5, placeholders: true,
		},
		{
			ID: "gcp-service-account-key", Title: "GCP service account key file", Severity: SeverityCritical, Category: "GCP",
			Keywords: []string{"private_key_id"}, need: []string{"service_account"},
			Regex: re(`"private_key_id"\s*:\s*"([0-9a-f]{40})"`), SecretGroup: 1,
		},
		{
			ID: "gcp-api-key", Title: "Google API key", Severity: SeverityHigh, Category: "GCP",
			Keywords: []string{"aiza"},
			Regex:    re(`\b(AIza[0-9A-Za-z_\-]{35})(?:[^0-9A-Za-z_\-]|$)`), SecretGroup: 1,
			validate: notPlaceholder,
		},
		{
			ID: "azure-storage-account-key", Title: "Azure storage account key", Severity: SeverityCritical, Category: "Azure",
			Keywords: []string{"accountkey"},
			Regex:    re(`(?i)AccountKey\s*=\s*([A-Za-z0-9+/]{86}==)`), SecretGroup: 1,
			Entropy: 4,
		},
		{
			ID: "azure-sas-token", Title: "Azure shared access signature", Severity: SeverityHigh, Category: "Azure",
			Keywords: []string{"sig="}, need: []string{"sv="},
			Regex: re(`[?&;]sv=\d{4}-\d\d-\d\d&[^\s"'<>]*?\bsig=([A-Za-z0-9%+/]{40,}(?:%3D|=)?)`), SecretGroup: 1,
		},
		{
			ID: "azure-client-secret", Title: "Azure AD client secret", Severity: SeverityHigh, Category: "Azure",
			Keywords: []string{"q~"},
			Regex:    re(`(?:^|[^A-Za-z0-9_~.\-])([A-Za-z0-9_~.\-]{3}\dQ~[A-Za-z0-9_~.\-]{31,34})(?:[^A-Za-z0-9_~.\-]|$)`), SecretGroup: 1,
			Entropy: 4,
		},
		{
			ID: "github-token", Title: "GitHub token", Severity: SeverityCritical, Category: "GitHub",
			Keywords: []string{"ghp_", "gho_", "ghu_", "ghs_", "ghr_"},
			Regex:    re(`\b((?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36})\b`), SecretGroup: 1,
			Entropy: 3.5,
		},
		{
			ID: "github-fine-grained-pat", Title: "GitHub fine-grained personal access token", Severity: SeverityCritical, Category: "GitHub",
			Keywords: []string{"github_pat_"},
			Regex:    re(`\b(github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59})\b`), SecretGroup: 1,
		},
		{
			ID: "gitlab-token", Title: "GitLab access token", Severity: SeverityCritical, Category: "GitLab",
			Keywords: []string{"glpat-", "gldt-", "glrt-", "glptt-"},
			Regex:    re(`\b((?:glpat|gldt|glrt|glptt)-[A-Za-z0-9_\-]{20,}(?:\.[0-9a-z]{2}\.[0-9a-z]{9})?)(?:[^A-Za-z0-9_\-.]|$)`), SecretGroup: 1,
			Entropy: 3.5,
		},
		{
			ID: "slack-token", Title: "Slack token", Severity: SeverityHigh, Category: "Slack",
			Keywords: []string{"xoxb-", "xoxp-", "xoxa-", "xoxr-", "xoxs-", "xoxe-", "xapp-"},
			Regex:    re(`\b((?:xox[abeprs]|xapp)-[0-9]{1,2}-?[0-9A-Za-z\-]{20,250})\b`), SecretGroup: 1,
			Entropy: 3,
		},
		{
			ID: "slack-webhook-url", Title: "Slack incoming webhook URL", Severity: SeverityHigh, Category: "Slack",
			Keywords: []string{"hooks.slack.com"},
			Regex:    re(`https://hooks\.slack\.com/(?:services|workflows|triggers)/([A-Za-z0-9+/_\-]{30,})`), SecretGroup: 1,
			validate: notPlaceholder,
		},
		{
			ID: "stripe-secret-key", Title: "Stripe live secret or restricted key", Severity: SeverityCritical, Category: "Stripe",
			Keywords: []string{"sk_live_", "rk_live_"},
			Regex:    re(`\b((?:sk|rk)_live_[0-9A-Za-z]{24,99})\b`), SecretGroup: 1,
			Entropy: 3.5,
		},
		{
			ID: "npm-access-token", Title: "npm access token", Severity: SeverityCritical, Category: "npm",
			Keywords: []string{"npm_"},
			Regex:    re(`\b(npm_[A-Za-z0-9]{36})\b`), SecretGroup: 1,
			Entropy: 3.5,
		},
		{
			ID: "pypi-upload-token", Title: "PyPI upload token", Severity: SeverityCritical, Category: "PyPI",
			Keywords: []string{"pypi-ageichlwas5vcmc"},
			Regex:    re(`\b(pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_\-]{50,})`), SecretGroup: 1,
		},
		{
			ID: "private-key", Title: "Private key", Severity: SeverityHigh, Category: "PrivateKey",
			Keywords: []string{"private key-----", "private key block-----"},
			// The header, optional RFC 1421 headers (Proc-Type, DEK-Info)
			// and the first line of the base64 body, with real or JSON
			// escaped newlines. Code that merely names the header has no
			// body and does not match.
			Regex:       re(`-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----(?:\r?\n|(?:\\r)?\\n)(?:[A-Za-z][A-Za-z\-]*: [^\r\n\\]*(?:\r?\n|(?:\\r)?\\n))*(?:\r?\n|(?:\\r)?\\n)?([A-Za-z0-9+/=]{40,})`),
			SecretGroup: 1, after: 1024, multiline: true, Entropy: 3.5,
		},
		{
			ID: "putty-private-key", Title: "PuTTY private key", Severity: SeverityHigh, Category: "PrivateKey",
			Keywords: []string{"putty-user-key-file-"},
			Regex:    re(`PuTTY-User-Key-File-\d+: [^\r\n]*\r?\n(?:[^\r\n]*\r?\n){0,64}?Private-Lines: \d+\r?\n([A-Za-z0-9+/=]{20,})`), SecretGroup: 1,
			after: 16 << 10, multiline: true, before: 64,
		},
		{
			ID: "kubernetes-service-account-token", Title: "Kubernetes service account token", Severity: SeverityHigh, Category: "Kubernetes",
			Keywords: []string{"eyj"}, Path: re(`/serviceaccount/token$`),
			Regex: re(`\A\s*(eyJ[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,})`), SecretGroup: 1,
			anchored: true,
		},
		{
			ID: "kubeconfig-client-key", Title: "Kubeconfig client key", Severity: SeverityHigh, Category: "Kubernetes",
			Keywords: []string{"client-key-data"},
			Regex:    re(`client-key-data:\s*["']?([A-Za-z0-9+/=]{40,})`), SecretGroup: 1,
			Entropy: 4,
		},
		{
			ID: "kubeconfig-token", Title: "Kubeconfig user token", Severity: SeverityHigh, Category: "Kubernetes",
			Keywords: []string{"token:"}, need: []string{"clusters:", "contexts:"},
			Regex: re(`(?m)^\s+(?:token|id-token|refresh-token):\s*["']?([A-Za-z0-9._\-~+/=]{20,})`), SecretGroup: 1,
			Entropy: 3.5, placeholders: true,
			anchored: true,
		},
		{
			ID: "docker-config-auth", Title: "Container registry credentials", Severity: SeverityHigh, Category: "Docker",
			Keywords: []string{`"auth"`}, need: []string{`"auths"`},
			Regex: re(`"auth"\s*:\s*"([A-Za-z0-9+/=]{8,})"`), SecretGroup: 1,
			validate: basicAuth,
		},
		{
			ID: "docker-config-identity-token", Title: "Container registry identity token", Severity: SeverityHigh, Category: "Docker",
			Keywords: []string{`"identitytoken"`, `"registrytoken"`}, need: []string{`"auths"`},
			Regex: re(`"(?:identitytoken|registrytoken)"\s*:\s*"([^"\s]{16,})"`), SecretGroup: 1,
			placeholders: true,
		},
		{
			ID: "npmrc-auth-token", Title: "npm registry credential in .npmrc", Severity: SeverityHigh, Category: "npm",
			Keywords: []string{"_authtoken", "_auth", "_password"}, Path: re(`(?:^|/)\.?npmrc$`),
			Regex: re(`(?m)(?:_authToken|_auth|_password)\s*=\s*["']?([^\s"'$]{8,})`), SecretGroup: 1,
			placeholders: true,
		},
		{
			ID: "jwt", Title: "JSON Web Token", Severity: SeverityMedium, Category: "JWT",
			Keywords: []string{"eyj"},
			Regex:    re(`\b(eyJ[A-Za-z0-9_\-]{10,}\.eyJ[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{16,})`), SecretGroup: 1,
			validate: jwtHeader,
		},
		{
			ID: "tls-key-log", Title: "TLS session keys (SSLKEYLOGFILE)", Severity: SeverityMedium, Category: "TLS",
			Keywords: []string{"client_random", "traffic_secret", "exporter_secret"},
			Regex:    re(`(?m)^(?:CLIENT_RANDOM|CLIENT_EARLY_TRAFFIC_SECRET|CLIENT_HANDSHAKE_TRAFFIC_SECRET|SERVER_HANDSHAKE_TRAFFIC_SECRET|CLIENT_TRAFFIC_SECRET_0|SERVER_TRAFFIC_SECRET_0|EXPORTER_SECRET) [0-9a-fA-F]{64} ([0-9a-fA-F]{64,96})\r?$`), SecretGroup: 1,
			anchored: true,
		},
		{
			ID: "url-password", Title: "Password in a URL", Severity: SeverityHigh, Category: "URL",
			Keywords:    []string{"://"},
			Regex:       re(`\b(?i:postgres(?:ql)?|mysql|mariadb|mongodb(?:\+srv)?|amqps?|rediss?|mssql|sqlserver|ftps?|sftp|smtps?|ldaps?|https?|nats|kafka|jdbc:[a-z]+)://([^:@/\s"'<>(){}\[\]\\]{0,128}):([^@/\s"'<>(){}\[\]\\]{4,256})@([A-Za-z0-9.\-_]+)(?::([A-Za-z0-9]*))?`),
			SecretGroup: 2, placeholders: true, validate: notVariable, validateMatch: realHost,
		},
		{
			ID: "jdbc-password", Title: "Password in a JDBC or ADO.NET connection string", Severity: SeverityHigh, Category: "URL",
			Keywords: []string{"password="},
			Regex:    re(`(?i)(?:jdbc:[a-z0-9]+:[^\s"'<>]*?[;?&]|(?:server|host|data source|hostname)=[^;"'\r\n]{1,256};[^"'\r\n]{0,256}?\b)password=([^;&\s"'<>]{1,256})`), SecretGroup: 1,
			placeholders: true, validate: notVariable,
		},
		{
			ID: "dotenv-secret", Title: "Secret in an environment variable", Severity: SeverityHigh, Category: "Generic",
			Keywords:    []string{"password", "passwd", "passphrase", "secret", "token", "key", "credential", "_pwd", "_pass"},
			Regex:       re(`(?m)^[ \t]*(?:export[ \t]+)?[A-Za-z0-9_.\-]*` + `(?i:` + secretKeys + `)[A-Za-z0-9_.\-]*[ \t]*=[ \t]*(?:"([^"\r\n]{6,})"|'([^'\r\n]{6,})'|([^\s"']{6,}))`),
			SecretGroup: -1, scope: scopeDotenv, Entropy: 3, placeholders: true, validate: notVariable,
			anchored: true,
		},
		{
			ID: "generic-secret-assignment", Title: "Hard-coded secret", Severity: SeverityMedium, Category: "Generic",
			Keywords: []string{"password", "passwd", "secret", "token", "api_key", "apikey"},
			// A quoted value of a key whose name says secret, in code and
			// structured config (JSON, YAML, Python, properties, INI).
			Regex:       re(`(?i)[A-Za-z0-9_.\-]*(?:password|passwd|secret|token|api_?key)[A-Za-z0-9_\-]*["']?[ \t]*(?:=|:|=>|:=)[ \t]*(?:"([^"\s]{12,256})"|'([^'\s]{12,256})')`),
			SecretGroup: -1, scope: scopeFile, Entropy: 3.7, placeholders: true, validate: tokenLike,
		},
		{
			ID: "properties-password", Title: "Password in a configuration file", Severity: SeverityHigh, Category: "Generic",
			Keywords: []string{"password", "passwd", "secret"}, Path: re(`(?i)\.(?:properties|ini|cfg|conf|pypirc|env)$|(?:^|/)\.pypirc$|/application[^/]*\.ya?ml$`),
			Regex:       re(`(?im)^[ \t]*[A-Za-z0-9_.\-]*(?:password|passwd|secret)[A-Za-z0-9_.\-]*[ \t]*[=:][ \t]*([^\s"'$][^\s"']{7,255})[ \t]*\r?$`),
			SecretGroup: 1, scope: scopeFile, Entropy: 2.5, placeholders: true, validate: notVariable,
			anchored: true,
		},
		{
			ID: "history-secret-argument", Title: "Secret passed on a build command line", Severity: SeverityHigh, Category: "Generic",
			Keywords:    []string{"--pass", "--token", "--secret", "--api-key", "mysql", "mariadb", "sshpass"},
			Regex:       re(`(?i)(?:--(?:password|passwd|pass|token|secret|api-key|apikey)(?:=|[ \t]+)|(?:^|[\s;&|(])(?:mysql|mysqladmin|mysqldump|mariadb)[ \t][^;&|\n]*?[ \t]-p|\bsshpass[ \t]+-p[ \t]*)["']?([^\s"'$;&|<>]{4,})`),
			SecretGroup: 1, scope: scopeHistory, placeholders: true, validate: notVariable,
		},
		{
			ID: "history-secret-assignment", Title: "Secret assigned in a build command", Severity: SeverityHigh, Category: "Generic",
			Keywords:    []string{"password", "passwd", "secret", "token", "key", "_pwd", "_pass"},
			Regex:       re(`(?:^|[\s;&|(])(?:export[ \t]+)?[A-Za-z0-9_]*(?i:` + secretKeys + `)[A-Za-z0-9_]*=(?:"([^"\s$]{6,})"|'([^'\s]{6,})'|([^\s"'$;&|]{6,}))`),
			SecretGroup: -1, scope: scopeHistory, Entropy: 2.5, placeholders: true, validate: notVariable,
		},
	}
}

// docHosts are host names documentation uses in sample URLs.
var docHosts = map[string]bool{
	"host": true, "hostname": true, "proxyhost": true, "proxy": true, "server": true, "servername": true,
	"domain": true, "yourhost": true, "myhost": true, "dbhost": true, "db-host": true, "remotehost": true,
}

// realHost accepts a URL match (groups: user, password, host, port) whose
// host is not a documentation name (RFC 2606 reserved names and the
// usual stand-ins) and whose port, if any, is a number.
func realHost(g [][]byte) bool {
	host := bytes.ToLower(g[3])
	for _, suffix := range []string{".test", ".invalid", ".example", ".local.example"} {
		if bytes.HasSuffix(host, []byte(suffix)) {
			return false
		}
	}
	if !notPlaceholder(host) || docHosts[string(host)] {
		return false
	}
	for _, c := range g[4] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return !bytes.Equal(g[1], g[2])
}

// tokenLike accepts a free-text secret that looks generated or chosen as
// a password: letters and digits, no URL, no qualified name.
func tokenLike(secret []byte) bool {
	if !notVariable(secret) || bytes.Contains(secret, []byte("://")) || bytes.Contains(secret, []byte("::")) {
		return false
	}
	var letter, digit bool
	for _, c := range secret {
		switch {
		case 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z':
			letter = true
		case '0' <= c && c <= '9':
			digit = true
		}
	}
	return letter && digit
}

// jwtHeader accepts a JWT whose header decodes to JSON with an "alg".
func jwtHeader(secret []byte) bool {
	dot := bytes.IndexByte(secret, '.')
	if dot < 0 {
		return false
	}
	h, err := base64.RawURLEncoding.DecodeString(string(secret[:dot]))
	if err != nil {
		return false
	}
	return bytes.Contains(h, []byte(`"alg"`)) && !bytes.Contains(h, []byte(`"none"`))
}

// basicAuth accepts base64 of "user:password" with a non-placeholder
// password.
func basicAuth(secret []byte) bool {
	b, err := base64.StdEncoding.DecodeString(string(secret))
	if err != nil {
		return false
	}
	i := bytes.IndexByte(b, ':')
	if i <= 0 || i == len(b)-1 {
		return false
	}
	return notPlaceholder(b[i+1:]) && !docWord(b[i+1:])
}
