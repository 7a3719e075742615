package query

import (
	"reflect"
	"strings"
	"testing"
)

var testSchema = &Schema{
	Resource: "vulnerabilities",
	ID:       "v.id",
	Fields: []Field{
		{Name: "severity", Column: "v.severity", Type: Enum, Values: []string{"UNKNOWN", "NEGLIGIBLE", "LOW", "MEDIUM", "HIGH", "CRITICAL"}, Ordinal: true},
		{Name: "status", Column: "v.status", Type: Enum, Values: []string{"fixed", "not-fixed"}},
		{Name: "fixable", Column: "v.fixable", Type: Bool},
		{Name: "package", Column: "v.pkg_name", Type: String},
		{Name: "cvss", Column: "v.cvss10", Type: Int},
		{Name: "created", Column: "v.created", Type: Time},
		{Name: "summary", Column: "v.summary", Type: String, NoSort: true},
		{Name: "score", Column: "v.score", Type: Float},
	},
}

func TestParseFilter(t *testing.T) {
	tests := []struct {
		in   string
		want []Cond
	}{
		{"", nil},
		{"severity=CRITICAL,HIGH;fixable=true;package~log4j", []Cond{
			{"severity", OpEq, []string{"CRITICAL", "HIGH"}},
			{"fixable", OpEq, []string{"true"}},
			{"package", OpContains, []string{"log4j"}},
		}},
		{"cvss>=7; package!~a\\,b\\;c", []Cond{{"cvss", OpGe, []string{"7"}}, {"package", OpNotContains, []string{"a,b;c"}}}},
		{"severity!=LOW,MEDIUM", []Cond{{"severity", OpNe, []string{"LOW", "MEDIUM"}}}},
		{"package=", []Cond{{"package", OpEq, []string{""}}}},
	}
	for _, tt := range tests {
		f, err := ParseFilter(tt.in)
		if err != nil {
			t.Errorf("ParseFilter(%q): %v", tt.in, err)
			continue
		}
		if !reflect.DeepEqual(f.Conds, tt.want) {
			t.Errorf("ParseFilter(%q) = %#v, want %#v", tt.in, f.Conds, tt.want)
		}
	}
}

func TestCompile(t *testing.T) {
	tests := []struct {
		in       string
		dialect  Dialect
		wantSQL  string
		wantArgs []any
	}{
		{"", SQLite, "1=1", nil},
		{"severity=CRITICAL,high;fixable=true", SQLite, "v.severity IN (?, ?) AND v.fixable = ?", []any{int64(5), int64(4), true}},
		{"severity=CRITICAL,high;fixable=true", Postgres, "v.severity IN ($1, $2) AND v.fixable = $3", []any{int64(5), int64(4), true}},
		{"package~Log4J_%", Postgres, `LOWER(v.pkg_name) LIKE $1 ESCAPE '\'`, []any{`%log4j\_\%%`}},
		{"status!=fixed", SQLite, "v.status != ?", []any{"fixed"}},
		{"created<2024-01-02", SQLite, "v.created < ?", []any{int64(1704153600000000)}},
		{"score>=7.5", Postgres, "v.score >= $1", []any{7.5}},
		{"cvss>7;package!=a,b", Postgres, "v.cvss10 > $1 AND v.pkg_name NOT IN ($2, $3)", []any{int64(7), "a", "b"}},
	}
	for _, tt := range tests {
		f, err := ParseFilter(tt.in)
		if err != nil {
			t.Fatalf("ParseFilter(%q): %v", tt.in, err)
		}
		args := &Args{Dialect: tt.dialect}
		got, err := testSchema.Compile(f, args)
		if err != nil {
			t.Errorf("Compile(%q): %v", tt.in, err)
			continue
		}
		if got != tt.wantSQL || !reflect.DeepEqual(args.Values, tt.wantArgs) {
			t.Errorf("Compile(%q) = %q %#v, want %q %#v", tt.in, got, args.Values, tt.wantSQL, tt.wantArgs)
		}
	}
}

func TestErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"nope=1", `filter: field "nope": unknown field for vulnerabilities`},
		{"severity=SEVERE", `filter: field "severity" operator "=": value "SEVERE" is not one of`},
		{"fixable=maybe", `value "maybe" is not true or false`},
		{"cvss=7.5", `value "7.5" is not an integer`},
		{"score>NaN", `value "NaN" is not a number`},
		{"severity~HIGH", `operator "~": applies to string fields only`},
		{"package<b", `operator "<": does not apply to string fields`},
		{"created=yesterday", `is not a time`},
		{"=x", `does not start with a field name`},
		{"severity", `expected an operator`},
		{"severity HIGH", `expected an operator`},
		{"cvss<1,2", `only = and != take several values`},
		{"package='; DROP TABLE users; --", `field "DROP": expected an operator`},
		{"package=x;summary) OR 1=1 --=a", `expected an operator`},
		{strings.Repeat("a", MaxFilterLen+1), "longer than"},
		{strings.Repeat("package=a;", MaxConditions+1), "more than 32 conditions"},
		{"package=" + strings.Repeat("a,", MaxValues+1), "more than 100 values"},
	}
	for _, tt := range tests {
		f, err := ParseFilter(tt.in)
		if err == nil {
			_, err = testSchema.Compile(f, &Args{})
		}
		if err == nil || !strings.Contains(err.Error(), tt.want) || !IsError(err) {
			t.Errorf("%q: error %v, want one containing %q", clip(tt.in), err, tt.want)
		}
	}
}

// TestHostileValues checks that hostile values are bound, never written
// into the SQL.
func TestHostileValues(t *testing.T) {
	for _, v := range []string{
		`'; DROP TABLE users; --`, `" OR "1"="1`, `\' OR 1=1 --`, "x\x00y", `$1`, `?`, `%' OR '%'='`, `) OR (1=1`,
	} {
		in := "package=" + strings.NewReplacer(`\`, `\\`, ",", `\,`, ";", `\;`).Replace(v) + ";package~" + strings.NewReplacer(`\`, `\\`, ",", `\,`, ";", `\;`).Replace(v)
		f, err := ParseFilter(in)
		if err != nil {
			t.Fatalf("ParseFilter(%q): %v", in, err)
		}
		args := &Args{Dialect: Postgres}
		sql, err := testSchema.Compile(f, args)
		if err != nil {
			t.Fatalf("Compile(%q): %v", in, err)
		}
		if want := `v.pkg_name = $1 AND LOWER(v.pkg_name) LIKE $2 ESCAPE '\'`; sql != want {
			t.Errorf("%q compiled to %q, want %q", v, sql, want)
		}
		if args.Values[0] != v {
			t.Errorf("bound %q, want %q", args.Values[0], v)
		}
	}
}

func TestSortAndCursor(t *testing.T) {
	keys, err := ParseSort("-severity, package")
	if err != nil {
		t.Fatal(err)
	}
	o, err := testSchema.Order(keys, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := o.SQL(), "v.severity DESC, v.pkg_name, v.id"; got != want {
		t.Errorf("SQL() = %q, want %q", got, want)
	}
	c, err := o.EncodeCursor([]any{int64(5), []byte("log4j"), int64(42)})
	if err != nil {
		t.Fatal(err)
	}
	vals, err := o.DecodeCursor(c)
	if err != nil {
		t.Fatal(err)
	}
	if want := []any{int64(5), "log4j", int64(42)}; !reflect.DeepEqual(vals, want) {
		t.Errorf("DecodeCursor = %#v, want %#v", vals, want)
	}
	args := &Args{Dialect: SQLite}
	if got, want := o.After(vals, args), "((v.severity < ?) OR (v.severity = ? AND v.pkg_name > ?) OR (v.severity = ? AND v.pkg_name = ? AND v.id > ?))"; got != want {
		t.Errorf("After = %q, want %q", got, want)
	}
	so, _ := testSchema.Order([]SortKey{{Field: "score", Desc: true}}, nil)
	sc, _ := so.EncodeCursor([]any{9.8, int64(7)})
	if vals, err := so.DecodeCursor(sc); err != nil || !reflect.DeepEqual(vals, []any{9.8, int64(7)}) {
		t.Errorf("float cursor = %#v, %v", vals, err)
	}
	other, _ := testSchema.Order([]SortKey{{Field: "package"}}, nil)
	if _, err := other.DecodeCursor(c); err == nil || !strings.Contains(err.Error(), "another sort order") {
		t.Errorf("cursor of another order: %v", err)
	}
	for _, bad := range []string{"!!", "e30", strings.Repeat("A", MaxCursorLen+1)} {
		if _, err := o.DecodeCursor(bad); err == nil {
			t.Errorf("DecodeCursor(%q) succeeded", bad)
		}
	}
	for _, s := range []string{"summary", "nope", "-", "a b", "severity,-severity", "x;drop"} {
		keys, err := ParseSort(s)
		if err == nil {
			_, err = testSchema.Order(keys, nil)
		}
		if err == nil {
			t.Errorf("sort %q accepted", s)
		}
	}
}

func TestGlobToLike(t *testing.T) {
	if got, want := GlobToLike(`docker.io/lib_rary/*:1?%`), `docker.io/lib\_rary/%:1_\%`; got != want {
		t.Errorf("GlobToLike = %q, want %q", got, want)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"severity=CRITICAL,HIGH;fixable=true;package~log4j", "cvss>=7", "package!~a\\,b", "created<2024-01-02", "'; DROP TABLE x; --", "package=$1", "a=\\"} {
		f.Add(s, "-severity,package")
	}
	f.Fuzz(func(t *testing.T, filter, sort string) {
		flt, err := ParseFilter(filter)
		if err == nil {
			for _, d := range []Dialect{SQLite, Postgres} {
				args := &Args{Dialect: d}
				sql, err := testSchema.Compile(flt, args)
				if err != nil {
					continue
				}
				// The SQL is made only of whitelisted columns, operators,
				// placeholders and fixed words: no input byte gets in.
				rest := sql
				for _, fd := range testSchema.Fields {
					rest = strings.ReplaceAll(rest, fd.Column, "")
				}
				for _, w := range []string{"LOWER", "LIKE", "ESCAPE", "'\\'", "NOT", "IN", "AND", "1=1", "!=", "<=", ">=", "=", "<", ">", "(", ")", ",", "?", " "} {
					rest = strings.ReplaceAll(rest, w, "")
				}
				rest = strings.TrimLeft(strings.NewReplacer("$", "", "0", "", "1", "", "2", "", "3", "", "4", "", "5", "", "6", "", "7", "", "8", "", "9", "").Replace(rest), "")
				if rest != "" {
					t.Fatalf("compiled SQL %q holds %q outside placeholders", sql, rest)
				}
			}
		}
		if keys, err := ParseSort(sort); err == nil {
			if o, err := testSchema.Order(keys, nil); err == nil {
				_ = o.SQL()
			}
		}
	})
}

func FuzzDecodeCursor(f *testing.F) {
	o, _ := testSchema.Order([]SortKey{{Field: "severity", Desc: true}, {Field: "package"}, {Field: "fixable"}}, nil)
	c, _ := o.EncodeCursor([]any{int64(5), "log4j", int64(1), int64(42)})
	for _, s := range []string{c, "", "e30", "!!"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		vals, err := o.DecodeCursor(s)
		if err != nil {
			return
		}
		if len(vals) != 4 {
			t.Fatalf("decoded %d values", len(vals))
		}
		args := &Args{Dialect: Postgres}
		o.After(vals, args)
		if len(args.Values) != 10 {
			t.Fatalf("After bound %d values", len(args.Values))
		}
	})
}

func TestEscapeValue(t *testing.T) {
	for _, v := range []string{"plain", `a,b;c\d`, `trailing\`, "日本語;"} {
		f, err := ParseFilter("actor=" + EscapeValue(v))
		if err != nil {
			t.Fatalf("%q: %v", v, err)
		}
		if len(f.Conds) != 1 || len(f.Conds[0].Values) != 1 || f.Conds[0].Values[0] != v {
			t.Errorf("%q read back as %+v", v, f.Conds)
		}
	}
}
