package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/mamorisec/mamori/internal/demo"
	"github.com/mamorisec/mamori/internal/pipeline"
	"github.com/mamorisec/mamori/internal/report"
	"github.com/mamorisec/mamori/internal/server"
	"github.com/mamorisec/mamori/internal/server/jobs"
	"github.com/mamorisec/mamori/internal/server/ldapauth"
	"github.com/mamorisec/mamori/internal/server/oidcauth"
	"github.com/mamorisec/mamori/internal/vulndb"
)

// defaultDataDir is $MAMORI_DATA_DIR, else mamori in the user's data
// directory.
func defaultDataDir() string {
	if d := os.Getenv("MAMORI_DATA_DIR"); d != "" {
		return d
	}
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "mamori")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "mamori-data")
	}
	return filepath.Join(home, ".local", "share", "mamori")
}

type serverFlags struct {
	addr, dataDir, databaseURL, vulnDB, adminPasswordFile string
	tlsCert, tlsKey                                       string
	plainHTTP                                             bool
	workers                                               int
	logFormat                                             string
	ldapConfig                                            string
	oidcConfig                                            string
}

// oidcFile is the --oidc-config file (JSON); docs/sso.md describes it.
type oidcFile struct {
	Issuer           string   `json:"issuer"`
	ClientID         string   `json:"clientID"`
	ClientSecretFile string   `json:"clientSecretFile"`
	RedirectURL      string   `json:"redirectURL"`
	Scopes           []string `json:"scopes"`
	UsernameClaim    string   `json:"usernameClaim"`
	GroupsClaim      string   `json:"groupsClaim"`
}

// loadOIDC reads an --oidc-config file strictly.
func loadOIDC(path string) (*oidcauth.Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--oidc-config: %w", err)
	}
	var f oidcFile
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("--oidc-config %s: %w", path, err)
	}
	c := &oidcauth.Config{Name: "oidc", Issuer: f.Issuer, ClientID: f.ClientID, RedirectURL: f.RedirectURL, Scopes: f.Scopes,
		UsernameClaim: f.UsernameClaim, GroupsClaim: f.GroupsClaim}
	if f.ClientSecretFile != "" {
		sec, err := os.ReadFile(f.ClientSecretFile)
		if err != nil {
			return nil, fmt.Errorf("--oidc-config %s: clientSecretFile: %w", path, err)
		}
		c.ClientSecret = string(trimNewline(sec))
	}
	return c, nil
}

// ldapFile is the --ldap-config file (JSON); docs/sso.md describes it.
type ldapFile struct {
	URL               string `json:"url"`
	StartTLS          bool   `json:"startTLS"`
	AllowPlaintext    bool   `json:"allowPlaintext"`
	CAFile            string `json:"caFile"`
	BindDN            string `json:"bindDN"`
	BindPasswordFile  string `json:"bindPasswordFile"`
	UserBaseDN        string `json:"userBaseDN"`
	UserFilter        string `json:"userFilter"`
	MemberOfAttribute string `json:"memberOfAttribute"`
	GroupBaseDN       string `json:"groupBaseDN"`
	GroupFilter       string `json:"groupFilter"`
	Timeout           string `json:"timeout"`
}

// loadLDAP reads an --ldap-config file strictly.
func loadLDAP(path string) (*ldapauth.Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--ldap-config: %w", err)
	}
	var f ldapFile
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("--ldap-config %s: %w", path, err)
	}
	c := &ldapauth.Config{Name: "ldap", URL: f.URL, StartTLS: f.StartTLS, AllowPlaintext: f.AllowPlaintext, BindDN: f.BindDN,
		UserBaseDN: f.UserBaseDN, UserFilter: f.UserFilter, MemberOfAttribute: f.MemberOfAttribute, GroupBaseDN: f.GroupBaseDN, GroupFilter: f.GroupFilter}
	if f.BindPasswordFile != "" {
		pw, err := os.ReadFile(f.BindPasswordFile)
		if err != nil {
			return nil, fmt.Errorf("--ldap-config %s: bindPasswordFile: %w", path, err)
		}
		c.BindPassword = string(trimNewline(pw))
	}
	if f.CAFile != "" {
		pem, err := os.ReadFile(f.CAFile)
		if err != nil {
			return nil, fmt.Errorf("--ldap-config %s: caFile: %w", path, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--ldap-config %s: caFile %s holds no PEM certificate", path, f.CAFile)
		}
		c.TLS = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	if f.Timeout != "" {
		d, err := time.ParseDuration(f.Timeout)
		if err != nil {
			return nil, fmt.Errorf("--ldap-config %s: timeout: %w", path, err)
		}
		c.Timeout = d
	}
	return c, nil
}

func newServerCmd() *cobra.Command {
	var fl serverFlags
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the console server (REST API, scans, policies, audit trail)",
		Long: `Run mamori's console server on embedded defaults: an SQLite database and a
self-signed TLS certificate in the data directory, and local scan workers.

On the first start it creates the account "admin" with a one-time password it
prints once (or the password in --admin-password-file or
$MAMORI_ADMIN_PASSWORD). There is no default password.

Use --database-url postgres://... for PostgreSQL. Without a vulnerability
database (--db) the server builds the demo feed's so it can scan at once;
run "mamori db update" for real data.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runServer(cmd, &fl) },
	}
	f := cmd.Flags()
	f.StringVar(&fl.addr, "addr", "127.0.0.1:8443", "listen address")
	f.StringVar(&fl.dataDir, "data-dir", defaultDataDir(), "data directory (server key, TLS certificate, SQLite database)")
	f.StringVar(&fl.databaseURL, "database-url", os.Getenv("MAMORI_DATABASE_URL"), "PostgreSQL URL (default: SQLite in the data directory)")
	f.StringVar(&fl.vulnDB, "db", "", "vulnerability database file (default: the data directory's, built from the demo feed on first start)")
	f.StringVar(&fl.adminPasswordFile, "admin-password-file", "", "file holding the first admin password (default: generated and printed once)")
	f.StringVar(&fl.tlsCert, "tls-cert", "", "TLS certificate file (default: a self-signed one in the data directory)")
	f.StringVar(&fl.tlsKey, "tls-key", "", "TLS key file")
	f.BoolVar(&fl.plainHTTP, "http", false, "serve plain HTTP (only on a loopback address, e.g. behind a TLS proxy on the same host)")
	f.IntVar(&fl.workers, "workers", 1, "local scan workers")
	f.StringVar(&fl.logFormat, "log-format", "json", "log format: json or text")
	f.StringVar(&fl.ldapConfig, "ldap-config", "", "LDAP/Active Directory login configuration (JSON, see docs/sso.md)")
	f.StringVar(&fl.oidcConfig, "oidc-config", "", "OIDC single sign-on configuration (JSON, see docs/sso.md)")
	return cmd
}

func runServer(cmd *cobra.Command, fl *serverFlags) error {
	host, _, err := net.SplitHostPort(fl.addr)
	if err != nil {
		return fmt.Errorf("--addr %q: %w", fl.addr, err)
	}
	loopback := host == "localhost" || (net.ParseIP(host) != nil && net.ParseIP(host).IsLoopback())
	if fl.plainHTTP && !loopback {
		return fmt.Errorf("--http serves plain HTTP, which is allowed on a loopback address only (not %s)", fl.addr)
	}
	var lh slog.Handler = slog.NewJSONHandler(cmd.ErrOrStderr(), nil)
	if fl.logFormat == "text" {
		lh = slog.NewTextHandler(cmd.ErrOrStderr(), nil)
	}
	log := slog.New(lh)
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	vdb := fl.vulnDB
	if vdb == "" {
		vdb = filepath.Join(fl.dataDir, "vulnerabilities.db")
		if _, err := os.Stat(vdb); errors.Is(err, os.ErrNotExist) {
			if err := os.MkdirAll(fl.dataDir, 0o700); err != nil {
				return err
			}
			if err := buildDemoDB(vdb); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "No vulnerability database given: built the demo feed's into %s. Run `mamori db update --db %s` for real data.\n", vdb, vdb)
		}
	}
	var ldapCfg *ldapauth.Config
	if fl.ldapConfig != "" {
		if ldapCfg, err = loadLDAP(fl.ldapConfig); err != nil {
			return err
		}
	}
	var oidcCfg *oidcauth.Config
	if fl.oidcConfig != "" {
		if oidcCfg, err = loadOIDC(fl.oidcConfig); err != nil {
			return err
		}
	}
	var password string
	srv, err := server.New(ctx, server.Config{LDAP: ldapCfg, OIDC: oidcCfg,
		DataDir: fl.dataDir, DatabaseURL: fl.databaseURL, VulnDB: vdb, AdminPasswordFile: fl.adminPasswordFile,
		InsecureCookie: fl.plainHTTP, Workers: fl.workers, Log: log,
		FirstRun: func(_, pw string) { password = pw },
	})
	if err != nil {
		return err
	}
	defer srv.Close()
	l, err := net.Listen("tcp", fl.addr)
	if err != nil {
		return err
	}
	scheme := "http"
	if !fl.plainHTTP {
		var tc *tls.Config
		if fl.tlsCert != "" {
			c, err := tls.LoadX509KeyPair(fl.tlsCert, fl.tlsKey)
			if err != nil {
				l.Close()
				return fmt.Errorf("TLS certificate: %w", err)
			}
			tc = &tls.Config{Certificates: []tls.Certificate{c}, MinVersion: tls.VersionTLS12}
		} else if tc, err = srv.SelfSignedTLS([]string{"localhost", "127.0.0.1", "::1", host}); err != nil {
			l.Close()
			return err
		}
		l = tls.NewListener(l, tc)
		scheme = "https"
	}
	srv.Start()
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "mamori console: %s://%s\n", scheme, l.Addr())
	if password != "" {
		fmt.Fprintf(out, "First start: log in as %q with the one-time password %s\n", server.AdminUser, password)
		fmt.Fprintln(out, "It is shown only now and stored only as a hash; change it after logging in.")
	}
	return srv.Serve(ctx, l)
}

// buildDemoDB builds the demo feed's vulnerability database at path.
func buildDemoDB(path string) error {
	dir, err := os.MkdirTemp("", "mamori-feed-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := demo.WriteFeed(dir); err != nil {
		return err
	}
	b := vulndb.NewBuilder()
	if _, err := b.AddPath("mamori-demo-feed", "built-in demo feed", dir); err != nil {
		return err
	}
	_, err = b.Write(path, time.Now())
	return err
}

func newScannerCmd() *cobra.Command {
	var serverURL, tokenFile, tokenFlag, dbPath, name string
	cmd := &cobra.Command{
		Use:   "scanner --server URL",
		Short: "Run a remote scan worker for a console server",
		Long: `Pull scan jobs from a console server, scan the images here (on a build server,
next to a private registry) and post the results. The token (an API token
with the Scanner role on the Global scope) comes from --token-file,
$MAMORI_TOKEN or --token.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			token := os.Getenv("MAMORI_TOKEN")
			if tokenFlag != "" {
				token = tokenFlag
			}
			if tokenFile != "" {
				b, err := os.ReadFile(tokenFile)
				if err != nil {
					return fmt.Errorf("--token-file: %w", err)
				}
				token = string(trimNewline(b))
			}
			if token == "" {
				return errors.New("no token: set --token-file, MAMORI_TOKEN or --token")
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			scan := func(ctx context.Context, ref string) (*report.Scan, error) {
				db, err := vulndb.Open(dbPath)
				if err != nil {
					return nil, err
				}
				defer db.Close()
				return pipeline.Run(ctx, ref, pipeline.Config{DB: db})
			}
			logf := func(format string, args ...any) { fmt.Fprintf(cmd.ErrOrStderr(), format+"\n", args...) }
			return jobs.RunRemoteWorker(ctx, serverURL, token, scan, jobs.WorkerOptions{Name: name, Logf: logf})
		},
	}
	cmd.Flags().StringVar(&serverURL, "server", "", "console server URL (https://...)")
	cmd.Flags().StringVar(&tokenFile, "token-file", "", "file holding the API token")
	cmd.Flags().StringVar(&tokenFlag, "token", "", "the API token (visible in process lists: prefer --token-file or $MAMORI_TOKEN)")
	cmd.Flags().StringVar(&dbPath, "db", defaultDBPath(), "vulnerability database file")
	cmd.Flags().StringVar(&name, "name", hostname(), "worker name shown in the console")
	_ = cmd.MarkFlagRequired("server")
	return cmd
}

func trimNewline(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

func hostname() string {
	h, _ := os.Hostname()
	return h
}

func newAuditCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "audit", Short: "Work with the console's audit trail"}
	var dataDir, databaseURL string
	verify := &cobra.Command{
		Use:   "verify",
		Short: "Check the audit trail's hash chain",
		Long: `Walk the console's audit trail and check every event's hash and its link to
the previous event, with the server key of the data directory. Exits 1 at the
first broken link, naming it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ok, err := server.VerifyAudit(cmd.Context(), dataDir, databaseURL, cmd.OutOrStdout())
			if err != nil {
				return err
			}
			if !ok {
				return &exitError{code: 1}
			}
			return nil
		},
	}
	verify.Flags().StringVar(&dataDir, "data-dir", defaultDataDir(), "the server's data directory")
	verify.Flags().StringVar(&databaseURL, "database-url", os.Getenv("MAMORI_DATABASE_URL"), "PostgreSQL URL (default: SQLite in the data directory)")
	cmd.AddCommand(verify)
	return cmd
}
