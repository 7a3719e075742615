// Package webhookcert issues and rotates the serving certificate of the
// kube-enforcer's admission webhook: a private CA and a serving certificate
// for the webhook Service's DNS names (plus any IPs), renewed before they
// expire, with the CA bundle patched into the webhook configurations that
// call the webhook.
package webhookcert

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
)

// Config says what to issue.
type Config struct {
	// Service and Namespace name the webhook Service; the certificate
	// covers service, service.namespace, service.namespace.svc and
	// service.namespace.svc.cluster.local.
	Service, Namespace string
	// DNSNames and IPs are extra subject alternative names (127.0.0.1 for
	// a webhook reached by URL in tests).
	DNSNames []string
	IPs      []net.IP
	// CAValidity and Validity are the lifetimes of the CA and of the
	// serving certificate (defaults 10 years and 1 year).
	CAValidity, Validity time.Duration
	// RenewBefore renews a certificate this long before it expires
	// (default a third of its lifetime).
	RenewBefore time.Duration
	// ValidatingWebhook and MutatingWebhook name the webhook
	// configurations whose caBundle Sync patches ("" for none).
	ValidatingWebhook, MutatingWebhook string
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// Manager holds the current CA and serving certificate.
type Manager struct {
	cfg Config

	mu     sync.Mutex
	caKey  *ecdsa.PrivateKey
	ca     *x509.Certificate
	prevCA *x509.Certificate // the CA before the last CA rotation, trusted until it expires
	cert   *tls.Certificate
	leaf   *x509.Certificate
}

// New returns a manager with a fresh CA and serving certificate.
func New(cfg Config) (*Manager, error) {
	if cfg.Service == "" && len(cfg.DNSNames) == 0 && len(cfg.IPs) == 0 {
		return nil, errors.New("webhook certificate: no service, DNS name or IP to issue for")
	}
	if cfg.Service != "" && cfg.Namespace == "" {
		return nil, fmt.Errorf("webhook certificate: service %q has no namespace", cfg.Service)
	}
	if cfg.CAValidity == 0 {
		cfg.CAValidity = 10 * 365 * 24 * time.Hour
	}
	if cfg.Validity == 0 {
		cfg.Validity = 365 * 24 * time.Hour
	}
	if cfg.Validity > cfg.CAValidity {
		return nil, fmt.Errorf("webhook certificate: validity %s exceeds the CA's %s", cfg.Validity, cfg.CAValidity)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	m := &Manager{cfg: cfg}
	if err := m.newCA(); err != nil {
		return nil, err
	}
	if err := m.newLeaf(); err != nil {
		return nil, err
	}
	return m, nil
}

// names returns the DNS names the serving certificate covers.
func (c *Config) names() []string {
	var names []string
	if c.Service != "" {
		s, ns := c.Service, c.Namespace
		names = append(names, s, s+"."+ns, s+"."+ns+".svc", s+"."+ns+".svc.cluster.local")
	}
	return append(names, c.DNSNames...)
}

func serial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
}

// newCA replaces the CA; the old one stays in the bundle until it expires.
func (m *Manager) newCA() error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("webhook CA key: %w", err)
	}
	sn, err := serial()
	if err != nil {
		return err
	}
	now := m.cfg.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          sn,
		Subject:               pkix.Name{CommonName: "mamori kube-enforcer webhook CA", Organization: []string{"mamori"}},
		NotBefore:             now.Add(-5 * time.Minute),
		NotAfter:              now.Add(m.cfg.CAValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return fmt.Errorf("webhook CA certificate: %w", err)
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		return err
	}
	m.prevCA, m.ca, m.caKey = m.ca, ca, key
	return nil
}

// newLeaf issues a serving certificate from the current CA.
func (m *Manager) newLeaf() error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("webhook serving key: %w", err)
	}
	sn, err := serial()
	if err != nil {
		return err
	}
	now := m.cfg.Now()
	names := m.cfg.names()
	cn := "mamori-kube-enforcer"
	if len(names) > 0 {
		cn = names[0]
	}
	notAfter := now.Add(m.cfg.Validity)
	if notAfter.After(m.ca.NotAfter) {
		notAfter = m.ca.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber: sn,
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    now.Add(-5 * time.Minute),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     names,
		IPAddresses:  m.cfg.IPs,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, m.ca, &key.PublicKey, m.caKey)
	if err != nil {
		return fmt.Errorf("webhook serving certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return err
	}
	m.leaf = leaf
	m.cert = &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
	return nil
}

// renewBefore returns how long before expiry a certificate valid for
// lifetime is renewed.
func (m *Manager) renewBefore(lifetime time.Duration) time.Duration {
	if m.cfg.RenewBefore > 0 {
		return m.cfg.RenewBefore
	}
	return lifetime / 3
}

// Rotate renews the CA and/or the serving certificate when they are within
// their renewal window, and reports whether the CA bundle changed (the
// webhook configurations must then be patched).
func (m *Manager) Rotate() (caChanged bool, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.cfg.Now()
	if now.After(m.ca.NotAfter.Add(-m.renewBefore(m.ca.NotAfter.Sub(m.ca.NotBefore)))) {
		if err := m.newCA(); err != nil {
			return false, err
		}
		caChanged = true
	}
	if caChanged || now.After(m.leaf.NotAfter.Add(-m.renewBefore(m.leaf.NotAfter.Sub(m.leaf.NotBefore)))) {
		if err := m.newLeaf(); err != nil {
			return caChanged, err
		}
	}
	if m.prevCA != nil && now.After(m.prevCA.NotAfter) {
		m.prevCA = nil
		caChanged = true
	}
	return caChanged, nil
}

// GetCertificate serves the current certificate (tls.Config.GetCertificate).
func (m *Manager) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cert, nil
}

// Leaf returns the current serving certificate.
func (m *Manager) Leaf() *x509.Certificate {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.leaf
}

// CABundle returns the PEM CA bundle clients must trust: the current CA
// and, after a CA rotation, the previous one until it expires (so webhooks
// keep working while the API server picks up the new bundle).
func (m *Manager) CABundle() []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	var b bytes.Buffer
	pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: m.ca.Raw})
	if m.prevCA != nil {
		pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: m.prevCA.Raw})
	}
	return b.Bytes()
}

// Sync patches the CA bundle into every webhook of the configured
// ValidatingWebhookConfiguration and MutatingWebhookConfiguration, when it
// differs. A configuration that does not exist is an error naming it.
func (m *Manager) Sync(ctx context.Context, client kubernetes.Interface) error {
	bundle := m.CABundle()
	if name := m.cfg.ValidatingWebhook; name != "" {
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			api := client.AdmissionregistrationV1().ValidatingWebhookConfigurations()
			c, err := api.Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			changed := false
			for i := range c.Webhooks {
				if !bytes.Equal(c.Webhooks[i].ClientConfig.CABundle, bundle) {
					c.Webhooks[i].ClientConfig.CABundle, changed = bundle, true
				}
			}
			if !changed {
				return nil
			}
			_, err = api.Update(ctx, c, metav1.UpdateOptions{})
			return err
		})
		if err != nil {
			return fmt.Errorf("patching the CA bundle of ValidatingWebhookConfiguration %s: %w", name, describe(err))
		}
	}
	if name := m.cfg.MutatingWebhook; name != "" {
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			api := client.AdmissionregistrationV1().MutatingWebhookConfigurations()
			c, err := api.Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			changed := false
			for i := range c.Webhooks {
				if !bytes.Equal(c.Webhooks[i].ClientConfig.CABundle, bundle) {
					c.Webhooks[i].ClientConfig.CABundle, changed = bundle, true
				}
			}
			if !changed {
				return nil
			}
			_, err = api.Update(ctx, c, metav1.UpdateOptions{})
			return err
		})
		if err != nil {
			return fmt.Errorf("patching the CA bundle of MutatingWebhookConfiguration %s: %w", name, describe(err))
		}
	}
	return nil
}

func describe(err error) error {
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("it does not exist (install the webhook configuration first): %w", err)
	}
	return err
}

// Run syncs once, then rotates and syncs every interval until ctx ends,
// reporting errors to onError (which may be nil).
func (m *Manager) Run(ctx context.Context, client kubernetes.Interface, interval time.Duration, onError func(error)) {
	report := func(err error) {
		if err != nil && onError != nil {
			onError(err)
		}
	}
	report(m.Sync(ctx, client))
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_, err := m.Rotate()
			report(err)
			// Sync even when nothing rotated: it retries a failed patch and
			// repairs a bundle someone overwrote; unchanged, it only reads.
			report(m.Sync(ctx, client))
		}
	}
}
