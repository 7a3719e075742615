package store

import (
	"context"
	"database/sql"
	"fmt"
	"regexp"
	"strings"

	"github.com/mamorisec/mamori/internal/server/query"
)

// Page sizes.
const (
	// DefaultLimit is the page size when ListOptions.Limit is 0.
	DefaultLimit = 50
	// MaxLimit is the largest page size; larger limits are lowered to it.
	MaxLimit = 500
)

// ListOptions select, order and page the rows of a list.
//
// Pages are keyset pages: Next in a Page is an opaque cursor holding the
// last row's sort values, and the next page is the rows after them. Unlike
// OFFSET, a deep page costs the same as the first (the database seeks the
// index instead of counting skipped rows) and rows inserted meanwhile do
// not shift or repeat rows across pages. A cursor is only valid with the
// same Sort; Filter and Scope may not change between pages either.
type ListOptions struct {
	// Filter is a query filter expression ("severity=CRITICAL;fixable=true").
	Filter string
	// Sort is a query sort expression ("-severity,package"); each resource
	// has a default order.
	Sort string
	// Limit is the page size: 0 means DefaultLimit, more than MaxLimit is
	// MaxLimit.
	Limit int
	// Cursor is Page.Next of the previous page, "" for the first page.
	Cursor string
	// Scope, when non-nil, restricts the rows to the images it allows.
	Scope *Scope
	// History, for findings, includes the findings of every scan instead
	// of only each image's latest scan.
	History bool
}

// Page is one page of a list.
type Page[T any] struct {
	Items []T
	// Next is the cursor of the next page, "" on the last page.
	Next string
}

// Scope restricts image-related rows (images, scans, findings, packages,
// licenses, and the images of cross-image queries) to what an application
// scope allows. A nil *Scope means unrestricted. A non-nil Scope allows an
// image when ANY of its entries matches it; an empty Scope allows nothing
// (deny by default).
type Scope struct {
	// Registries are registry hosts whose images are all allowed
	// ("registry.example.com", "docker.io"), compared exactly.
	Registries []string
	// Repositories are "registry/repository" names whose images are all
	// allowed ("docker.io/library/nginx"), compared exactly.
	Repositories []string
	// Images are globs over the image reference "registry/repository:tag"
	// where '*' matches any run of characters (including '/') and '?' one
	// character ("docker.io/library/*", "*/payments/*:prod-*"). An image
	// scanned by digest only has the reference "registry/repository@digest".
	Images []string
	// Match lists conjunctions of regular expressions over
	// "registry/repository": an image is allowed when every expression of
	// one conjunction matches (unanchored unless the expression anchors
	// itself). The syntax is the part RE2 (Go) and PostgreSQL's ARE share:
	// literals, backslash escapes, ., [classes], *, +, ?, {n,m}, (?:), |,
	// ^ and $. SQLite evaluates them with Go's regexp package, PostgreSQL
	// with its ~ operator. A conjunction holding an expression Go cannot
	// compile allows nothing.
	Match [][]string
}

// sql returns the condition restricting the image whose columns are
// prefixed by alias (for example "i"), or "" for a nil scope.
func (sc *Scope) sql(alias string, args *query.Args) string {
	if sc == nil {
		return ""
	}
	var ors []string
	for _, r := range sc.Registries {
		ors = append(ors, fmt.Sprintf("%s.registry = %s", alias, args.Add(r)))
	}
	for _, r := range sc.Repositories {
		reg, repo, ok := strings.Cut(r, "/")
		if !ok {
			continue
		}
		ors = append(ors, fmt.Sprintf("(%s.registry = %s AND %s.repository = %s)", alias, args.Add(reg), alias, args.Add(repo)))
	}
	for _, g := range sc.Images {
		ors = append(ors, fmt.Sprintf("%s.ref LIKE %s ESCAPE '\\'", alias, args.Add(query.GlobToLike(g))))
	}
	for _, conj := range sc.Match {
		if c := matchSQL(conj, alias, args); c != "" {
			ors = append(ors, c)
		}
	}
	if len(ors) == 0 {
		return "1=0"
	}
	return "(" + strings.Join(ors, " OR ") + ")"
}

// listSpec describes how to list one resource.
type listSpec[T any] struct {
	schema *query.Schema
	// from is the FROM clause, with the image joined as "i" when scoped.
	from string
	// cols is the select list for scan.
	cols string
	// scan returns the destinations of cols in a row.
	scan func(*T) []any
	// def is the default order.
	def []query.SortKey
	// scoped says the image is joined as "i" and Scope applies.
	scoped bool
	// where are fixed conditions, with their args added by the caller
	// through the args function.
	where func(args *query.Args) []string
}

// limit returns the effective page size.
func (o ListOptions) limit() int {
	switch {
	case o.Limit <= 0:
		return DefaultLimit
	case o.Limit > MaxLimit:
		return MaxLimit
	}
	return o.Limit
}

// conditions returns the WHERE conditions for filter, scope and fixed
// conditions.
func (spec *listSpec[T]) conditions(opts ListOptions, args *query.Args) ([]string, error) {
	f, err := query.ParseFilter(opts.Filter)
	if err != nil {
		return nil, err
	}
	cond, err := spec.schema.Compile(f, args)
	if err != nil {
		return nil, err
	}
	conds := []string{cond}
	if spec.scoped {
		if sc := opts.Scope.sql("i", args); sc != "" {
			conds = append(conds, sc)
		}
	}
	if spec.where != nil {
		conds = append(conds, spec.where(args)...)
	}
	return conds, nil
}

// list returns one page of the resource.
func list[T any](ctx context.Context, s *Store, spec *listSpec[T], opts ListOptions) (Page[T], error) {
	keys, err := query.ParseSort(opts.Sort)
	if err != nil {
		return Page[T]{}, asInvalid(err)
	}
	order, err := spec.schema.Order(keys, spec.def)
	if err != nil {
		return Page[T]{}, asInvalid(err)
	}
	args := s.args()
	conds, err := spec.conditions(opts, args)
	if err != nil {
		return Page[T]{}, asInvalid(err)
	}
	if opts.Cursor != "" {
		vals, err := order.DecodeCursor(opts.Cursor)
		if err != nil {
			return Page[T]{}, asInvalid(err)
		}
		conds = append(conds, order.After(vals, args))
	}
	limit := opts.limit()
	q := fmt.Sprintf("SELECT %s, %s FROM %s WHERE %s ORDER BY %s LIMIT %d",
		spec.cols, strings.Join(order.Columns(), ", "), spec.from, strings.Join(conds, " AND "), order.SQL(), limit+1)
	rows, err := s.db.QueryContext(ctx, q, args.Values...)
	if err != nil {
		return Page[T]{}, fmt.Errorf("listing %s: %w", spec.schema.Resource, err)
	}
	defer rows.Close()
	var page Page[T]
	var last []any
	for rows.Next() {
		if len(page.Items) == limit {
			c, err := order.EncodeCursor(last)
			if err != nil {
				return Page[T]{}, err
			}
			page.Next = c
			break
		}
		var item T
		keyVals := make([]any, len(order.Columns()))
		dest := spec.scan(&item)
		for i := range keyVals {
			dest = append(dest, &keyVals[i])
		}
		if err := rows.Scan(dest...); err != nil {
			return Page[T]{}, fmt.Errorf("listing %s: %w", spec.schema.Resource, err)
		}
		page.Items = append(page.Items, item)
		last = keyVals
	}
	if err := rows.Err(); err != nil {
		return Page[T]{}, fmt.Errorf("listing %s: %w", spec.schema.Resource, err)
	}
	return page, nil
}

// count returns the number of rows the filter and scope select.
func count[T any](ctx context.Context, s *Store, spec *listSpec[T], opts ListOptions) (int64, error) {
	args := s.args()
	conds, err := spec.conditions(opts, args)
	if err != nil {
		return 0, asInvalid(err)
	}
	var n int64
	q := fmt.Sprintf("SELECT COUNT(*) FROM %s WHERE %s", spec.from, strings.Join(conds, " AND "))
	if err := s.db.QueryRowContext(ctx, q, args.Values...).Scan(&n); err != nil {
		return 0, fmt.Errorf("counting %s: %w", spec.schema.Resource, err)
	}
	return n, nil
}

// scanRow scans one row of a fixed query into the destinations of scan.
func scanRow[T any](row *sql.Row, scan func(*T) []any, what string) (T, error) {
	var item T
	err := row.Scan(scan(&item)...)
	return item, dbErr(err, what)
}

// matchSQL returns the condition that every regular expression of conj
// matches the image's "registry/repository", or "" when conj is empty or
// holds an invalid expression.
func matchSQL(conj []string, alias string, args *query.Args) string {
	var ands []string
	name := fmt.Sprintf("(%s.registry || '/' || %s.repository)", alias, alias)
	for _, re := range conj {
		if _, err := regexp.Compile(re); err != nil || len(re) > maxRegexpLen {
			return ""
		}
		if args.Dialect == query.Postgres {
			ands = append(ands, fmt.Sprintf("%s ~ %s", name, args.Add(re)))
		} else {
			ands = append(ands, fmt.Sprintf("mamori_regexp(%s, %s) = 1", args.Add(re), name))
		}
	}
	if len(ands) == 0 {
		return ""
	}
	return "(" + strings.Join(ands, " AND ") + ")"
}
