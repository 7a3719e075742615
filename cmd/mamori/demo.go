package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/mamorisec/mamori/internal/demo"
	"github.com/mamorisec/mamori/internal/vulndb"
)

func newDemoCmd() *cobra.Command {
	var keep string
	scanCmd := newScanCmd()
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Build the built-in demo image and feed locally and scan the image",
		Long: `Build mamori's demo image (an OCI image layout with OS packages, npm and
Python packages, a whiteout and a Go binary, all written for mamori) and a
vulnerability database from mamori's demo feed (OSV records written for
mamori, none of them a real advisory), then run "mamori scan" on the image.
Works offline. Accepts the flags of "mamori scan"; --keep DIR writes the
layout and the database to DIR and keeps them.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir := keep
			if dir == "" {
				tmp, err := os.MkdirTemp("", "mamori-demo-")
				if err != nil {
					return err
				}
				defer os.RemoveAll(tmp)
				dir = tmp
			}
			self, err := os.Executable()
			if err != nil {
				return fmt.Errorf("finding the mamori executable for the demo image: %w", err)
			}
			layout := filepath.Join(dir, "layout")
			if err := demo.Write(layout, self); err != nil {
				return err
			}
			if !cmd.Flags().Changed("db") {
				feed := filepath.Join(dir, "feed")
				if err := demo.WriteFeed(feed); err != nil {
					return err
				}
				b := vulndb.NewBuilder()
				if _, err := b.AddPath("mamori-demo-feed", "built-in demo feed", feed); err != nil {
					return err
				}
				dbPath := filepath.Join(dir, "demo.db")
				if _, err := b.Write(dbPath, time.Now()); err != nil {
					return err
				}
				if err := scanCmd.Flags().Set("db", dbPath); err != nil {
					return err
				}
			}
			scanCmd.SetContext(cmd.Context())
			scanCmd.SetOut(cmd.OutOrStdout())
			scanCmd.SetErr(cmd.ErrOrStderr())
			scanCmd.SetIn(cmd.InOrStdin())
			return scanCmd.RunE(scanCmd, []string{"oci-layout:" + layout})
		},
	}
	cmd.Flags().AddFlagSet(scanCmd.Flags())
	cmd.Flags().StringVar(&keep, "keep", "", "write the demo layout and database to this directory and keep them")
	return cmd
}
