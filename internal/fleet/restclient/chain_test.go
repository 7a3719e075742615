package restclient_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/mamorisec/mamori/internal/enforcer/fleetclient"
	"github.com/mamorisec/mamori/internal/enforcer/spool"
	"github.com/mamorisec/mamori/internal/fleet"
	"github.com/mamorisec/mamori/internal/fleet/fleettest"
	"github.com/mamorisec/mamori/internal/fleet/restclient"
	"github.com/mamorisec/mamori/internal/gateway"
)

// TestEnforcerThroughGatewayToREST runs the whole chain: an enforcer client
// speaks gRPC/mTLS to a gateway whose backend is the REST client, which
// calls a TLS REST server answering from the fleettest backend.
func TestEnforcerThroughGatewayToREST(t *testing.T) {
	be, err := fleettest.New("group")
	if err != nil {
		t.Fatal(err)
	}
	const apiToken = "api-token"
	mux := http.NewServeMux()
	route := func(path string, call func(ctx context.Context, body []byte) (any, error)) {
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") != "Bearer "+apiToken {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			body, _ := io.ReadAll(r.Body)
			out, err := call(r.Context(), body)
			if fe, ok := err.(*fleettest.Error); ok {
				http.Error(w, fe.Message, fe.Status)
				return
			} else if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			if out == nil {
				w.WriteHeader(http.StatusNoContent)
				return
			}
			json.NewEncoder(w).Encode(out)
		})
	}
	route(fleet.PathEnroll, func(ctx context.Context, b []byte) (any, error) {
		var v fleet.EnrollRequest
		json.Unmarshal(b, &v)
		return be.Enroll(ctx, v)
	})
	route(fleet.PathHeartbeat, func(ctx context.Context, b []byte) (any, error) {
		var v fleet.Heartbeat
		json.Unmarshal(b, &v)
		return be.Heartbeat(ctx, v)
	})
	route(fleet.PathPolicies, func(ctx context.Context, b []byte) (any, error) {
		var v fleet.PolicyRequest
		json.Unmarshal(b, &v)
		return be.Policies(ctx, v)
	})
	route(fleet.PathEvents, func(ctx context.Context, b []byte) (any, error) {
		var v fleet.EventBatch
		json.Unmarshal(b, &v)
		return be.Events(ctx, v)
	})
	srv := httptest.NewUnstartedServer(mux)
	srvCert, err := be.ServerCertificate("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{srvCert}}
	srv.StartTLS()
	defer srv.Close()

	rest, err := restclient.New(restclient.Config{URL: srv.URL, Token: apiToken, CA: be.CAPool()})
	if err != nil {
		t.Fatal(err)
	}
	gwCert, err := be.ServerCertificate("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	gw, err := gateway.New(gateway.Config{Listen: "127.0.0.1:0", Certificate: gwCert, ClientCA: be.CAPool(), Backend: rest,
		PollInterval: 100 * time.Millisecond, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go gw.Serve(ctx)

	sp, err := spool.Open(t.TempDir(), spool.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	c, err := fleetclient.New(fleetclient.Config{StateDir: t.TempDir(), Gateways: []string{gw.Addr().String()},
		BootstrapCA: be.CAPEM(), Token: "group", HeartbeatInterval: 100 * time.Millisecond, Spool: sp, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	go c.Run(ctx)
	for range 100 {
		if _, err := sp.Append(fleet.Event{Status: fleet.StatusDetect, Count: 1}); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for len(be.StoredEvents()) < 100 || len(be.Heartbeats()) == 0 || c.AgentID() == "" {
		if time.Now().After(deadline) {
			t.Fatalf("through the REST relay: %d events, %d heartbeats", len(be.StoredEvents()), len(be.Heartbeats()))
		}
		time.Sleep(20 * time.Millisecond)
	}
	for p, ok := c.Policy(); !ok || p.Revision != 1; p, ok = c.Policy() {
		if time.Now().After(deadline) {
			t.Fatalf("policy through the relay: %+v, %v", p, ok)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := be.StoredEvents()[0].AgentID; got != c.AgentID() {
		t.Errorf("event stored for %q, want %q", got, c.AgentID())
	}
}
