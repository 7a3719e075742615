// Package secretcmp compares mamori's secret scanner with trivy's on a
// labelled corpus and on a Debian root filesystem.
package secretcmp
