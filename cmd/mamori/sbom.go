package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/mamorisec/mamori/internal/atomicfile"
	"github.com/mamorisec/mamori/internal/inventory"
	"github.com/mamorisec/mamori/internal/progress"
	"github.com/mamorisec/mamori/internal/sbom"
	"github.com/mamorisec/mamori/internal/scanner"
)

// imageRefHelp describes the IMAGE argument of sbom and scan.
const imageRefHelp = `IMAGE is one of:
  docker-archive:PATH[:TAG]   a "docker save" tarball
  oci-layout:PATH[:TAG|@DIG]  an OCI image layout directory
  oci-archive:PATH            a tarball of an OCI image layout
  docker:NAME                 an image in the local Docker Engine
  registry:NAME               an image in a registry
  dir:PATH                    a root filesystem directory
  PATH or NAME                detected: existing paths by content, otherwise
                              the local Docker Engine, then the registry

Registry credentials come from --username/--password-stdin, the environment
(MAMORI_USERNAME, MAMORI_PASSWORD) or ~/.docker/config.json.`

// inventoryFlags are the flags shared by the commands that inventory an
// image.
type inventoryFlags struct {
	opts          scanner.Options
	passwordStdin bool
	quiet         bool
}

func (fl *inventoryFlags) register(f *pflag.FlagSet) {
	f.StringVar(&fl.opts.Image.Platform, "platform", "", "platform to pick from a multi-arch image (default: this host's, e.g. linux/amd64)")
	f.BoolVar(&fl.opts.Image.Insecure, "insecure", false, "allow plain HTTP and unverified TLS to the registry (for loopback test registries)")
	f.StringVar(&fl.opts.Image.Username, "username", "", "registry user name")
	f.BoolVar(&fl.passwordStdin, "password-stdin", false, "read the registry password from stdin")
	f.StringVar(&fl.opts.CacheDir, "cache-dir", "", "per-layer result cache (default $MAMORI_CACHE_DIR or the user cache dir)")
	f.BoolVar(&fl.opts.NoCache, "no-cache", false, "do not read or write the per-layer cache")
	f.StringVar(&fl.opts.TempDir, "temp-dir", "", "parent directory for private temp files (default the system temp dir)")
	f.BoolVarP(&fl.quiet, "quiet", "q", false, "no progress output")
}

// options resolves the registry credentials into scanner options.
func (fl *inventoryFlags) options(cmd *cobra.Command) (scanner.Options, error) {
	opts := fl.opts
	if opts.Image.Username == "" {
		opts.Image.Username = os.Getenv("MAMORI_USERNAME")
	}
	if fl.passwordStdin {
		pw, err := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
		if err != nil && err != io.EOF {
			return opts, fmt.Errorf("reading password from stdin: %w", err)
		}
		opts.Image.Password = strings.TrimRight(pw, "\r\n")
	} else {
		opts.Image.Password = os.Getenv("MAMORI_PASSWORD")
	}
	return opts, nil
}

// progress returns the progress bar on stderr (nil with --quiet or when
// stderr is not a terminal); it is wired into fl's scanner options.
func (fl *inventoryFlags) progress() *progress.Bar {
	if fl.quiet {
		return nil
	}
	bar := progress.New(os.Stderr)
	if bar != nil {
		fl.opts.Progress = bar
	}
	return bar
}

// inventory resolves credentials and inventories the image ref, showing
// progress on stderr unless --quiet.
func (fl *inventoryFlags) inventory(cmd *cobra.Command, ref string) (*inventory.Report, error) {
	bar := fl.progress()
	opts, err := fl.options(cmd)
	if err != nil {
		return nil, err
	}
	rep, err := scanner.Inventory(cmd.Context(), ref, opts)
	if bar != nil {
		bar.Finish()
	}
	return rep, err
}

// writeOutput writes with fn to stdout, or atomically to the file output.
func writeOutput(cmd *cobra.Command, output string, fn func(io.Writer) error) error {
	if output == "" || output == "-" {
		w := bufio.NewWriterSize(cmd.OutOrStdout(), 64<<10)
		if err := fn(w); err != nil {
			return err
		}
		return w.Flush()
	}
	return atomicfile.Write(output, 0o644, func(w io.Writer) error {
		bw := bufio.NewWriterSize(w, 64<<10)
		if err := fn(bw); err != nil {
			return err
		}
		return bw.Flush()
	})
}

func newSBOMCmd() *cobra.Command {
	var (
		format, output string
		fl             inventoryFlags
	)
	cmd := &cobra.Command{
		Use:   "sbom IMAGE",
		Short: "List everything installed in an image (SBOM)",
		Long: `List the OS and language packages installed in a container image and write
them as a table, native JSON, CycloneDX 1.6 JSON or SPDX 2.3 JSON.

` + imageRefHelp,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !slices.Contains(sbom.Formats(), format) {
				return fmt.Errorf("unknown format %q (valid: %s)", format, strings.Join(sbom.Formats(), ", "))
			}
			rep, err := fl.inventory(cmd, args[0])
			if err != nil {
				return err
			}
			eo := sbom.Options{Now: time.Now, ToolVersion: toolVersion()}
			return writeOutput(cmd, output, func(w io.Writer) error { return sbom.Encode(w, rep, format, eo) })
		},
	}
	f := cmd.Flags()
	f.StringVarP(&format, "format", "f", "table", "output format: "+strings.Join(sbom.Formats(), ", "))
	f.StringVarP(&output, "output", "o", "", "write to this file (atomically) instead of stdout")
	fl.register(f)
	return cmd
}
