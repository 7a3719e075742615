package main

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/mamorisec/mamori/internal/vulndb"
	"github.com/mamorisec/mamori/internal/vulndb/bundle"
	"github.com/mamorisec/mamori/internal/vulndb/fetch"
)

func newDBUpdateCmd() *cobra.Command {
	var (
		path, sourcesFile, cacheDir string
		timeout                     time.Duration
		concurrency                 int
	)
	cmd := &cobra.Command{
		Use:   "update",
		Short: "Download the configured sources and rebuild the database",
		Long: `Download every configured source into the source cache with conditional
requests (an unchanged file is not downloaded again), check each file
(size limit, sha256 when the source publishes one, a readable zip or YAML),
then rebuild the database and swap it in atomically.

If any source fails, nothing is rebuilt and the previous database keeps
working; the files that did download stay cached for the next try.

Sources default to the public OSV export of every supported ecosystem and
Alpine's secdb; --sources FILE replaces or extends them (see
docs/vulnerabilities.md).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			srcs := fetch.DefaultSources()
			if sourcesFile != "" {
				var err error
				if srcs, err = fetch.LoadSources(sourcesFile); err != nil {
					return err
				}
			}
			if cacheDir == "" {
				cacheDir = filepath.Join(filepath.Dir(path), "sources")
			}
			client := &http.Client{Timeout: timeout}
			results, err := fetch.FetchAll(cmd.Context(), client, srcs, cacheDir, concurrency)
			if err != nil {
				return fmt.Errorf("db update: %w; the database at %s was not changed", err, path)
			}
			changed := false
			for _, r := range results {
				if !r.NotModified {
					changed = true
				}
			}
			if _, err := os.Stat(path); !changed && err == nil {
				fmt.Fprintf(cmd.ErrOrStderr(), "%s is up to date: no source changed\n", path)
				return nil
			}
			b := vulndb.NewBuilder()
			for _, r := range results {
				si, err := b.AddPath(r.Source.Name, r.Source.URL, r.Path)
				if err != nil {
					return fmt.Errorf("db update: %w; the database at %s was not changed", err, path)
				}
				si.SHA256 = r.SHA256
				fetched := r.Fetched.UTC()
				si.Fetched = &fetched
			}
			if b.Empty() {
				return fmt.Errorf("db update: the sources hold no usable records; the database at %s was not changed", path)
			}
			info, err := b.Write(path, time.Now())
			if err != nil {
				return fmt.Errorf("db update: %w", err)
			}
			printBuildSummary(cmd.ErrOrStderr(), path, info)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&path, "db", defaultDBPath(), "database file")
	f.StringVar(&sourcesFile, "sources", "", "YAML file of sources (default: the public OSV exports and Alpine secdb)")
	f.StringVar(&cacheDir, "cache-dir", "", "where downloaded source files are kept (default: sources/ next to the database)")
	f.DurationVar(&timeout, "timeout", 10*time.Minute, "time limit for each download")
	f.IntVar(&concurrency, "concurrency", 4, "parallel downloads")
	return cmd
}

func newDBExportCmd() *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "export BUNDLE",
		Short: "Write the database as an offline bundle for air-gapped sites",
		Long: `Write the database and a manifest (schema versions, build time, sources,
and the size and sha256 of every file) as one bundle file, written
atomically. Load it on the other side with "mamori db import BUNDLE".`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			db, err := vulndb.Open(path)
			if err != nil {
				return err
			}
			info := db.Info()
			db.Close()
			m := bundle.Manifest{DBSchemaVersion: info.Schema, Built: info.Built}
			for _, s := range info.Sources {
				m.Sources = append(m.Sources, bundle.SourceInfo{Name: s.Name, URL: s.Origin, SHA256: s.SHA256, Records: s.Records})
			}
			if err := bundle.ExportFile(args[0], path, m); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "wrote %s from %s (%d records, built %s)\n", args[0], path, info.Records, info.Built.Format(time.RFC3339))
			return nil
		},
	}
	cmd.Flags().StringVar(&path, "db", defaultDBPath(), "database file")
	return cmd
}

func newDBImportCmd() *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "import BUNDLE",
		Short: "Replace the database with one from an offline bundle",
		Long: `Check a bundle made by "mamori db export" (manifest, sizes and sha256 of
every file, no unexpected entries), open the database it holds and read
every page, and only then swap it in. A corrupt, truncated or tampered
bundle leaves the current database untouched.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				return err
			}
			m, err := bundle.ImportFile(args[0], path, verifyDB)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "imported %s into %s (database built %s)\n", args[0], path, m.Built.Format(time.RFC3339))
			return nil
		},
	}
	cmd.Flags().StringVar(&path, "db", defaultDBPath(), "database file to replace")
	return cmd
}

// verifyDB opens a database file and reads all of it.
func verifyDB(p string) error {
	db, err := vulndb.Open(p)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.Verify(); err != nil {
		return err
	}
	if db.Info().Records == 0 {
		return errors.New("the bundled database holds no records")
	}
	return nil
}
