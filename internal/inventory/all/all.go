// Package all lists every extractor mamori ships. Adding a format means
// adding its package here.
package all

import (
	"github.com/mamorisec/mamori/internal/inventory"
	"github.com/mamorisec/mamori/internal/inventory/apk"
	"github.com/mamorisec/mamori/internal/inventory/dotnet"
	"github.com/mamorisec/mamori/internal/inventory/dpkg"
	"github.com/mamorisec/mamori/internal/inventory/gobinary"
	"github.com/mamorisec/mamori/internal/inventory/java"
	"github.com/mamorisec/mamori/internal/inventory/npm"
	"github.com/mamorisec/mamori/internal/inventory/osrelease"
	"github.com/mamorisec/mamori/internal/inventory/php"
	"github.com/mamorisec/mamori/internal/inventory/python"
	"github.com/mamorisec/mamori/internal/inventory/rpm"
	"github.com/mamorisec/mamori/internal/inventory/ruby"
	"github.com/mamorisec/mamori/internal/inventory/rust"
)

// Extractors returns a fresh list of all extractors, OS first.
func Extractors() []inventory.Extractor {
	exts := []inventory.Extractor{osrelease.New(), apk.New(), rpm.New()}
	for _, group := range [][]inventory.Extractor{
		dpkg.All(), npm.All(), python.All(), ruby.All(), php.All(),
		gobinary.All(), rust.All(), java.All(), dotnet.All(),
	} {
		exts = append(exts, group...)
	}
	return exts
}
