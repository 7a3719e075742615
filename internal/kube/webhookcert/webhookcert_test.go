package webhookcert

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/mamorisec/mamori/internal/testenv"
)

// clock is a settable test clock.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestIssueAndServe(t *testing.T) {
	m, err := New(Config{Service: "mamori-kube-enforcer", Namespace: "mamori", IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	if err != nil {
		t.Fatal(err)
	}
	leaf := m.Leaf()
	for _, want := range []string{"mamori-kube-enforcer", "mamori-kube-enforcer.mamori", "mamori-kube-enforcer.mamori.svc", "mamori-kube-enforcer.mamori.svc.cluster.local"} {
		if err := leaf.VerifyHostname(want); err != nil {
			t.Errorf("certificate does not cover %s: %v", want, err)
		}
	}
	// A TLS client trusting only CABundle reaches a server using
	// GetCertificate, by IP and by service name.
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{GetCertificate: m.GetCertificate})
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") })}
	go srv.Serve(l)
	defer srv.Close()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(m.CABundle()) {
		t.Fatal("CA bundle holds no certificate")
	}
	for _, serverName := range []string{"", "mamori-kube-enforcer.mamori.svc"} {
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: serverName}}}
		resp, err := c.Get("https://" + l.Addr().String())
		if err != nil {
			t.Fatalf("server name %q: %v", serverName, err)
		}
		resp.Body.Close()
	}
}

func TestNewErrors(t *testing.T) {
	for _, cfg := range []Config{{}, {Service: "x"}, {DNSNames: []string{"x"}, Validity: 2 * time.Hour, CAValidity: time.Hour}} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
}

func TestRotate(t *testing.T) {
	c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	m, err := New(Config{DNSNames: []string{"hook"}, CAValidity: 300 * 24 * time.Hour, Validity: 30 * 24 * time.Hour, Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	bundle0, leaf0 := m.CABundle(), m.Leaf()
	steps := []struct {
		after    time.Duration
		caChange bool
		newLeaf  bool
	}{
		{time.Hour, false, false},           // fresh
		{19 * 24 * time.Hour, false, false}, // just before a third of 30 days is left
		{2 * 24 * time.Hour, false, true},   // inside the renewal window: new leaf, same CA
		{150 * 24 * time.Hour, false, true}, // day 171: the leaf of day 21 expired
		{40 * 24 * time.Hour, true, true},   // day 211: inside the CA's renewal window
	}
	prev := leaf0
	for i, s := range steps {
		c.t = c.t.Add(s.after)
		changed, err := m.Rotate()
		if err != nil {
			t.Fatal(err)
		}
		leaf := m.Leaf()
		if changed != s.caChange || (leaf != prev) != s.newLeaf {
			t.Fatalf("step %d: CA changed %v (want %v), new leaf %v (want %v)", i, changed, s.caChange, leaf != prev, s.newLeaf)
		}
		prev = leaf
	}
	// After a CA rotation the bundle holds the new and the old CA, and the
	// new leaf verifies against it.
	bundle := m.CABundle()
	if !bytes.Contains(bundle, bundle0) || bytes.Equal(bundle, bundle0) {
		t.Fatal("bundle after CA rotation lacks the old CA or the new one")
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(bundle)
	if _, err := m.Leaf().Verify(x509.VerifyOptions{Roots: pool, DNSName: "hook", CurrentTime: c.t}); err != nil {
		t.Fatalf("new leaf does not verify: %v", err)
	}
	// Once the old CA expires it leaves the bundle.
	c.t = c.t.Add(100 * 24 * time.Hour)
	changed, err := m.Rotate()
	if err != nil || !changed || bytes.Contains(m.CABundle(), bundle0) {
		t.Fatalf("old CA still in the bundle after it expired (changed %v, %v)", changed, err)
	}
}

func TestSyncRealAPIServer(t *testing.T) {
	k := testenv.KubeAPIServer(t)
	rc, err := clientcmd.BuildConfigFromFlags("", k.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	client := kubernetes.NewForConfigOrDie(rc)
	ctx := context.Background()
	none := admissionregistrationv1.SideEffectClassNone
	fail := admissionregistrationv1.Ignore
	url := "https://127.0.0.1:1/validate"
	hook := func(name string) admissionregistrationv1.ValidatingWebhook {
		return admissionregistrationv1.ValidatingWebhook{
			Name: name, SideEffects: &none, FailurePolicy: &fail, AdmissionReviewVersions: []string{"v1"},
			ClientConfig: admissionregistrationv1.WebhookClientConfig{URL: &url},
			// Matches nothing: only the caBundle is under test.
			NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"webhookcert-test": "never"}},
		}
	}
	mhook := admissionregistrationv1.MutatingWebhook{
		Name: "m.mamori.test", SideEffects: &none, FailurePolicy: &fail, AdmissionReviewVersions: []string{"v1"},
		ClientConfig:      admissionregistrationv1.WebhookClientConfig{URL: &url},
		NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"webhookcert-test": "never"}},
	}
	vwc := &admissionregistrationv1.ValidatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "webhookcert-test"},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{hook("a.mamori.test"), hook("b.mamori.test")}}
	mwc := &admissionregistrationv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "webhookcert-test"},
		Webhooks: []admissionregistrationv1.MutatingWebhook{mhook}}
	if _, err := client.AdmissionregistrationV1().ValidatingWebhookConfigurations().Create(ctx, vwc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.AdmissionregistrationV1().MutatingWebhookConfigurations().Create(ctx, mwc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		client.AdmissionregistrationV1().ValidatingWebhookConfigurations().Delete(ctx, "webhookcert-test", metav1.DeleteOptions{})
		client.AdmissionregistrationV1().MutatingWebhookConfigurations().Delete(ctx, "webhookcert-test", metav1.DeleteOptions{})
	})

	c := &clock{t: time.Now()}
	m, err := New(Config{DNSNames: []string{"hook"}, ValidatingWebhook: "webhookcert-test", MutatingWebhook: "webhookcert-test",
		CAValidity: 90 * 24 * time.Hour, Validity: 30 * 24 * time.Hour, Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	check := func(what string) {
		t.Helper()
		want := m.CABundle()
		v, err := client.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, "webhookcert-test", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range v.Webhooks {
			if !bytes.Equal(w.ClientConfig.CABundle, want) {
				t.Errorf("%s: validating webhook %s caBundle not patched", what, w.Name)
			}
		}
		mw, err := client.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, "webhookcert-test", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(mw.Webhooks[0].ClientConfig.CABundle, want) {
			t.Errorf("%s: mutating webhook caBundle not patched", what)
		}
	}
	if err := m.Sync(ctx, client); err != nil {
		t.Fatal(err)
	}
	check("first sync")
	// A CA rotation is patched in too.
	c.t = c.t.Add(70 * 24 * time.Hour)
	if changed, err := m.Rotate(); err != nil || !changed {
		t.Fatalf("CA not rotated: %v %v", changed, err)
	}
	if err := m.Sync(ctx, client); err != nil {
		t.Fatal(err)
	}
	check("after CA rotation")

	// A configuration that does not exist is named in the error.
	m2, _ := New(Config{DNSNames: []string{"hook"}, ValidatingWebhook: "no-such-webhook"})
	if err := m2.Sync(ctx, client); err == nil || !strings.Contains(err.Error(), "no-such-webhook") {
		t.Errorf("Sync of a missing configuration: %v", err)
	}
}
