package main

import (
	"errors"
	"io/fs"
	"os"

	"github.com/mamorisec/mamori/internal/suppress"
)

// defaultIgnoreFile is read when --ignorefile is not given and it exists.
const defaultIgnoreFile = ".mamoriignore.yaml"

// loadSuppressions reads the ignore file and the VEX documents. An ignore
// file named on the command line must exist; the default one is optional.
func loadSuppressions(ignoreFile string, vexFiles []string) (suppress.Rules, error) {
	var r suppress.Rules
	path := ignoreFile
	if path == "" {
		if _, err := os.Stat(defaultIgnoreFile); err == nil {
			path = defaultIgnoreFile
		} else if !errors.Is(err, fs.ErrNotExist) {
			return r, err
		}
	}
	if path != "" {
		f, err := suppress.LoadIgnore(path)
		if err != nil {
			return r, err
		}
		r.Ignore = append(r.Ignore, f)
	}
	for _, p := range vexFiles {
		v, err := suppress.LoadVEX(p)
		if err != nil {
			return r, err
		}
		r.VEX = append(r.VEX, v)
	}
	return r, nil
}
