package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/mamorisec/mamori/internal/enforcer/agent"
	"github.com/mamorisec/mamori/internal/enforcer/events"
	"github.com/mamorisec/mamori/internal/enforcer/fleetclient"
	"github.com/mamorisec/mamori/internal/enforcer/preflight"
	"github.com/mamorisec/mamori/internal/enforcer/seccomp"
	"github.com/mamorisec/mamori/internal/enforcer/spool"
	"github.com/mamorisec/mamori/internal/fleet"
	"github.com/mamorisec/mamori/internal/inventory"
	"github.com/mamorisec/mamori/internal/runtimepolicy"
)

// inventoryInterval is how often an enrolled enforcer reports its inventory.
const inventoryInterval = 30 * time.Second

type enforcerFlags struct {
	policy, events, stateDir, dockerHost, hostProc string
	gateways                                       []string
	tokenFile, bootstrapCA, serverName             string
}

func newEnforcerCmd() *cobra.Command {
	var fl enforcerFlags
	cmd := &cobra.Command{
		Use:   "enforcer",
		Short: "Run the host agent that applies runtime policies to the host's containers",
		Long: `Run mamori's runtime enforcer on this host (as root).

Standalone: --policy FILE (a JSON or YAML list of runtime policies, one
policy, or {"policies": [...], "bypass": {...}, "settings": {...}}); events go
to --events (JSON lines). The file is re-read when it changes.

Enrolled: --gateway host:port (repeatable) --enrollment-token-file F
--bootstrap-ca F; policies come from the fleet, events are spooled in the
state directory and delivered through the gateways.

See docs/enforcer.md.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runEnforcer(cmd, &fl) },
	}
	f := cmd.Flags()
	f.StringVar(&fl.policy, "policy", "", "standalone policy file (JSON or YAML)")
	f.StringVar(&fl.events, "events", "", "standalone event log (JSON lines; default: events.jsonl in the state directory)")
	f.StringVar(&fl.stateDir, "state-dir", "/var/lib/mamori-enforcer", "state directory (identity, policy bundle, spool, applied limits, learned policies)")
	f.StringVar(&fl.dockerHost, "docker-host", "", "Docker Engine socket (unix:///var/run/docker.sock by default, or $DOCKER_HOST)")
	f.StringVar(&fl.hostProc, "host-proc", "/proc", "the host's /proc (the enforcer must run in the host's pid namespace)")
	f.StringArrayVar(&fl.gateways, "gateway", nil, "gateway address host:port (repeatable; enrolled mode)")
	f.StringVar(&fl.tokenFile, "enrollment-token-file", "", "file holding the enforcer group's enrollment token")
	f.StringVar(&fl.bootstrapCA, "bootstrap-ca", "", "PEM CA file that verifies the gateways before enrollment")
	f.StringVar(&fl.serverName, "gateway-server-name", "", "name to verify gateway certificates against (default: each address's host)")
	cmd.AddCommand(newEnforcerPreflightCmd(), newEnforcerSeccompCmd(), newEnforcerLearnedCmd())
	return cmd
}

// dockerSocket returns the Engine socket from the flag or $DOCKER_HOST.
func dockerSocket(flag string) (string, error) {
	h := flag
	if h == "" {
		h = os.Getenv("DOCKER_HOST")
	}
	if h == "" {
		return "", nil
	}
	if s, ok := strings.CutPrefix(h, "unix://"); ok {
		return s, nil
	}
	if strings.HasPrefix(h, "/") {
		return h, nil
	}
	return "", fmt.Errorf("--docker-host %q: only unix sockets are supported (unix:///path)", h)
}

// checkHostProc verifies that hostProc shows the same pid namespace as
// /proc: the enforcer reads /proc, so it must run with the host's pids.
func checkHostProc(hostProc string) error {
	if filepath.Clean(hostProc) == "/proc" {
		return nil
	}
	a, errA := os.Readlink("/proc/1/ns/pid")
	b, errB := os.Readlink(filepath.Join(hostProc, "1/ns/pid"))
	if errA != nil || errB != nil || a != b {
		return fmt.Errorf("--host-proc %s: not the pid namespace of /proc (%s vs %s): run the enforcer in the host's pid namespace (hostPID: true)", hostProc, b, a)
	}
	return nil
}

func readSmallFile(path, what string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer f.Close()
	data, err := inventory.ReadAllLimited(io.Reader(f), 1<<20)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", what, path, err)
	}
	return data, nil
}

func runEnforcer(cmd *cobra.Command, fl *enforcerFlags) error {
	enrolled := len(fl.gateways) > 0
	if enrolled == (fl.policy != "") {
		return errors.New("enforcer: give either --policy (standalone) or --gateway (enrolled)")
	}
	if err := checkHostProc(fl.hostProc); err != nil {
		return err
	}
	sock, err := dockerSocket(fl.dockerHost)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(fl.stateDir, 0o700); err != nil {
		return fmt.Errorf("enforcer: state directory: %w", err)
	}
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewJSONHandler(cmd.ErrOrStderr(), nil))
	// Probed first, so that the first heartbeat carries the capabilities.
	caps := preflight.Run(ctx)
	cfg := agent.Config{Version: toolVersion(), DockerSocket: sock, StateDir: fl.stateDir, Logger: log, Capabilities: caps}

	if !enrolled {
		path := fl.events
		if path == "" {
			path = filepath.Join(fl.stateDir, "events.jsonl")
		}
		lg, err := events.OpenLog(path, events.LogOptions{})
		if err != nil {
			return fmt.Errorf("enforcer: event log: %w", err)
		}
		defer lg.Close()
		cfg.Sink, cfg.PolicyFile = lg.Append, fl.policy
		a, err := agent.New(cfg)
		if err != nil {
			return err
		}
		log.Info("enforcer: standalone", "policy", fl.policy, "events", path)
		return a.Run(ctx)
	}

	if fl.tokenFile == "" || fl.bootstrapCA == "" {
		return errors.New("enforcer: enrolled mode needs --enrollment-token-file and --bootstrap-ca")
	}
	token, err := readSmallFile(fl.tokenFile, "enrollment token")
	if err != nil {
		return err
	}
	ca, err := readSmallFile(fl.bootstrapCA, "bootstrap CA")
	if err != nil {
		return err
	}
	sp, err := spool.Open(filepath.Join(fl.stateDir, "spool"), spool.Options{})
	if err != nil {
		return fmt.Errorf("enforcer: event spool: %w", err)
	}
	defer sp.Close()
	cfg.Sink = func(e fleet.Event) error { _, err := sp.Append(e); return err }
	cfg.EventsBuffered = func() int { return sp.Stats().Pending }
	var client *fleetclient.Client
	cfg.AgentID = func() string {
		if client == nil {
			return ""
		}
		return client.AgentID()
	}
	a, err := agent.New(cfg)
	if err != nil {
		return err
	}
	hostname, _ := os.Hostname()
	client, err = fleetclient.New(fleetclient.Config{
		StateDir:    filepath.Join(fl.stateDir, "fleet"),
		Gateways:    fl.gateways,
		BootstrapCA: ca,
		ServerName:  fl.serverName,
		Token:       strings.TrimSpace(string(token)),
		Kind:        fleet.KindEnforcer,
		Hostname:    hostname,
		Version:     toolVersion(),
		Spool:       sp,
		Status:      a.Status,
		OnPolicy:    a.SetBundle,
		Logger:      log,
	})
	if err != nil {
		return fmt.Errorf("enforcer: %w", err)
	}
	defer client.Close()
	if b, ok := client.Policy(); ok {
		a.SetBundle(b)
	}
	errc := make(chan error, 2)
	go func() { errc <- client.Run(ctx) }()
	go func() {
		t := time.NewTicker(inventoryInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if client.AgentID() == "" {
					continue
				}
				if err := client.ReportInventory(ctx, a.Inventory()); err != nil {
					log.Warn("enforcer: inventory not reported", "err", err)
				}
			}
		}
	}()
	runErr := a.Run(ctx)
	stop()
	if err := <-errc; err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return runErr
}

func newEnforcerPreflightCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "preflight",
		Short: "Probe which runtime-protection mechanisms this host's kernel allows",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			caps := preflight.Run(cmd.Context())
			return printCapabilities(cmd.OutOrStdout(), caps, asJSON)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func printCapabilities(w io.Writer, caps []fleet.Capability, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(caps)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CAPABILITY\tAVAILABLE\tDETAIL")
	for _, c := range caps {
		fmt.Fprintf(tw, "%s\t%v\t%s\n", c.Name, c.Available, c.Detail)
	}
	return tw.Flush()
}

func newEnforcerSeccompCmd() *cobra.Command {
	var policy, name, image string
	var labels []string
	cmd := &cobra.Command{
		Use:   "seccomp-profile",
		Short: "Print the Docker seccomp profile of the blockedSyscalls in force for a container",
		Long: `Print the seccomp profile (Docker's --security-opt seccomp=FILE JSON) that
blocks the enforce-mode blockedSyscalls of the policies applying to a
container with the given name, image and labels. Seccomp applies when a
container starts: give the profile to new containers; running ones keep
theirs. Audit-mode syscalls are listed on standard error and not blocked.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			b, err := agent.ReadPolicyFile(policy)
			if err != nil {
				return err
			}
			set, err := runtimepolicy.Compile(b, time.Now())
			if err != nil {
				return fmt.Errorf("policy file %s: %w", policy, err)
			}
			w := runtimepolicy.Workload{Container: name, Image: image, Labels: map[string]string{}}
			w.Host, _ = os.Hostname()
			for _, l := range labels {
				k, v, _ := strings.Cut(l, "=")
				w.Labels[k] = v
			}
			var names []string
			for _, s := range set.For(w).Syscalls() {
				if s.Mode == runtimepolicy.Enforce {
					names = append(names, s.Name)
				} else {
					fmt.Fprintf(cmd.ErrOrStderr(), "audit-mode syscall %s (policy %q) is not blocked\n", s.Name, s.Policy)
				}
			}
			if len(names) == 0 {
				return fmt.Errorf("policy file %s: no enforce-mode blockedSyscalls apply to this container: no profile to print", policy)
			}
			p, err := seccomp.Block(names)
			if err != nil {
				return err
			}
			js, err := p.JSON()
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s\n", js)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&policy, "policy", "", "policy file (JSON or YAML)")
	f.StringVar(&name, "name", "", "container name")
	f.StringVar(&image, "image", "", "image reference")
	f.StringArrayVar(&labels, "label", nil, "label key=value (repeatable)")
	_ = cmd.MarkFlagRequired("policy")
	return cmd
}

func newEnforcerLearnedCmd() *cobra.Command {
	var stateDir string
	cmd := &cobra.Command{
		Use:   "learned",
		Short: "Print the policies learned by the enforcer (learning control)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path := filepath.Join(stateDir, agent.LearnedFile)
			data, err := readSmallFile(path, "learned policies")
			if errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("no learned policies in %s yet (learning records executables of containers whose policies enable it)", stateDir)
			}
			if err != nil {
				return err
			}
			if _, err := runtimepolicy.ParseBundle(data); err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			_, err = cmd.OutOrStdout().Write(data)
			return err
		},
	}
	cmd.Flags().StringVar(&stateDir, "state-dir", "/var/lib/mamori-enforcer", "the enforcer's state directory")
	return cmd
}
