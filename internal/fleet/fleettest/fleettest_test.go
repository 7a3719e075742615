package fleettest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/mamorisec/mamori/internal/fleet"
)

func csr(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
}

func TestBackend(t *testing.T) {
	b, err := New("tok")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	refusals := []struct {
		name string
		req  fleet.EnrollRequest
		want int
	}{
		{"bad token", fleet.EnrollRequest{Token: "x", CSR: csr(t)}, http.StatusUnauthorized},
		{"no csr", fleet.EnrollRequest{Token: "tok"}, http.StatusBadRequest},
		{"junk csr", fleet.EnrollRequest{Token: "tok", CSR: "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"}, http.StatusBadRequest},
	}
	for _, r := range refusals {
		var e *Error
		if _, err := b.Enroll(ctx, r.req); !errors.As(err, &e) || e.HTTPStatus() != r.want {
			t.Errorf("%s: %v, want status %d", r.name, err, r.want)
		}
	}

	b.SetCertTTL(time.Minute)
	resp, err := b.Enroll(ctx, fleet.EnrollRequest{Token: "tok", CSR: csr(t)})
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode([]byte(resp.Certificate))
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: b.CAPool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("client certificate does not verify: %v", err)
	}
	if cert.Subject.CommonName != resp.AgentID || !resp.RenewFrom.Before(resp.NotAfter) {
		t.Errorf("certificate CN %q for agent %q, renew %v, not after %v", cert.Subject.CommonName, resp.AgentID, resp.RenewFrom, resp.NotAfter)
	}

	batch := fleet.EventBatch{AgentID: resp.AgentID, Events: []fleet.Event{{ID: "1", AgentID: resp.AgentID}, {ID: "2", AgentID: resp.AgentID}}}
	for i, want := range []fleet.EventAck{{Stored: 2}, {Duplicates: 2}} {
		if ack, err := b.Events(ctx, batch); err != nil || ack != want {
			t.Errorf("batch %d: %+v, %v; want %+v", i, ack, err, want)
		}
	}
	if _, err := b.Heartbeat(ctx, fleet.Heartbeat{AgentID: "stranger"}); err == nil {
		t.Error("heartbeat of an unknown agent accepted")
	}
	b.SetDown(true)
	if _, err := b.Policies(ctx, fleet.PolicyRequest{AgentID: resp.AgentID}); err == nil {
		t.Error("a down backend answered")
	}
}
