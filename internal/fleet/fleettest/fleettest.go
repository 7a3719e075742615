// Package fleettest is a TEST DOUBLE: an in-memory fleet.Backend for the
// tests of the gateway and of the agents' fleet client. It is not the
// server (package server implements the real Backend, with storage,
// hashed tokens, RBAC and audit) and must never be used outside tests.
//
// It is real where the protocol's security depends on it: it owns a real
// ECDSA P-256 test CA, verifies certificate requests and signs real client
// certificates (CommonName = agent id, client-auth usage) and gateway
// serving certificates, so tests exercise mutual TLS for real. Like the
// server, it stores each event once per (agent, Event.ID) and counts a batch
// delivered again as duplicates.
package fleettest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/mamorisec/mamori/internal/fleet"
)

// Error is a refusal with the HTTP status the server would answer.
type Error struct {
	Status  int
	Message string
}

func (e *Error) Error() string { return e.Message }

// HTTPStatus returns the HTTP status of the refusal, which the gateway maps
// to a gRPC code.
func (e *Error) HTTPStatus() int { return e.Status }

// Backend is the in-memory fleet.Backend. The zero value is not usable;
// call New.
type Backend struct {
	token  string
	caKey  *ecdsa.PrivateKey
	caCert *x509.Certificate
	caPEM  []byte

	mu         sync.Mutex
	certTTL    time.Duration
	nextAgent  int
	agents     map[string]bool
	bundle     fleet.PolicyBundle
	seen       map[string]bool // agent + "\x00" + event id
	events     []fleet.Event
	duplicates int
	heartbeats []fleet.Heartbeat
	inventory  map[string]fleet.Inventory
	renewals   int
	down       bool
}

var _ fleet.Backend = (*Backend)(nil)

// New creates a backend that admits agents presenting token and signs
// certificates valid for one hour (see SetCertTTL).
func New(token string) (*Backend, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("fleettest: generating CA key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "mamori fleettest CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("fleettest: creating CA: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("fleettest: parsing CA: %w", err)
	}
	return &Backend{
		token: token, caKey: key, caCert: cert,
		caPEM:     pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		certTTL:   time.Hour,
		agents:    map[string]bool{},
		seen:      map[string]bool{},
		inventory: map[string]fleet.Inventory{},
		bundle:    fleet.PolicyBundle{Revision: 1, Settings: fleet.GroupSettings{AuditOnly: true}},
	}, nil
}

// CAPEM returns the PEM fleet CA certificate.
func (b *Backend) CAPEM() []byte { return b.caPEM }

// CAPool returns a pool holding the fleet CA.
func (b *Backend) CAPool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(b.caCert)
	return p
}

// SetCertTTL sets the validity of the client certificates signed from now
// on; RenewFrom is two thirds into it.
func (b *Backend) SetCertTTL(d time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.certTTL = d
}

// SetDown makes every call fail with 503 until called with false, as a
// server that cannot be reached.
func (b *Backend) SetDown(down bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.down = down
}

// SetPolicies replaces the policy bundle in force.
func (b *Backend) SetPolicies(bundle fleet.PolicyBundle) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.bundle = bundle
}

// StoredEvents returns the stored events in arrival order.
func (b *Backend) StoredEvents() []fleet.Event {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]fleet.Event(nil), b.events...)
}

// Duplicates counts the events received again after being stored.
func (b *Backend) Duplicates() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.duplicates
}

// Heartbeats returns the heartbeats received in order.
func (b *Backend) Heartbeats() []fleet.Heartbeat {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]fleet.Heartbeat(nil), b.heartbeats...)
}

// StoredInventory returns the last inventory of agent.
func (b *Backend) StoredInventory(agent string) (fleet.Inventory, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	inv, ok := b.inventory[agent]
	return inv, ok
}

// Renewals counts the certificates renewed.
func (b *Backend) Renewals() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.renewals
}

// ServerCertificate signs a gateway serving certificate for hosts (DNS
// names or IP addresses) with a fresh key.
func (b *Backend) ServerCertificate(hosts ...string) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: "mamori gateway"},
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, b.caCert, &key.PublicKey, b.caKey)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("fleettest: signing server certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return n
}

// sign verifies the PEM certificate request and signs a client certificate
// for agent; it returns the PEM certificate, NotAfter and RenewFrom.
func (b *Backend) sign(csrPEM, agent string) (string, time.Time, time.Time, error) {
	blk, _ := pem.Decode([]byte(csrPEM))
	if blk == nil || blk.Type != "CERTIFICATE REQUEST" {
		return "", time.Time{}, time.Time{}, &Error{http.StatusBadRequest, "csr: not a PEM CERTIFICATE REQUEST"}
	}
	csr, err := x509.ParseCertificateRequest(blk.Bytes)
	if err != nil {
		return "", time.Time{}, time.Time{}, &Error{http.StatusBadRequest, "csr: " + err.Error()}
	}
	if err := csr.CheckSignature(); err != nil {
		return "", time.Time{}, time.Time{}, &Error{http.StatusBadRequest, "csr: " + err.Error()}
	}
	now := time.Now()
	notAfter := now.Add(b.certTTL)
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: agent},
		NotBefore:    now.Add(-time.Minute),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, b.caCert, csr.PublicKey, b.caKey)
	if err != nil {
		return "", time.Time{}, time.Time{}, fmt.Errorf("fleettest: signing: %w", err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})), notAfter, now.Add(b.certTTL * 2 / 3), nil
}

func (b *Backend) check(agent string) error {
	if b.down {
		return &Error{http.StatusServiceUnavailable, "fleettest: server down"}
	}
	if agent != "" && !b.agents[agent] {
		return &Error{http.StatusForbidden, fmt.Sprintf("agent %q is not enrolled", agent)}
	}
	return nil
}

// Enroll admits an agent presenting the group token.
func (b *Backend) Enroll(_ context.Context, req fleet.EnrollRequest) (fleet.EnrollResponse, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.check(""); err != nil {
		return fleet.EnrollResponse{}, err
	}
	if subtle.ConstantTimeCompare([]byte(req.Token), []byte(b.token)) != 1 {
		return fleet.EnrollResponse{}, &Error{http.StatusUnauthorized, "invalid enrollment token"}
	}
	b.nextAgent++
	agent := fmt.Sprintf("agent-%d", b.nextAgent)
	cert, notAfter, renewFrom, err := b.sign(req.CSR, agent)
	if err != nil {
		return fleet.EnrollResponse{}, err
	}
	b.agents[agent] = true
	return fleet.EnrollResponse{AgentID: agent, Group: "default", Certificate: cert, CA: string(b.caPEM), NotAfter: notAfter, RenewFrom: renewFrom}, nil
}

// Renew signs a fresh certificate for an enrolled agent.
func (b *Backend) Renew(_ context.Context, req fleet.RenewRequest) (fleet.RenewResponse, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.check(req.AgentID); err != nil {
		return fleet.RenewResponse{}, err
	}
	cert, notAfter, renewFrom, err := b.sign(req.CSR, req.AgentID)
	if err != nil {
		return fleet.RenewResponse{}, err
	}
	b.renewals++
	return fleet.RenewResponse{Certificate: cert, NotAfter: notAfter, RenewFrom: renewFrom}, nil
}

// Heartbeat records hb and answers the revision in force.
func (b *Backend) Heartbeat(_ context.Context, hb fleet.Heartbeat) (fleet.HeartbeatReply, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.check(hb.AgentID); err != nil {
		return fleet.HeartbeatReply{}, err
	}
	b.heartbeats = append(b.heartbeats, hb)
	return fleet.HeartbeatReply{PolicyRevision: b.bundle.Revision, Settings: b.bundle.Settings}, nil
}

// Policies returns the bundle in force.
func (b *Backend) Policies(_ context.Context, req fleet.PolicyRequest) (fleet.PolicyBundle, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.check(req.AgentID); err != nil {
		return fleet.PolicyBundle{}, err
	}
	return b.bundle, nil
}

// Events stores the events not seen before for the batch's agent.
func (b *Backend) Events(_ context.Context, batch fleet.EventBatch) (fleet.EventAck, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.check(batch.AgentID); err != nil {
		return fleet.EventAck{}, err
	}
	var ack fleet.EventAck
	for _, ev := range batch.Events {
		if ev.AgentID != batch.AgentID {
			return fleet.EventAck{}, &Error{http.StatusBadRequest, fmt.Sprintf("event %s names agent %q in a batch of %q", ev.ID, ev.AgentID, batch.AgentID)}
		}
		k := batch.AgentID + "\x00" + ev.ID
		if b.seen[k] {
			ack.Duplicates++
			continue
		}
		b.seen[k] = true
		b.events = append(b.events, ev)
		ack.Stored++
	}
	b.duplicates += ack.Duplicates
	return ack, nil
}

// Inventory replaces the agent's inventory.
func (b *Backend) Inventory(_ context.Context, inv fleet.Inventory) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.check(inv.AgentID); err != nil {
		return err
	}
	b.inventory[inv.AgentID] = inv
	return nil
}
