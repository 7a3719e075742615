package restclient

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mamorisec/mamori/internal/fleet"
	"github.com/mamorisec/mamori/internal/fleet/fleettest"
)

const apiToken = "gateway-api-token"

// server is a TLS REST server answering the fleet paths from a fleettest
// backend, as the console server does from its store.
func server(t *testing.T, be *fleettest.Backend, override http.HandlerFunc) *httptest.Server {
	t.Helper()
	handle := func(path string, call func(body []byte) (any, error)) (string, http.HandlerFunc) {
		return path, func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodPost || r.Header.Get("Authorization") != "Bearer "+apiToken || r.Header.Get("Content-Type") != "application/json" {
				http.Error(w, `{"error":"authentication required"}`, http.StatusUnauthorized)
				return
			}
			body, _ := io.ReadAll(r.Body)
			out, err := call(body)
			var fe *fleettest.Error
			switch {
			case errors.As(err, &fe):
				w.WriteHeader(fe.Status)
				json.NewEncoder(w).Encode(map[string]string{"error": fe.Message})
			case err != nil:
				http.Error(w, err.Error(), http.StatusInternalServerError)
			case out == nil:
				w.WriteHeader(http.StatusNoContent)
			default:
				w.Header().Set("Content-Type", "application/json")
				json.NewEncoder(w).Encode(out)
			}
		}
	}
	ctx := context.Background()
	mux := http.NewServeMux()
	mux.HandleFunc(handle(fleet.PathEnroll, func(b []byte) (any, error) {
		var req fleet.EnrollRequest
		json.Unmarshal(b, &req)
		return be.Enroll(ctx, req)
	}))
	mux.HandleFunc(handle(fleet.PathHeartbeat, func(b []byte) (any, error) {
		var hb fleet.Heartbeat
		json.Unmarshal(b, &hb)
		return be.Heartbeat(ctx, hb)
	}))
	mux.HandleFunc(handle(fleet.PathPolicies, func(b []byte) (any, error) {
		var req fleet.PolicyRequest
		json.Unmarshal(b, &req)
		return be.Policies(ctx, req)
	}))
	mux.HandleFunc(handle(fleet.PathEvents, func(b []byte) (any, error) {
		var batch fleet.EventBatch
		json.Unmarshal(b, &batch)
		return be.Events(ctx, batch)
	}))
	mux.HandleFunc(handle(fleet.PathInventory, func(b []byte) (any, error) {
		var inv fleet.Inventory
		json.Unmarshal(b, &inv)
		return nil, be.Inventory(ctx, inv)
	}))
	if override != nil {
		mux.HandleFunc(fleet.PathRenew, override)
	} else {
		mux.HandleFunc(handle(fleet.PathRenew, func(b []byte) (any, error) {
			var req fleet.RenewRequest
			json.Unmarshal(b, &req)
			return be.Renew(ctx, req)
		}))
	}
	srv := httptest.NewUnstartedServer(mux)
	cert, err := be.ServerCertificate("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

func newClient(t *testing.T, be *fleettest.Backend, url, token string) *Client {
	t.Helper()
	c, err := New(Config{URL: url, Token: token, CA: be.CAPool(), Timeout: 5 * time.Second, MaxResponseBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestRelay(t *testing.T) {
	be, err := fleettest.New("group")
	if err != nil {
		t.Fatal(err)
	}
	srv := server(t, be, nil)
	c := newClient(t, be, srv.URL, apiToken)
	ctx := context.Background()

	// An enrollment the server refuses is a StatusError naming the path.
	_, err = c.Enroll(ctx, fleet.EnrollRequest{Token: "wrong"})
	var se *StatusError
	if !errors.As(err, &se) || se.Status != http.StatusUnauthorized || se.Endpoint != fleet.PathEnroll || se.HTTPStatus() != 401 {
		t.Fatalf("Enroll with a bad token = %v", err)
	}
	if !strings.Contains(err.Error(), fleet.PathEnroll) || !strings.Contains(err.Error(), "invalid enrollment token") {
		t.Errorf("error %q does not name the endpoint and the reason", err)
	}

	be.SetPolicies(fleet.PolicyBundle{Revision: 3, Policies: []json.RawMessage{json.RawMessage(`{"a":1}`)}})
	// The backend only knows enrolled agents: enroll one directly.
	agent := enroll(t, be)
	reply, err := c.Heartbeat(ctx, fleet.Heartbeat{AgentID: agent})
	if err != nil || reply.PolicyRevision != 3 {
		t.Fatalf("Heartbeat = %+v, %v", reply, err)
	}
	b, err := c.Policies(ctx, fleet.PolicyRequest{AgentID: agent})
	if err != nil || b.Revision != 3 || string(b.Policies[0]) != `{"a":1}` {
		t.Fatalf("Policies = %+v, %v", b, err)
	}
	batch := fleet.EventBatch{AgentID: agent, Events: []fleet.Event{{ID: "1", AgentID: agent}, {ID: "2", AgentID: agent}}}
	for i, want := range []fleet.EventAck{{Stored: 2}, {Duplicates: 2}} {
		ack, err := c.Events(ctx, batch)
		if err != nil || ack != want {
			t.Fatalf("Events #%d = %+v, %v; want %+v", i, ack, err, want)
		}
	}
	if err := c.Inventory(ctx, fleet.Inventory{AgentID: agent, Host: "h"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Heartbeat(ctx, fleet.Heartbeat{AgentID: "stranger"}); !errors.As(err, &se) || se.Status != http.StatusForbidden {
		t.Errorf("heartbeat of an unknown agent = %v, want 403", err)
	}
}

func enroll(t *testing.T, be *fleettest.Backend) string {
	t.Helper()
	// fleettest signs any valid CSR; reuse the client package's format.
	resp, err := be.Enroll(context.Background(), fleet.EnrollRequest{Token: "group", CSR: testCSR(t)})
	if err != nil {
		t.Fatal(err)
	}
	return resp.AgentID
}

func TestFailures(t *testing.T) {
	be, err := fleettest.New("group")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tests := []struct {
		name    string
		handler http.HandlerFunc
		token   string
		want    string
	}{
		{"bad token", nil, "nope", "401"},
		{"oversized answer", func(w http.ResponseWriter, _ *http.Request) {
			w.Write([]byte(`{"certificate":"` + strings.Repeat("x", 2<<20) + `"}`))
		}, apiToken, "reading response"},
		{"not JSON", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("<html>")) }, apiToken, "decoding response"},
		{"server error", func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, strings.Repeat("boom ", 10000), http.StatusBadGateway)
		}, apiToken, "502 Bad Gateway: boom"},
		{"redirect not followed", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "https://elsewhere.invalid/", http.StatusFound)
		}, apiToken, "302"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := server(t, be, tt.handler)
			c := newClient(t, be, srv.URL, tt.token)
			_, err := c.Renew(ctx, fleet.RenewRequest{AgentID: "a"})
			if tt.handler == nil {
				_, err = c.Heartbeat(ctx, fleet.Heartbeat{})
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
			if len(err.Error()) > 2*maxErrorBody {
				t.Errorf("error message of %d bytes is not bounded", len(err.Error()))
			}
		})
	}

	t.Run("untrusted server", func(t *testing.T) {
		other, err := fleettest.New("x")
		if err != nil {
			t.Fatal(err)
		}
		srv := server(t, other, nil)
		c := newClient(t, be, srv.URL, apiToken) // trusts be's CA only
		if _, err := c.Heartbeat(ctx, fleet.Heartbeat{}); err == nil || !strings.Contains(err.Error(), "certificate") {
			t.Errorf("untrusted server: %v", err)
		}
	})
}

func TestNewErrors(t *testing.T) {
	for _, cfg := range []Config{
		{URL: "http://insecure.example", Token: "t"},
		{URL: "https://", Token: "t"},
		{URL: "https://ok.example"},
		{URL: "::", Token: "t"},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) succeeded", cfg)
		}
	}
}
