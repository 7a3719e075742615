//go:build !unix

package walk

import (
	"errors"
	"os"
)

// mapFile is not available here: analyzers read spooled files through
// their reader.
func mapFile(*os.File, int64) ([]byte, func(), error) {
	return nil, nil, errors.New("memory mapping is not supported on this platform")
}
