package store

import (
	"context"
	"fmt"
	"strings"

	"github.com/mamorisec/mamori/internal/inventory"
	"github.com/mamorisec/mamori/internal/server/query"
	"github.com/mamorisec/mamori/internal/version"
)

// CrossImageOptions page the results of a cross-image query.
type CrossImageOptions struct {
	// Limit is the page size (0: DefaultLimit, at most MaxLimit).
	Limit int
	// Cursor is Page.Next of the previous page.
	Cursor string
	// Scope, when non-nil, restricts the images searched.
	Scope *Scope
}

func (o CrossImageOptions) limit() int { return ListOptions{Limit: o.Limit}.limit() }

// idOrder is the order of cross-image results: by row id.
var idOrder, _ = (&query.Schema{Resource: "results", ID: "id"}).Order(nil, nil)

// ImagesWithVulnerability returns the images whose latest scan has a
// finding whose ID or one of whose aliases is id (case-insensitive),
// ordered by image id.
func (s *Store) ImagesWithVulnerability(ctx context.Context, id string, opts CrossImageOptions) (Page[Image], error) {
	id = upper(id)
	if id == "" || len(id) > 256 {
		return Page[Image]{}, invalidf("vulnerability ID %q: want 1 to 256 characters", id)
	}
	args := s.args()
	conds := []string{"EXISTS (SELECT 1 FROM vulnerability_ids x WHERE x.vuln_id = " + args.Add(id) + " AND x.scan_id = i.latest_scan_id)"}
	if c := opts.Scope.sql("i", args); c != "" {
		conds = append(conds, c)
	}
	if opts.Cursor != "" {
		vals, err := idOrder.DecodeCursor(opts.Cursor)
		if err != nil {
			return Page[Image]{}, asInvalid(err)
		}
		conds = append(conds, "i.id > "+args.Add(vals[0]))
	}
	limit := opts.limit()
	q := fmt.Sprintf("SELECT %s FROM %s WHERE %s ORDER BY i.id LIMIT %d", imageCols, imageFrom, strings.Join(conds, " AND "), limit+1)
	rows, err := s.db.QueryContext(ctx, q, args.Values...)
	if err != nil {
		return Page[Image]{}, fmt.Errorf("images with %s: %w", id, err)
	}
	defer rows.Close()
	var page Page[Image]
	for rows.Next() {
		if len(page.Items) == limit {
			page.Next, err = idOrder.EncodeCursor([]any{page.Items[limit-1].ID})
			if err != nil {
				return Page[Image]{}, err
			}
			break
		}
		var im Image
		if err := rows.Scan(scanImage(&im)...); err != nil {
			return Page[Image]{}, fmt.Errorf("images with %s: %w", id, err)
		}
		page.Items = append(page.Items, im)
	}
	if err := rows.Err(); err != nil {
		return Page[Image]{}, fmt.Errorf("images with %s: %w", id, err)
	}
	return page, nil
}

// PackageHit is a package of an image's latest scan that a cross-image
// package query matched.
type PackageHit struct {
	Image   Image   `json:"image"`
	Package Package `json:"package"`
}

// ecosystems maps package types to the version schemes of package version.
var ecosystems = map[string]string{
	inventory.TypeDeb:      "Debian",
	inventory.TypeAPK:      "Alpine",
	inventory.TypeRPM:      "Red Hat",
	inventory.TypeNPM:      "npm",
	inventory.TypePyPI:     "PyPI",
	inventory.TypeGolang:   "Go",
	inventory.TypeMaven:    "Maven",
	inventory.TypeGem:      "RubyGems",
	inventory.TypeComposer: "Packagist",
	inventory.TypeCargo:    "crates.io",
	inventory.TypeNuGet:    "NuGet",
}

// Constraint is a parsed version constraint: all its comparisons hold.
type Constraint struct {
	ecosystem string
	terms     []constraintTerm
}

type constraintTerm struct {
	op string
	v  version.Version
}

// ParseConstraint parses a version constraint for packages of type typ:
// comparisons joined by ',' that must all hold, each an operator (<, <=,
// >, >=, =, !=) and a version, for example "< 2.17.1" or ">=2.0,<2.17.1".
// The empty constraint matches every version.
func ParseConstraint(typ, s string) (*Constraint, error) {
	eco, ok := ecosystems[typ]
	if !ok {
		return nil, invalidf("package type %q: no known version scheme (known: deb, apk, rpm, npm, pypi, golang, maven, gem, composer, cargo, nuget)", typ)
	}
	c := &Constraint{ecosystem: eco}
	if strings.TrimSpace(s) == "" {
		return c, nil
	}
	if len(s) > 1024 {
		return nil, invalidf("version constraint longer than 1024 bytes")
	}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		op := ""
		for _, o := range []string{"<=", ">=", "!=", "==", "<", ">", "="} {
			if strings.HasPrefix(part, o) {
				op = o
				break
			}
		}
		if op == "" {
			return nil, invalidf("version constraint %q: %q does not start with <, <=, >, >=, = or !=", s, part)
		}
		v, err := version.Parse(eco, strings.TrimSpace(part[len(op):]))
		if err != nil {
			return nil, invalidf("version constraint %q: %w", s, err)
		}
		if op == "==" {
			op = "="
		}
		c.terms = append(c.terms, constraintTerm{op: op, v: v})
	}
	return c, nil
}

// Match reports whether version v satisfies the constraint. A version the
// ecosystem's scheme cannot parse matches no non-empty constraint.
func (c *Constraint) Match(v string) bool {
	if len(c.terms) == 0 {
		return true
	}
	pv, err := version.Parse(c.ecosystem, v)
	if err != nil {
		return false
	}
	for _, t := range c.terms {
		r, err := pv.CompareVersion(t.v)
		if err != nil {
			return false
		}
		ok := false
		switch t.op {
		case "<":
			ok = r < 0
		case "<=":
			ok = r <= 0
		case ">":
			ok = r > 0
		case ">=":
			ok = r >= 0
		case "=":
			ok = r == 0
		case "!=":
			ok = r != 0
		}
		if !ok {
			return false
		}
	}
	return true
}

// candidateBatch is how many candidate rows ImagesWithPackage reads at a
// time while filtering versions in Go.
const candidateBatch = 1000

// ImagesWithPackage returns the packages of type typ and name name in the
// images' latest scans whose version satisfies versionConstraint (see
// ParseConstraint), with their images, ordered by package row. Candidates
// are selected by type and name in SQL and their versions compared in Go
// under the ecosystem's version scheme.
func (s *Store) ImagesWithPackage(ctx context.Context, typ, name, versionConstraint string, opts CrossImageOptions) (Page[PackageHit], error) {
	c, err := ParseConstraint(typ, versionConstraint)
	if err != nil {
		return Page[PackageHit]{}, err
	}
	var after int64
	if opts.Cursor != "" {
		vals, err := idOrder.DecodeCursor(opts.Cursor)
		if err != nil {
			return Page[PackageHit]{}, asInvalid(err)
		}
		after = vals[0].(int64)
	}
	limit := opts.limit()
	var page Page[PackageHit]
	for {
		args := s.args()
		conds := []string{"t.type = " + args.Add(typ), "t.name = " + args.Add(name), "t.id > " + args.Add(after)}
		if sc := opts.Scope.sql("i", args); sc != "" {
			conds = append(conds, sc)
		}
		q := fmt.Sprintf("SELECT %s, %s FROM packages t JOIN images i ON i.latest_scan_id = t.scan_id LEFT JOIN scans ls ON ls.id = i.latest_scan_id WHERE %s ORDER BY t.id LIMIT %d",
			packageCols, imageCols, strings.Join(conds, " AND "), candidateBatch)
		rows, err := s.db.QueryContext(ctx, q, args.Values...)
		if err != nil {
			return Page[PackageHit]{}, fmt.Errorf("images with %s package %s: %w", typ, name, err)
		}
		n := 0
		for rows.Next() {
			n++
			var h PackageHit
			if err := rows.Scan(append(scanPackage(&h.Package), scanImage(&h.Image)...)...); err != nil {
				rows.Close()
				return Page[PackageHit]{}, fmt.Errorf("images with %s package %s: %w", typ, name, err)
			}
			after = h.Package.ID
			if !c.Match(h.Package.Version) {
				continue
			}
			if len(page.Items) == limit {
				rows.Close()
				page.Next, err = idOrder.EncodeCursor([]any{page.Items[limit-1].Package.ID})
				return page, err
			}
			page.Items = append(page.Items, h)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return Page[PackageHit]{}, fmt.Errorf("images with %s package %s: %w", typ, name, err)
		}
		if n < candidateBatch {
			return page, nil
		}
	}
}
