package server

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/mamorisec/mamori/internal/server/rbac"
	"github.com/mamorisec/mamori/internal/server/store"
)

// TestGatewayCertificate has a Gateway-role token obtain a serving
// certificate for its names, checks the certificate and its audit event,
// and that bad names, bad requests and a host-scoped gateway are refused.
func TestGatewayCertificate(t *testing.T) {
	f := newFixture(t, "")
	gw := f.newGateway("gw", rbac.GlobalScopeName)
	var got GatewayCertificate
	req := GatewayCertificateRequest{CSR: newCSR(t), Hosts: []string{"GW.Example.", "127.0.0.1", "gw.example", "::1"}}
	if code, body := gw.post(PathGatewayCertificate, req, &got); code != http.StatusOK {
		t.Fatalf("gateway certificate: %d %s", code, body)
	}
	b, _ := pem.Decode([]byte(got.Certificate))
	if b == nil {
		t.Fatalf("no PEM certificate: %q", got.Certificate)
	}
	cert, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if string(f.srv.FleetCA().CertPEM()) != got.CA {
		t.Error("answer's CA is not the fleet CA")
	}
	for _, u := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		if _, err := f.srv.FleetCA().Verify(cert, u); err != nil {
			t.Errorf("usage %v: %v", u, err)
		}
	}
	var ips []string
	for _, ip := range cert.IPAddresses {
		ips = append(ips, ip.String())
	}
	if !slices.Equal(cert.DNSNames, []string{"gw.example"}) || !slices.Equal(ips, []string{"127.0.0.1", "::1"}) || cert.Subject.CommonName != "gw.example" {
		t.Errorf("names: CN %q, DNS %v, IP %v", cert.Subject.CommonName, cert.DNSNames, ips)
	}
	if err := cert.VerifyHostname("gw.example"); err != nil {
		t.Error(err)
	}
	evs := f.auditEvents("action=fleet.gateway_certificate")
	if len(evs) != 1 || evs[0].ResourceID != "gw.example" || !strings.Contains(string(evs[0].After), got.Serial) || evs[0].Actor.Name == "" {
		t.Errorf("audit: %+v", evs)
	}

	for _, tc := range []struct {
		name  string
		hosts []string
		csr   string
	}{
		{"no hosts", nil, newCSR(t)},
		{"wildcard", []string{"*.example"}, newCSR(t)},
		{"URL", []string{"https://gw.example"}, newCSR(t)},
		{"space", []string{"gw example"}, newCSR(t)},
		{"empty label", []string{"gw..example"}, newCSR(t)},
		{"leading hyphen", []string{"-gw.example"}, newCSR(t)},
		{"long label", []string{strings.Repeat("a", 64) + ".example"}, newCSR(t)},
		{"unspecified", []string{"0.0.0.0"}, newCSR(t)},
		{"multicast", []string{"ff02::1"}, newCSR(t)},
		{"too many", slices.Repeat([]string{"gw.example"}, MaxGatewayHosts+1), newCSR(t)},
		{"unicode", []string{"gätewäy.example"}, newCSR(t)},
		{"bad CSR", []string{"gw.example"}, "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"},
		{"no CSR", []string{"gw.example"}, ""},
	} {
		if code, body := gw.post(PathGatewayCertificate, GatewayCertificateRequest{CSR: tc.csr, Hosts: tc.hosts}, nil); code != http.StatusBadRequest {
			t.Errorf("%s: %d %s, want 400", tc.name, code, body)
		}
	}
	if code, body := gw.post(PathGatewayCertificate, []byte(`{"csr":"x","hosts":["a"],"extra":1}`), nil); code != http.StatusBadRequest {
		t.Errorf("unknown field: %d %s", code, body)
	}

	// A gateway bound to a host scope relays for its hosts but cannot
	// obtain a serving certificate.
	sc := rbac.ApplicationScope{Name: "web-hosts", Infrastructure: rbac.Infrastructure{Hosts: []rbac.Glob{rbac.MustGlob("web-*")}}}
	if _, err := f.srv.db.CreateAppScope(context.Background(), store.AppScope{Name: sc.Name, Definition: jsonBody(sc)}); err != nil {
		t.Fatal(err)
	}
	scoped := f.newGateway("gw-web", "web-hosts")
	if code, body := scoped.post(PathGatewayCertificate, GatewayCertificateRequest{CSR: newCSR(t), Hosts: []string{"web-1"}}, nil); code != http.StatusForbidden && code != http.StatusNotFound {
		t.Errorf("scoped gateway: %d %s", code, body)
	}
}

// TestValidDNSName checks the host name rule against its edges.
func TestValidDNSName(t *testing.T) {
	for name, want := range map[string]bool{
		"gw": true, "gw-1.fleet.example": true, "a.b": true, strings.Repeat("a", 63): true,
		"": false, ".": false, "a..b": false, "-a": false, "a-": false, "A": false, "a_b": false,
		strings.Repeat("a", 64): false, strings.Repeat("a.", 127) + "a": false, "*.a": false,
	} {
		if got := validDNSName(name); got != want {
			t.Errorf("validDNSName(%.40q) = %v, want %v", name, got, want)
		}
	}
}

// FuzzGatewayHosts checks that no host list panics and that accepted
// names are valid and bounded.
func FuzzGatewayHosts(f *testing.F) {
	for _, s := range []string{"gw.example", "127.0.0.1", "::1", "*.x", "0.0.0.0", "GW.Example.", "a..b", ""} {
		f.Add(s, "gw.example")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		hosts, err := gatewayHosts([]string{a, b})
		if err != nil {
			return
		}
		if len(hosts) == 0 || len(hosts) > 2 {
			t.Fatalf("%q %q: %v", a, b, hosts)
		}
		for _, h := range hosts {
			if len(h) > 253 || strings.ContainsAny(h, " *\x00") {
				t.Fatalf("accepted %q", h)
			}
		}
	})
}
