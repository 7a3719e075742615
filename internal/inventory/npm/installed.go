package npm

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/mamorisec/mamori/internal/inventory"
)

type installed struct{}

// NewInstalled returns the extractor for packages installed in node_modules
// (their package.json files).
func NewInstalled() inventory.Extractor { return installed{} }

func (installed) Name() string { return "language/npm/installed" }

func (installed) Version() int { return 1 }

// Required accepts node_modules/NAME/package.json and
// node_modules/@SCOPE/NAME/package.json, at any node_modules nesting depth.
func (installed) Required(fi inventory.FileInfo) bool {
	dir, ok := strings.CutSuffix(fi.Path, "/package.json")
	if !ok {
		return false
	}
	i := strings.LastIndex(dir, "/node_modules/")
	if i < 0 {
		return false
	}
	scope, name, scoped := strings.Cut(dir[i+len("/node_modules/"):], "/")
	if !scoped {
		return validSegment(scope)
	}
	return strings.HasPrefix(scope, "@") && validSegment(scope[1:]) && validSegment(name)
}

// validSegment reports whether s can be one path segment of a package name.
// Directories starting with "." (.bin, .pnpm, .cache) hold no package, and
// "@" starts a scope, not a name.
func validSegment(s string) bool {
	return s != "" && s[0] != '.' && s[0] != '@' && !strings.Contains(s, "/")
}

func (installed) Extract(_ context.Context, in *inventory.Input) (inventory.Result, error) {
	b, err := inventory.ReadAllLimited(in.Reader, inventory.MaxManifestSize)
	if err != nil {
		return inventory.Result{}, fmt.Errorf("%s: %w", in.Path, err)
	}
	p, err := ParsePackageJSON(b)
	if err != nil {
		return inventory.Result{}, fmt.Errorf("%s: %w", in.Path, err)
	}
	if p == nil {
		return inventory.Result{}, nil
	}
	return inventory.Result{Packages: []inventory.Package{*p}}, nil
}

type packageJSON struct {
	Name     json.RawMessage `json:"name"`
	Version  json.RawMessage `json:"version"`
	License  json.RawMessage `json:"license"`
	Licenses json.RawMessage `json:"licenses"`
}

// ParsePackageJSON reads an installed package's package.json. It returns
// nil without an error when the file has no name or no version (such
// files are placeholders, not installed packages).
func ParsePackageJSON(b []byte) (*inventory.Package, error) {
	var pj packageJSON
	if err := json.Unmarshal(b, &pj); err != nil {
		return nil, fmt.Errorf("parsing package.json: %w", err)
	}
	name, err := jsonString(pj.Name, "name")
	if err != nil {
		return nil, err
	}
	version, err := jsonString(pj.Version, "version")
	if err != nil {
		return nil, err
	}
	if name == "" || version == "" {
		return nil, nil
	}
	p := newPackage(name, version, parseLicenses(pj.License, pj.Licenses), false)
	return &p, nil
}

// jsonString decodes an optional string field; null or absent gives "".
func jsonString(raw json.RawMessage, field string) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", fmt.Errorf("parsing package.json: %q is not a string", field)
	}
	return strings.TrimSpace(s), nil
}
