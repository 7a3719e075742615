package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/mamorisec/mamori/internal/inventory"
	"github.com/mamorisec/mamori/internal/kube/admission"
	"github.com/mamorisec/mamori/internal/kube/enforcer"
)

// maxSecretFile bounds token, CA and configuration files read by the
// kube-enforcer.
const maxSecretFile = 1 << 20

type kubeEnforcerFlags struct {
	kubeconfig, cluster                     string
	webhookAddr, webhookCert, webhookKey    string
	validating, mutating, service           string
	webhookIPs, webhookDNS                  []string
	server, serverCA, tokenFile, enrollFile string
	config, stateDir, logFormat             string
}

func newKubeEnforcerCmd() *cobra.Command {
	var fl kubeEnforcerFlags
	cmd := &cobra.Command{
		Use:   "kube-enforcer",
		Short: "Run the Kubernetes admission webhook and cluster discovery, wired to the console server",
		Long: `kube-enforcer serves mamori's admission webhook over HTTPS: the image
assurance gate (verdicts from the console server), the Kubernetes posture
controls, and kubectl exec/attach/port-forward decided by the runtime
policies the server distributes. It records every decision in the server's
audit trail and reports the cluster's workloads to the server's inventory.
docs/kube-enforcer.md describes it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var lh slog.Handler = slog.NewJSONHandler(cmd.ErrOrStderr(), nil)
			if fl.logFormat == "text" {
				lh = slog.NewTextHandler(cmd.ErrOrStderr(), nil)
			}
			cfg, err := fl.enforcerConfig()
			if err != nil {
				return err
			}
			cfg.Log = slog.New(lh)
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return enforcer.Run(ctx, cfg)
		},
	}
	f := cmd.Flags()
	f.StringVar(&fl.kubeconfig, "kubeconfig", "", "kubeconfig file (default: the in-cluster service account, else $KUBECONFIG or ~/.kube/config)")
	f.StringVar(&fl.cluster, "cluster", "kubernetes", "the cluster's name in the console (events, inventory, criteria on cluster)")
	f.StringVar(&fl.webhookAddr, "webhook-addr", "0.0.0.0:8443", "address to serve the admission webhook on (HTTPS)")
	f.StringVar(&fl.webhookCert, "webhook-cert", "", "serving certificate file (PEM), re-read every minute; default: generate a CA and certificate and keep the webhook configurations' caBundle current")
	f.StringVar(&fl.webhookKey, "webhook-key", "", "serving certificate's key file (PEM), with --webhook-cert")
	f.StringVar(&fl.validating, "webhook-configuration", "", "ValidatingWebhookConfiguration whose caBundle the kube-enforcer keeps current")
	f.StringVar(&fl.mutating, "mutating-webhook-configuration", "", "MutatingWebhookConfiguration whose caBundle the kube-enforcer keeps current")
	f.StringVar(&fl.service, "service", "", "the webhook Service as NAME.NAMESPACE: the generated certificate covers its DNS names")
	f.StringSliceVar(&fl.webhookIPs, "webhook-ip", nil, "extra IP address for the generated certificate (repeatable)")
	f.StringSliceVar(&fl.webhookDNS, "webhook-dns", nil, "extra DNS name for the generated certificate (repeatable)")
	f.StringVar(&fl.server, "server", "", "console server URL (https://…)")
	f.StringVar(&fl.serverCA, "server-ca", "", "CA certificate file (PEM) to verify the server by (default: the system roots)")
	f.StringVar(&fl.tokenFile, "token-file", "", "file holding the API token (images:view, scans:view, enforcers:edit; scans:edit for unscanned: scan)")
	f.StringVar(&fl.enrollFile, "enrollment-token-file", "", "file holding the enforcer group's enrollment token (needed until enrolled)")
	f.StringVar(&fl.config, "config", "", "admission configuration file (YAML; default: the built-in defaults)")
	f.StringVar(&fl.stateDir, "state-dir", "/var/lib/mamori-kube-enforcer", "directory keeping the enrollment and the last policy bundle")
	f.StringVar(&fl.logFormat, "log-format", "json", "log format: json or text")
	return cmd
}

// readSmall reads a file of at most maxSecretFile bytes.
func readSmall(path, what string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer f.Close()
	b, err := inventory.ReadAllLimited(f, maxSecretFile)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", what, path, err)
	}
	return b, nil
}

// enforcerConfig checks the flags and builds the kube-enforcer's
// configuration.
func (fl *kubeEnforcerFlags) enforcerConfig() (enforcer.Config, error) {
	cfg := enforcer.Config{Cluster: fl.cluster, Version: toolVersion(), WebhookAddr: fl.webhookAddr,
		CertFile: fl.webhookCert, KeyFile: fl.webhookKey, ValidatingWebhook: fl.validating, MutatingWebhook: fl.mutating,
		DNSNames: fl.webhookDNS, Server: fl.server, StateDir: fl.stateDir}
	if fl.logFormat != "json" && fl.logFormat != "text" {
		return cfg, fmt.Errorf("--log-format %q: want json or text", fl.logFormat)
	}
	if fl.server == "" || !strings.HasPrefix(fl.server, "https://") {
		return cfg, errors.New("--server: the console server's https:// URL is required")
	}
	if fl.tokenFile == "" {
		return cfg, errors.New("--token-file: an API token is required")
	}
	if fl.service != "" {
		name, ns, ok := strings.Cut(fl.service, ".")
		if !ok || name == "" || ns == "" || strings.Contains(ns, ".") {
			return cfg, fmt.Errorf("--service %q: want NAME.NAMESPACE", fl.service)
		}
		cfg.Service, cfg.Namespace = name, ns
	}
	for _, s := range fl.webhookIPs {
		ip := net.ParseIP(s)
		if ip == nil {
			return cfg, fmt.Errorf("--webhook-ip %q: not an IP address", s)
		}
		cfg.IPs = append(cfg.IPs, ip)
	}
	tok, err := readSmall(fl.tokenFile, "--token-file")
	if err != nil {
		return cfg, err
	}
	if cfg.Token = strings.TrimSpace(string(tok)); cfg.Token == "" {
		return cfg, fmt.Errorf("--token-file %s is empty", fl.tokenFile)
	}
	if fl.enrollFile != "" {
		b, err := readSmall(fl.enrollFile, "--enrollment-token-file")
		if err != nil {
			return cfg, err
		}
		cfg.EnrollmentToken = strings.TrimSpace(string(b))
	}
	if fl.serverCA != "" {
		b, err := readSmall(fl.serverCA, "--server-ca")
		if err != nil {
			return cfg, err
		}
		cfg.ServerCA = x509.NewCertPool()
		if !cfg.ServerCA.AppendCertsFromPEM(b) {
			return cfg, fmt.Errorf("--server-ca %s: no PEM certificate", fl.serverCA)
		}
	}
	cfg.Admission = admission.DefaultConfig()
	if fl.config != "" {
		b, err := readSmall(fl.config, "--config")
		if err != nil {
			return cfg, err
		}
		if cfg.Admission, err = admission.ParseConfig(b); err != nil {
			return cfg, fmt.Errorf("--config %s: %w", fl.config, err)
		}
	}
	rc, err := fl.restConfig()
	if err != nil {
		return cfg, err
	}
	if cfg.Kube, err = kubernetes.NewForConfig(rc); err != nil {
		return cfg, fmt.Errorf("kubernetes client: %w", err)
	}
	return cfg, nil
}

// restConfig returns the API client configuration: --kubeconfig, else
// in-cluster, else the usual kubeconfig loading rules.
func (fl *kubeEnforcerFlags) restConfig() (*rest.Config, error) {
	if fl.kubeconfig != "" {
		rc, err := clientcmd.BuildConfigFromFlags("", fl.kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("--kubeconfig %s: %w", fl.kubeconfig, err)
		}
		return rc, nil
	}
	if rc, err := rest.InClusterConfig(); err == nil {
		return rc, nil
	}
	rc, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(clientcmd.NewDefaultClientConfigLoadingRules(), nil).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("no in-cluster configuration and no usable kubeconfig (give --kubeconfig): %w", err)
	}
	return rc, nil
}
