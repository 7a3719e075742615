package store

import (
	"database/sql/driver"
	"fmt"
	"regexp"
	"sync"

	"modernc.org/sqlite"
)

// maxRegexpLen bounds the scope regular expressions accepted.
const maxRegexpLen = 4096

// regexpCache holds compiled scope expressions for SQLite's
// mamori_regexp; it is emptied when it grows past 1024 entries.
var regexpCache = struct {
	sync.Mutex
	m map[string]*regexp.Regexp
}{m: map[string]*regexp.Regexp{}}

func init() {
	// mamori_regexp(pattern, value) is 1 when the Go regular expression
	// pattern matches value, for Scope.Match on SQLite.
	sqlite.MustRegisterDeterministicScalarFunction("mamori_regexp", 2, func(_ *sqlite.FunctionContext, args []driver.Value) (driver.Value, error) {
		pat, ok1 := args[0].(string)
		val, ok2 := args[1].(string)
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("mamori_regexp: want two strings")
		}
		regexpCache.Lock()
		re, ok := regexpCache.m[pat]
		if !ok {
			var err error
			if re, err = regexp.Compile(pat); err != nil {
				regexpCache.Unlock()
				return nil, fmt.Errorf("mamori_regexp: %w", err)
			}
			if len(regexpCache.m) >= 1024 {
				clear(regexpCache.m)
			}
			regexpCache.m[pat] = re
		}
		regexpCache.Unlock()
		if re.MatchString(val) {
			return int64(1), nil
		}
		return int64(0), nil
	})
}
