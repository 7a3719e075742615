package runtimepolicy

import (
	"errors"
	"strings"
	"testing"
)

func TestCriteriaMatches(t *testing.T) {
	web := Workload{Host: "node-1", Container: "web-1", Image: "registry.example/team-a/web:1.2",
		Labels: map[string]string{"app": "web", "tier": "front"}, Namespace: "prod-eu", Pod: "web-abc", Cluster: "eu1"}
	hub := Workload{Host: "build-2", Container: "debug-shell", Image: "busybox", Namespace: "dev"}
	for _, tc := range []struct {
		expr     string
		web, hub bool
	}{
		{``, true, true},
		{`namespace == "prod*"`, true, false},
		{`namespace != "prod*"`, false, true},
		{`label["app"] == "web"`, true, false},
		{`label["app"] == ""`, false, true},
		{`label["missing"] != ""`, false, false},
		{`image == "registry.example/team-a/*"`, true, false},
		{`image == "registry.example/team-a/web:1.2"`, true, false},
		{`image == "docker.io/library/busybox"`, false, true},
		{`image == "busybox"`, false, true},
		{`registry == "docker.io"`, false, true},
		{`registry == "registry.example"`, true, false},
		{`host == "node-*"`, true, false},
		{`pod == "web-???"`, true, false},
		{`cluster == "eu1"`, true, false},
		{`container == "debug*"`, false, true},
		{`!(container == "debug*")`, true, false},
		{`!!(container == "debug*")`, false, true},
		{`namespace == "prod*" && label["app"] == "web" || image == "**busybox"`, true, true},
		{`namespace == "prod*" && (label["app"] == "api" || host == "node-*")`, true, false},
		{`namespace == "prod*" && label["app"] == "api" || host == "node-*"`, true, false},
		{`namespace == "dev" || namespace == "prod-eu" && container == "nope"`, false, true},
		{"namespace==\"a\\\"b\" || namespace == \"dev\"", false, true},
	} {
		c, err := ParseCriteria(tc.expr)
		if err != nil {
			t.Errorf("ParseCriteria(%q): %v", tc.expr, err)
			continue
		}
		if got := c.Matches(web); got != tc.web {
			t.Errorf("%q matches web = %v, want %v", tc.expr, got, tc.web)
		}
		if got := c.Matches(hub); got != tc.hub {
			t.Errorf("%q matches hub = %v, want %v", tc.expr, got, tc.hub)
		}
		if c.String() != tc.expr && strings.TrimSpace(tc.expr) != "" {
			t.Errorf("String() = %q", c.String())
		}
	}
}

func TestCriteriaErrors(t *testing.T) {
	deep := strings.Repeat("(", MaxCriteriaDepth+1) + `host == "a"` + strings.Repeat(")", MaxCriteriaDepth+1)
	for _, tc := range []struct {
		expr string
		col  int
		want string
	}{
		{`namespace = "a"`, 11, "unexpected character '='"},
		{`namespace == a`, 14, "want a quoted string"},
		{`namespace == "a`, 14, "string is not closed"},
		{`colour == "red"`, 1, `unknown field "colour"`},
		{`label == "x"`, 7, `want ["key"] after label`},
		{`label[""] == "x"`, 7, "want a label key string"},
		{`label["a" == "x"`, 11, `want "]"`},
		{`host == "a" &&`, 15, "want a field"},
		{`host == "a" host == "b"`, 13, "unexpected \"host\" after the end"},
		{`(host == "a"`, 13, `want ")"`},
		{`host == "a b"`, 9, "whitespace"},
		{`host == "[ab]"`, 9, "not supported"},
		{`host == "a\n"`, 11, `only \" and \\ are escapes`},
		{`host == "é" && $`, 17, "unexpected character '$'"},
		{"host\n== \"a\n\"", 11, "newline in a string"},
		{deep, MaxCriteriaDepth + 1, "nested deeper than"},
		{strings.Repeat("a", MaxCriteriaLen+1), MaxCriteriaLen + 1, "longer than"},
		{"host == \"\xff\"", 1, "invalid UTF-8"},
		{`host`, 5, "want == or !="},
	} {
		_, err := ParseCriteria(tc.expr)
		var ce *CriteriaError
		if !errors.As(err, &ce) {
			t.Errorf("ParseCriteria(%.40q) error = %v, want a CriteriaError", tc.expr, err)
			continue
		}
		if ce.Column != tc.col || !strings.Contains(ce.Msg, tc.want) {
			t.Errorf("ParseCriteria(%.40q) = column %d %q, want column %d %q", tc.expr, ce.Column, ce.Msg, tc.col, tc.want)
		}
		if !strings.HasPrefix(err.Error(), "criteria: column ") {
			t.Errorf("error text %q", err)
		}
	}
}

func TestRepository(t *testing.T) {
	for _, tc := range []struct{ in, repo, reg string }{
		{"nginx", "docker.io/library/nginx", "docker.io"},
		{"nginx:1.27", "docker.io/library/nginx", "docker.io"},
		{"team/app@sha256:abc", "docker.io/team/app", "docker.io"},
		{"registry.example:5000/a/b:tag", "registry.example:5000/a/b", "registry.example:5000"},
		{"localhost/x", "localhost/x", "localhost"},
		{"ghcr.io/o/r:1@sha256:abc", "ghcr.io/o/r", "ghcr.io"},
		{"", "", ""},
	} {
		repo, reg := Repository(tc.in)
		if repo != tc.repo || reg != tc.reg {
			t.Errorf("Repository(%q) = %q, %q, want %q, %q", tc.in, repo, reg, tc.repo, tc.reg)
		}
	}
}
