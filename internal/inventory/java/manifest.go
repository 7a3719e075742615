package java

import (
	"bytes"
	"strings"
)

// ParseManifest reads the main section of a JAR manifest (META-INF/MANIFEST.MF)
// into a map of header name to value. Lines end in CR LF, LF or CR; a line
// starting with a single space continues the previous one (manifests wrap at
// 72 bytes); the main section ends at the first empty line. Malformed lines
// are skipped.
func ParseManifest(b []byte) map[string]string {
	b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
	m := map[string]string{}
	var key string
	var val strings.Builder
	flush := func() {
		if key != "" {
			if _, dup := m[key]; !dup {
				m[key] = strings.TrimSpace(val.String())
			}
		}
		key = ""
		val.Reset()
	}
	for len(b) > 0 {
		var line []byte
		i := bytes.IndexAny(b, "\r\n")
		if i < 0 {
			line, b = b, nil
		} else {
			line = b[:i]
			if b[i] == '\r' && i+1 < len(b) && b[i+1] == '\n' {
				i++
			}
			b = b[i+1:]
		}
		switch {
		case len(line) == 0:
			flush()
			return m
		case line[0] == ' ':
			if key != "" {
				val.Write(line[1:])
			}
		default:
			flush()
			k, v, ok := bytes.Cut(line, []byte(":"))
			if !ok || len(k) == 0 {
				continue
			}
			key = string(bytes.TrimSpace(k))
			val.Write(bytes.TrimPrefix(v, []byte(" ")))
		}
	}
	flush()
	return m
}

// ParseProperties reads a Java properties file (as Maven writes
// pom.properties): "key=value", "key: value" or "key value" lines, "#" and
// "!" comments, backslash line continuations and escapes.
func ParseProperties(b []byte) map[string]string {
	m := map[string]string{}
	lines := strings.FieldsFunc(string(b), func(r rune) bool { return r == '\n' || r == '\r' })
	for i := 0; i < len(lines); i++ {
		line := strings.TrimLeft(lines[i], " \t\f")
		if line == "" || line[0] == '#' || line[0] == '!' {
			continue
		}
		for continues(line) && i+1 < len(lines) {
			i++
			line = line[:len(line)-1] + strings.TrimLeft(lines[i], " \t\f")
		}
		key, value := splitProperty(line)
		if key != "" {
			m[unescape(key)] = unescape(value)
		}
	}
	return m
}

// continues reports whether a line ends in an odd number of backslashes.
func continues(line string) bool {
	n := 0
	for i := len(line) - 1; i >= 0 && line[i] == '\\'; i-- {
		n++
	}
	return n%2 == 1
}

// splitProperty splits at the first unescaped '=', ':' or whitespace.
func splitProperty(line string) (key, value string) {
	for i := 0; i < len(line); i++ {
		switch line[i] {
		case '\\':
			i++
		case '=', ':':
			return line[:i], strings.TrimLeft(line[i+1:], " \t\f")
		case ' ', '\t', '\f':
			rest := strings.TrimLeft(line[i:], " \t\f")
			if rest != "" && (rest[0] == '=' || rest[0] == ':') {
				rest = strings.TrimLeft(rest[1:], " \t\f")
			}
			return line[:i], rest
		}
	}
	return line, ""
}

func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var sb strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 >= len(s) {
			sb.WriteByte(c)
			continue
		}
		i++
		switch s[i] {
		case 't':
			sb.WriteByte('\t')
		case 'n':
			sb.WriteByte('\n')
		case 'r':
			sb.WriteByte('\r')
		case 'f':
			sb.WriteByte('\f')
		default:
			sb.WriteByte(s[i])
		}
	}
	return sb.String()
}
