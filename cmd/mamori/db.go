package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/mamorisec/mamori/internal/vulndb"
)

// defaultDBPath is $MAMORI_DB, else mamori/db/mamori.db in the user cache
// directory.
func defaultDBPath() string {
	if p := os.Getenv("MAMORI_DB"); p != "" {
		return p
	}
	dir, err := os.UserCacheDir()
	if err != nil {
		dir = os.TempDir()
	}
	return filepath.Join(dir, "mamori", "db", "mamori.db")
}

func newDBCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "db",
		Short: "Build, update, export, import and inspect the vulnerability database",
		Long: `The vulnerability database is one read-only file built from OSV records
and Alpine secdb files. Scans open it read-only; every command that
replaces it writes a new file and renames it into place, so a failed or
interrupted command leaves the previous database working.

The default path is $MAMORI_DB, else mamori/db/mamori.db in the user cache
directory.`,
	}
	cmd.AddCommand(newDBBuildCmd(), newDBStatusCmd(), newDBUpdateCmd(), newDBExportCmd(), newDBImportCmd())
	return cmd
}

func newDBBuildCmd() *cobra.Command {
	var (
		out        string
		osv, secdb []string
		verbose    bool
	)
	cmd := &cobra.Command{
		Use:   "build [PATH...]",
		Short: "Build the database from local OSV and secdb files",
		Long: `Build the database from files and directories: OSV records in JSON or
YAML, zip archives of them (the per-ecosystem all.zip exports) and Alpine
secdb YAML files, recognised by content. Directories are read recursively.
A record that cannot be used is skipped, counted and named in "db status";
the build fails only when a source cannot be read or nothing was usable.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			paths := append(append(append([]string{}, args...), osv...), secdb...)
			if len(paths) == 0 {
				return fmt.Errorf("db build: give at least one file or directory of OSV or secdb data")
			}
			b := vulndb.NewBuilder()
			if verbose {
				b.Log = func(msg string) { fmt.Fprintln(cmd.ErrOrStderr(), msg) }
			}
			for _, p := range paths {
				abs, err := filepath.Abs(p)
				if err != nil {
					return err
				}
				if _, err := b.AddPath(filepath.Base(abs), abs, abs); err != nil {
					return fmt.Errorf("db build: %w", err)
				}
			}
			if b.Empty() {
				return fmt.Errorf("db build: no usable vulnerability records in %s", strings.Join(paths, ", "))
			}
			info, err := b.Write(out, time.Now())
			if err != nil {
				return fmt.Errorf("db build: %w", err)
			}
			printBuildSummary(cmd.ErrOrStderr(), out, info)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&out, "output", "o", defaultDBPath(), "database file to write")
	f.StringArrayVar(&osv, "osv", nil, "a file or directory of OSV records (may repeat; same as a PATH argument)")
	f.StringArrayVar(&secdb, "secdb", nil, "an Alpine secdb file or directory (may repeat; same as a PATH argument)")
	f.BoolVarP(&verbose, "verbose", "v", false, "log every skipped record")
	return cmd
}

func printBuildSummary(w io.Writer, path string, info *vulndb.Info) {
	skipped := 0
	for _, s := range info.Sources {
		skipped += s.Skipped
	}
	fmt.Fprintf(w, "wrote %s: %d records, %d affected packages, %d skipped (see `mamori db status`)\n",
		path, info.Records, info.Affected, skipped)
}

func newDBStatusCmd() *cobra.Command {
	var path string
	var maxAge time.Duration
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the database's sources, record counts and age",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			db, err := vulndb.Open(path)
			if err != nil {
				return err
			}
			defer db.Close()
			writeStatus(cmd.OutOrStdout(), db.Path(), db.Info(), time.Now(), maxAge)
			return nil
		},
	}
	cmd.Flags().StringVar(&path, "db", defaultDBPath(), "database file")
	cmd.Flags().DurationVar(&maxAge, "max-age", defaultMaxAge, "age after which the database counts as stale")
	return cmd
}

// defaultMaxAge is the database age after which scans warn.
const defaultMaxAge = 7 * 24 * time.Hour

func writeStatus(w io.Writer, path string, info vulndb.Info, now time.Time, maxAge time.Duration) {
	age := now.Sub(info.Built).Round(time.Minute)
	fmt.Fprintf(w, "database:  %s\n", path)
	fmt.Fprintf(w, "built:     %s (%s ago)\n", info.Built.Format(time.RFC3339), age)
	if age > maxAge {
		fmt.Fprintf(w, "WARNING:   older than %s: run `mamori db update` or import a newer bundle\n", maxAge)
	}
	fmt.Fprintf(w, "records:   %d (%d affected packages)\n\n", info.Records, info.Affected)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ECOSYSTEM\tAFFECTED ENTRIES")
	ecos := make([]string, 0, len(info.Ecosystems))
	for e := range info.Ecosystems {
		ecos = append(ecos, e)
	}
	sort.Strings(ecos)
	for _, e := range ecos {
		fmt.Fprintf(tw, "%s\t%d\n", e, info.Ecosystems[e])
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "SOURCE\tRECORDS\tWITHDRAWN\tSKIPPED\tFETCHED\tORIGIN")
	for _, s := range info.Sources {
		fetched := "-"
		if s.Fetched != nil {
			fetched = s.Fetched.Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\t%s\n", s.Name, s.Records, s.Withdrawn, s.Skipped, fetched, s.Origin)
	}
	tw.Flush()
	for _, s := range info.Sources {
		for _, p := range s.Problems {
			fmt.Fprintf(w, "skipped in %s: %s\n", s.Name, p)
		}
		if n := s.Skipped - len(s.Problems); n > 0 {
			fmt.Fprintf(w, "skipped in %s: ... and %d more\n", s.Name, n)
		}
	}
}
