package match

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/mamorisec/mamori/internal/inventory"
	"github.com/mamorisec/mamori/internal/testenv"
	"github.com/mamorisec/mamori/internal/vulndb"
)

// BenchmarkMatch10k matches 10,000 packages against the database built
// from all of shared/data: every package name the records mention (Go
// modules, PyPI projects, Debian source packages), each at an old version
// so most of them match, repeated at other versions up to 10,000.
func BenchmarkMatch10k(b *testing.B) {
	paths := []string{testenv.SharedData(b, "osv/go"), testenv.SharedData(b, "osv/pypi"), testenv.SharedData(b, "osv/debian"), testenv.SharedData(b, "alpine-secdb")}
	db := openDB(b, paths...)
	bl := vulndb.NewBuilder()
	for _, p := range paths {
		if _, err := bl.AddPath(p, p, p); err != nil {
			b.Fatal(err)
		}
	}
	types := map[string]string{"Go": "golang", "PyPI": "pypi", "Debian": "deb"}
	var names [][2]string
	bl.Each(func(base, name string, _ []vulndb.Affected) {
		if t, ok := types[base]; ok {
			names = append(names, [2]string{t, name})
		}
	}, func(*vulndb.Record) {})
	slices.SortFunc(names, func(a, b [2]string) int { return strings.Compare(a[0]+a[1], b[0]+b[1]) })
	rep := &inventory.Report{OS: debian12}
	versions := map[string][]string{
		"golang": {"v0.0.1", "v1.2.3", "v0.3.5", "v1.0.0-20200101000000-abcdefabcdef"},
		"pypi":   {"0.1", "1.0", "2.2.1", "3.0rc1"},
		"deb":    {"1.0-1", "2:1.0-1+deb12u1", "3.0.11-1~deb12u1", "5.36.0-7"},
	}
	for i := 0; len(rep.Packages) < 10000; i++ {
		n := names[i%len(names)]
		v := versions[n[0]][(i/len(names))%4]
		rep.Packages = append(rep.Packages, inventory.Package{Name: n[1], Version: v, Type: n[0], SourceName: n[1], Path: fmt.Sprintf("/p/%d", i)})
	}
	b.ResetTimer()
	var findings int
	for b.Loop() {
		res, err := New(db).Match(context.Background(), rep)
		if err != nil {
			b.Fatal(err)
		}
		findings = len(res.Findings)
	}
	b.ReportMetric(float64(findings), "findings")
}
