// Command mamori is the mamori container security platform. Each component is
// a subcommand; this package only parses flags and wires components together.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/spf13/cobra"
)

// version is set with -ldflags "-X main.version=..." in release builds.
var version = ""

func toolVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

func main() {
	if os.Getenv("GOGC") == "" {
		// Scans allocate many short-lived buffers; a larger heap target
		// halves GC work for a few MiB of memory (docs/benchmarks.md).
		debug.SetGCPercent(200)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRoot().ExecuteContext(ctx)
	stop()
	var ee *exitError
	switch {
	case errors.As(err, &ee):
		if ee.msg != "" {
			fmt.Fprintln(os.Stderr, "mamori:", ee.msg)
		}
		os.Exit(ee.code)
	case err != nil:
		fmt.Fprintln(os.Stderr, "mamori:", err)
		os.Exit(1)
	}
}

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "mamori",
		Short:         "mamori protects containers: image inventory, vulnerability scanning and runtime enforcement",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newScanCmd(), newSBOMCmd(), newDBCmd(), newDemoCmd(), newServerCmd(), newScannerCmd(), newAuditCmd(), newGatewayCmd(), newKubeEnforcerCmd(), newEnforcerCmd(), newVersionCmd())
	return root
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the mamori version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintln(cmd.OutOrStdout(), "mamori", toolVersion())
		},
	}
}
