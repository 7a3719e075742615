package gobinary

import (
	"slices"
	"testing"

	"github.com/mamorisec/mamori/internal/inventory"
)

func TestNormalizeSymbol(t *testing.T) {
	tests := []struct {
		in, pkg, name string
		ok            bool
	}{
		{"net/http.(*Client).Do", "net/http", "Client.Do", true},
		{"golang.org/x/text/language.Parse", "golang.org/x/text/language", "Parse", true},
		{"gopkg.in/yaml%2ev2.Unmarshal", "gopkg.in/yaml.v2", "Unmarshal", true}, // as the linker writes it
		{"sync.(*Map[go.shape.string,go.shape.int]).Load", "sync", "Map.Load", true},
		{"github.com/a/b.F.func1", "github.com/a/b", "F.func1", true},
		{"type:.eq.[2]interface {}", "", "", false},
		{"go:buildid", "", "", false},
		{"main.main", "", "", false},
		{"noDot", "", "", false},
	}
	for _, tt := range tests {
		pkg, name, ok := NormalizeSymbol(tt.in)
		if pkg != tt.pkg || name != tt.name || ok != tt.ok {
			t.Errorf("NormalizeSymbol(%q) = %q, %q, %v; want %q, %q, %v", tt.in, pkg, name, ok, tt.pkg, tt.name, tt.ok)
		}
	}
}

func TestAssignSymbols(t *testing.T) {
	pkgs := []inventory.Package{
		{Name: "example.com/app", Metadata: map[string]string{"mainModule": "true"}},
		{Name: "golang.org/x/text"},
		{Name: "golang.org/x/text/v2"}, // a nested module wins over its parent
		{Name: "github.com/fork/net", Metadata: map[string]string{"replaces": "golang.org/x/net@v0.1.0"}},
		{Name: "github.com/unused/mod"},
		{Name: "stdlib"},
	}
	AssignSymbols(pkgs, []string{
		"golang.org/x/text/language.Parse",
		"golang.org/x/text/v2/x.Y",
		"golang.org/x/net/http2.(*Framer).ReadFrame",
		"golang.org/x/net/http2.(*Framer).ReadFrame.func2",
		"net/http.(*Server).Serve",
		"example.com/app/internal/x.Run",
		"type:.eq.foo",
	})
	want := map[string][]string{
		"example.com/app":       {"example.com/app/internal/x.Run"},
		"golang.org/x/text":     {"golang.org/x/text/language.Parse"},
		"golang.org/x/text/v2":  {"golang.org/x/text/v2/x.Y"},
		"github.com/fork/net":   {"golang.org/x/net/http2.Framer.ReadFrame", "golang.org/x/net/http2.Framer.ReadFrame.func2"},
		"github.com/unused/mod": {},
		"stdlib":                {"net/http.Server.Serve"},
	}
	for _, p := range pkgs {
		if !slices.Equal(p.Symbols, want[p.Name]) || p.Symbols == nil {
			t.Errorf("%s: symbols %q, want %q", p.Name, p.Symbols, want[p.Name])
		}
	}
}
