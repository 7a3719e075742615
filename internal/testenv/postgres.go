package testenv

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
)

// PostgresURLFile is where scripts/start-postgres.sh writes the URL of
// the test cluster.
const PostgresURLFile = "/var/tmp/mamori-pg/url"

// Postgres returns the URL of a fresh, empty PostgreSQL database that is
// dropped when the test ends. The server is found through
// $MAMORI_TEST_POSTGRES_URL, else PostgresURLFile; when neither is there
// and PostgreSQL is installed, scripts/start-postgres.sh is run to start
// the throwaway cluster. Without PostgreSQL the test is reported Missing.
func Postgres(t testing.TB) string {
	t.Helper()
	base := postgresURL(t)
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("PostgreSQL URL: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("opening PostgreSQL %s: %v", u.Redacted(), err)
	}
	defer admin.Close()
	b := make([]byte, 8)
	rand.Read(b)
	name := "mamori_test_" + hex.EncodeToString(b)
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		Missing(t, "PostgreSQL at %s: creating a database: %v (run scripts/start-postgres.sh)", u.Redacted(), err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		db, err := sql.Open("pgx", base)
		if err != nil {
			t.Errorf("dropping test database %s: %v", name, err)
			return
		}
		defer db.Close()
		if _, err := db.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("dropping test database %s: %v", name, err)
		}
	})
	u.Path = "/" + name
	return u.String()
}

// postgresURL finds or starts the test cluster and returns its URL.
func postgresURL(t testing.TB) string {
	t.Helper()
	if u := os.Getenv("MAMORI_TEST_POSTGRES_URL"); u != "" {
		return u
	}
	if b, err := os.ReadFile(PostgresURLFile); err == nil {
		// The cluster may have been stopped since: the script restarts it.
		if script := startScript(); script != "" {
			exec.Command("sh", script).Run()
		}
		return strings.TrimSpace(string(b))
	}
	script := startScript()
	if script == "" {
		Missing(t, "PostgreSQL: set MAMORI_TEST_POSTGRES_URL or run scripts/start-postgres.sh")
	}
	if matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb"); len(matches) == 0 {
		Missing(t, "PostgreSQL: the Debian package postgresql is not installed")
	}
	out, err := exec.Command("sh", script).Output()
	if err != nil {
		Missing(t, "PostgreSQL: %s failed: %v", script, err)
	}
	return strings.TrimSpace(string(out))
}

// startScript returns the path of scripts/start-postgres.sh in the module,
// or "".
func startScript() string {
	dir, _ := os.Getwd()
	for d := dir; filepath.Dir(d) != d; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			p := filepath.Join(d, "scripts", "start-postgres.sh")
			if _, err := os.Stat(p); err == nil {
				return p
			}
			return ""
		}
	}
	return ""
}
