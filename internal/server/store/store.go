// Package store is the console server's database: images, scans and their
// findings, registries, policies, identities, audit events and settings.
//
// It runs on embedded SQLite by default (modernc.org/sqlite, pure Go, no
// cgo) and on PostgreSQL in production (github.com/jackc/pgx/v5). Both are
// used through database/sql: one code path, the same transactions and the
// same scanning serve both dialects, and pgx's stdlib adapter still brings
// its own connection handling. pgxpool's extras (COPY, batches) are not
// needed: findings are written with multi-row INSERTs, which both dialects
// accept.
//
// The schema is created and upgraded by numbered migrations embedded in
// the binary (see migrate.go). Times are stored as microseconds since the
// Unix epoch and JSON as text, so that the SQL stays portable.
//
// List methods page with keyset cursors (see ListOptions) and accept an
// optional Scope that restricts image-related rows to the registries,
// repositories and image names an application scope allows.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/mamorisec/mamori/internal/server/query"
)

// DefaultSQLitePath is the database file used when Open is given "".
const DefaultSQLitePath = "mamori.db"

// ErrNotFound is returned when the requested row does not exist.
var ErrNotFound = errors.New("not found")

// ErrConflict is returned when a row with the same unique key exists.
var ErrConflict = errors.New("already exists")

// ErrInvalid is matched (errors.Is) by every error about bad input: a
// field that fails validation, a filter, sort or cursor that does not
// parse, a version constraint. The message is the underlying one.
var ErrInvalid = errors.New("invalid input")

// invalidError marks an input error; it matches ErrInvalid.
type invalidError struct{ err error }

func (e invalidError) Error() string        { return e.err.Error() }
func (e invalidError) Unwrap() error        { return e.err }
func (e invalidError) Is(target error) bool { return target == ErrInvalid }

// invalidf returns an input error.
func invalidf(format string, args ...any) error {
	return invalidError{fmt.Errorf(format, args...)}
}

// asInvalid marks query errors (bad filter, sort or cursor) as input
// errors and returns other errors unchanged.
func asInvalid(err error) error {
	if query.IsError(err) {
		return invalidError{err}
	}
	return err
}

// Ping checks that the database answers, for readiness checks.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return fmt.Errorf("database: %w", err)
	}
	return nil
}

// Store is an open database. It is safe for concurrent use.
type Store struct {
	db      *sql.DB
	dialect query.Dialect
	// secretKey encrypts registry credentials (AES-256-GCM); nil until
	// SetSecretKey.
	secretKey []byte
	// now returns the current time (replaced in tests).
	now func() time.Time
	// failAfter, when positive, makes the ingest insert fail after that
	// many finding batches (for atomicity tests).
	failAfter int
}

// Open opens the database at url and brings its schema up to date:
//
//   - "" opens SQLite at DefaultSQLitePath;
//   - "sqlite:///abs/path.db", "sqlite://rel/path.db" or a plain path opens
//     SQLite, with WAL journaling, a 10 s busy timeout, foreign keys on and
//     transactions that take the write lock when they begin;
//   - "postgres://..." or "postgresql://..." opens PostgreSQL.
func Open(ctx context.Context, url string) (*Store, error) {
	s := &Store{now: time.Now}
	var err error
	switch {
	case strings.HasPrefix(url, "postgres://"), strings.HasPrefix(url, "postgresql://"):
		s.dialect = query.Postgres
		s.db, err = sql.Open("pgx", url)
	default:
		path := url
		if path == "" {
			path = DefaultSQLitePath
		}
		path = strings.TrimPrefix(path, "sqlite://")
		if strings.Contains(path, "://") {
			return nil, fmt.Errorf("database URL %q: unsupported scheme (want postgres://, sqlite:// or a file path)", redact(url))
		}
		s.dialect = query.SQLite
		s.db, err = sql.Open("sqlite", sqliteDSN(path))
	}
	if err != nil {
		return nil, fmt.Errorf("opening database %s: %w", redact(url), err)
	}
	if err := s.db.PingContext(ctx); err != nil {
		s.db.Close()
		return nil, fmt.Errorf("connecting to database %s: %w", redact(url), err)
	}
	if err := s.migrate(ctx); err != nil {
		s.db.Close()
		return nil, fmt.Errorf("database %s: %w", redact(url), err)
	}
	return s, nil
}

// sqliteDSN returns the modernc.org/sqlite DSN for the file at path.
func sqliteDSN(path string) string {
	q := url.Values{}
	for _, p := range []string{"busy_timeout(10000)", "journal_mode(WAL)", "foreign_keys(1)", "synchronous(NORMAL)"} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	return "file:" + path + "?" + q.Encode()
}

// redact removes the password from a database URL for messages.
func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// Dialect returns the SQL dialect of the database.
func (s *Store) Dialect() query.Dialect { return s.dialect }

// args returns a new argument list for the store's dialect.
func (s *Store) args() *query.Args { return &query.Args{Dialect: s.dialect} }

// rebind rewrites the ? placeholders of a fixed statement to $n for
// PostgreSQL. Statements passed here hold no '?' inside literals.
func (s *Store) rebind(q string) string {
	if s.dialect != query.Postgres {
		return q
	}
	var b strings.Builder
	n := 0
	for i := 0; i < len(q); i++ {
		if q[i] == '?' {
			n++
			fmt.Fprintf(&b, "$%d", n)
			continue
		}
		b.WriteByte(q[i])
	}
	return b.String()
}

// exec runs a fixed statement with ? placeholders.
func (s *Store) exec(ctx context.Context, q execer, stmt string, args ...any) (sql.Result, error) {
	return q.ExecContext(ctx, s.rebind(stmt), args...)
}

// execer is a *sql.DB or *sql.Tx.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// insertID runs an INSERT ... RETURNING id statement and returns the id.
func (s *Store) insertID(ctx context.Context, q execer, stmt string, args ...any) (int64, error) {
	var id int64
	err := q.QueryRowContext(ctx, s.rebind(stmt+" RETURNING id"), args...).Scan(&id)
	return id, err
}

// inTx runs fn in a transaction, committed when fn returns nil and rolled
// back otherwise.
func (s *Store) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("beginning transaction: %w", err)
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("committing transaction: %w", err)
	}
	return nil
}

// dbErr maps driver errors to ErrConflict and ErrNotFound and adds what.
func dbErr(err error, what string) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23505" {
		return fmt.Errorf("%s: %w", what, ErrConflict)
	}
	var se *sqlite.Error
	if errors.As(err, &se) && (se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY) {
		return fmt.Errorf("%s: %w", what, ErrConflict)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// affected returns ErrNotFound when res changed no row.
func affected(res sql.Result, err error, what string) error {
	if err != nil {
		return dbErr(err, what)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return dbErr(err, what)
	}
	if n == 0 {
		return fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	return nil
}

// micros converts a time to stored microseconds (0 for the zero time).
func micros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

// fromMicros converts stored microseconds to a UTC time.
func fromMicros(m int64) time.Time {
	if m == 0 {
		return time.Time{}
	}
	return time.UnixMicro(m).UTC()
}

// nowMicros returns the current time in stored form.
func (s *Store) nowMicros() int64 { return s.now().UnixMicro() }

// Analyze refreshes PostgreSQL's planner statistics (autovacuum does too,
// later); the server may call it after bulk ingests. On SQLite it does
// nothing: measured on 100,000 findings, SQLite's default plans for these
// queries beat the plans it picks from sampled statistics.
func (s *Store) Analyze(ctx context.Context) error {
	if s.dialect != query.Postgres {
		return nil
	}
	if _, err := s.db.ExecContext(ctx, "ANALYZE"); err != nil {
		return fmt.Errorf("analyzing the database: %w", err)
	}
	return nil
}
