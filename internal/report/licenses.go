package report

import (
	"slices"
	"strconv"
	"strings"

	cdx "github.com/CycloneDX/cyclonedx-go"

	"github.com/mamorisec/mamori/internal/license"
)

// licenseLine summarizes the license analysis for the table: packages with
// a license, then the count per category, most restrictive first.
func licenseLine(r *license.Report) string {
	if r == nil {
		return ""
	}
	sum := r.Summary
	var b strings.Builder
	b.WriteString("Licenses: " + strconv.Itoa(sum.WithLicense) + " of " + strconv.Itoa(sum.Packages) + " packages have one")
	cats := slices.Clone(license.Categories)
	slices.Reverse(cats)
	var parts []string
	for _, c := range cats {
		if n := sum.ByCategory[c]; n > 0 {
			parts = append(parts, string(c)+": "+strconv.Itoa(n))
		}
	}
	if len(parts) > 0 {
		b.WriteString(" (" + strings.Join(parts, ", ") + ")")
	}
	return b.String()
}

// writeLicenseTable lists the packages whose license is forbidden or
// unknown: the ones a reviewer must look at. The others are counted.
func writeLicenseTable(b *strings.Builder, r *license.Report, color bool) {
	if r == nil {
		return
	}
	b.WriteByte('\n')
	b.WriteString(paint(color, ansiBold, licenseLine(r)))
	b.WriteByte('\n')
	for _, c := range []license.Category{license.Forbidden, license.Unknown} {
		var rows []string
		for i := range r.Packages {
			p := &r.Packages[i]
			if p.Category != c {
				continue
			}
			expr := p.Expression
			if expr == "" {
				expr = "no license found"
			}
			rows = append(rows, "  "+clean(p.Name)+" "+clean(p.Version)+" ("+clean(p.Type)+"): "+clean(expr))
		}
		if len(rows) == 0 {
			continue
		}
		b.WriteString(paint(color, ansiBold, "License category "+string(c)+" ("+strconv.Itoa(len(rows))+")"))
		b.WriteByte('\n')
		for _, row := range rows {
			b.WriteString(row)
			b.WriteByte('\n')
		}
	}
}

// cdxApplyLicenses replaces the components' declared licenses with the
// analysis' SPDX expressions and records each package's category as a
// property.
func cdxApplyLicenses(bom *cdx.BOM, refs map[string]string, r *license.Report) {
	if r == nil || bom.Components == nil {
		return
	}
	byRef := make(map[string]*license.PackageLicense, len(r.Packages))
	for i := range r.Packages {
		if ref, ok := refs[r.Packages[i].Key]; ok {
			byRef[ref] = &r.Packages[i]
		}
	}
	for i := range *bom.Components {
		c := &(*bom.Components)[i]
		pl := byRef[c.BOMRef]
		if pl == nil {
			continue
		}
		if pl.Expression != "" {
			c.Licenses = &cdx.Licenses{{Expression: pl.Expression}}
		}
		props := []cdx.Property{{Name: propertyPrefix + "license:category", Value: string(pl.Category)}}
		if c.Properties != nil {
			props = append(*c.Properties, props...)
		}
		c.Properties = &props
	}
}
