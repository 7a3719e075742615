// Package ruby finds Ruby gems: installed gem specifications
// (specifications/NAME-VERSION.gemspec, as RubyGems writes them) and the
// gems pinned by Gemfile.lock files.
//
// Gemspecs are Ruby source. They are not evaluated: a small line scanner
// reads the string literals assigned to name, version, platform, license
// and licenses, which is how RubyGems writes installed specifications.
package ruby

import (
	"github.com/mamorisec/mamori/internal/inventory"
	"github.com/package-url/packageurl-go"
)

// All returns every extractor of this package.
func All() []inventory.Extractor {
	return []inventory.Extractor{NewGemspec(), NewGemfileLock()}
}

// PURL returns the package URL of a gem. platform is added as the
// "platform" qualifier unless it is empty or "ruby" (pure Ruby gems).
func PURL(name, version, platform string) string {
	var q packageurl.Qualifiers
	if platform != "" && platform != "ruby" {
		q = packageurl.QualifiersFromMap(map[string]string{"platform": platform})
	}
	return packageurl.NewPackageURL(packageurl.TypeGem, "", name, version, q, "").ToString()
}
