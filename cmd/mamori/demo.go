package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/mamorisec/mamori/internal/demo"
)

func newDemoCmd() *cobra.Command {
	var keep string
	sbomCmd := newSBOMCmd()
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Build the built-in demo image locally and list what is inside it",
		Long: `Build mamori's demo image (an OCI image layout with OS packages, npm and
Python packages, a whiteout and a Go binary, all written for mamori) in a
temporary directory and run "mamori sbom" on it. Accepts the flags of
"mamori sbom"; --keep DIR writes the layout to DIR and keeps it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir := keep
			if dir == "" {
				tmp, err := os.MkdirTemp("", "mamori-demo-")
				if err != nil {
					return err
				}
				defer os.RemoveAll(tmp)
				dir = filepath.Join(tmp, "layout")
			}
			self, err := os.Executable()
			if err != nil {
				return fmt.Errorf("finding the mamori executable for the demo image: %w", err)
			}
			if err := demo.Write(dir, self); err != nil {
				return err
			}
			sbomCmd.SetContext(cmd.Context())
			sbomCmd.SetOut(cmd.OutOrStdout())
			sbomCmd.SetIn(cmd.InOrStdin())
			return sbomCmd.RunE(sbomCmd, []string{"oci-layout:" + dir})
		},
	}
	cmd.Flags().AddFlagSet(sbomCmd.Flags())
	cmd.Flags().StringVar(&keep, "keep", "", "write the demo layout to this directory and keep it")
	return cmd
}
