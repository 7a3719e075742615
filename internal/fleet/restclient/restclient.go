// Package restclient is the fleet.Backend a gateway uses to reach the
// server: each call is a POST of the fleet type as JSON to its fleet.Path*
// endpoint, authenticated by the gateway's API token, over TLS verified
// against a given CA.
package restclient

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/mamorisec/mamori/internal/fleet"
	"github.com/mamorisec/mamori/internal/inventory"
)

// Defaults of Config.
const (
	DefaultTimeout          = 30 * time.Second
	DefaultMaxResponseBytes = 32 << 20
	// maxErrorBody bounds the part of an error response kept in a message.
	maxErrorBody = 4 << 10
)

// Config configures a client.
type Config struct {
	// URL is the server's base URL, such as https://console.example:8443.
	URL string
	// Token is the gateway's API token (its role needs the Gateway
	// permission).
	Token string
	// CA verifies the server's certificate; the system roots when nil.
	CA *x509.CertPool
	// Timeout bounds one call; DefaultTimeout when zero.
	Timeout time.Duration
	// MaxResponseBytes bounds a response body; DefaultMaxResponseBytes
	// when zero.
	MaxResponseBytes int64
}

// Client calls the server's fleet API. It implements fleet.Backend.
type Client struct {
	base    *url.URL
	token   string
	maxResp int64
	http    *http.Client
}

var _ fleet.Backend = (*Client)(nil)

// StatusError is a non-success answer of the server.
type StatusError struct {
	// Endpoint is the path called, such as fleet.PathEvents.
	Endpoint string
	Status   int
	// Message is the server's explanation, from its response body.
	Message string
}

func (e *StatusError) Error() string {
	msg := fmt.Sprintf("POST %s: %d %s", e.Endpoint, e.Status, http.StatusText(e.Status))
	if e.Message != "" {
		msg += ": " + e.Message
	}
	return msg
}

// HTTPStatus returns the HTTP status, which the gateway maps to a gRPC code.
func (e *StatusError) HTTPStatus() int { return e.Status }

// New checks cfg and returns a client.
func New(cfg Config) (*Client, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("restclient: server URL %q: %w", cfg.URL, err)
	}
	if u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("restclient: server URL %q: must be https://host[:port]", cfg.URL)
	}
	if cfg.Token == "" {
		return nil, errors.New("restclient: no API token")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MaxResponseBytes <= 0 {
		cfg.MaxResponseBytes = DefaultMaxResponseBytes
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: cfg.CA}
	tr.MaxIdleConnsPerHost = 32
	return &Client{
		base:    u,
		token:   cfg.Token,
		maxResp: cfg.MaxResponseBytes,
		http: &http.Client{Transport: tr, Timeout: cfg.Timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
	}, nil
}

// post sends in as JSON to path and decodes the answer into out (nil when
// no body is expected).
func (c *Client) post(ctx context.Context, path string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("POST %s: encoding request: %w", path, err)
	}
	u := *c.base
	u.Path = strings.TrimSuffix(u.Path, "/") + path
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("POST %s: %w", path, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("POST %s: %w", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		// The explanation is cut at maxErrorBody bytes.
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		return &StatusError{Endpoint: path, Status: resp.StatusCode, Message: errorMessage(b)}
	}
	if out == nil {
		return nil
	}
	b, err := inventory.ReadAllLimited(resp.Body, c.maxResp)
	if err != nil {
		return fmt.Errorf("POST %s: reading response: %w", path, err)
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("POST %s: decoding response: %w", path, err)
	}
	return nil
}

// errorMessage extracts the explanation of an error body: the "error" or
// "message" field of a JSON object, or the text itself.
func errorMessage(b []byte) string {
	var obj struct {
		Error   string `json:"error"`
		Message string `json:"message"`
	}
	if json.Unmarshal(b, &obj) == nil {
		if obj.Error != "" {
			return obj.Error
		}
		if obj.Message != "" {
			return obj.Message
		}
	}
	return strings.TrimSpace(strings.ToValidUTF8(string(b), "?"))
}

// Enroll calls fleet.PathEnroll.
func (c *Client) Enroll(ctx context.Context, req fleet.EnrollRequest) (fleet.EnrollResponse, error) {
	var resp fleet.EnrollResponse
	err := c.post(ctx, fleet.PathEnroll, req, &resp)
	return resp, err
}

// Renew calls fleet.PathRenew.
func (c *Client) Renew(ctx context.Context, req fleet.RenewRequest) (fleet.RenewResponse, error) {
	var resp fleet.RenewResponse
	err := c.post(ctx, fleet.PathRenew, req, &resp)
	return resp, err
}

// Heartbeat calls fleet.PathHeartbeat.
func (c *Client) Heartbeat(ctx context.Context, hb fleet.Heartbeat) (fleet.HeartbeatReply, error) {
	var resp fleet.HeartbeatReply
	err := c.post(ctx, fleet.PathHeartbeat, hb, &resp)
	return resp, err
}

// Policies calls fleet.PathPolicies.
func (c *Client) Policies(ctx context.Context, req fleet.PolicyRequest) (fleet.PolicyBundle, error) {
	var resp fleet.PolicyBundle
	err := c.post(ctx, fleet.PathPolicies, req, &resp)
	return resp, err
}

// Events calls fleet.PathEvents.
func (c *Client) Events(ctx context.Context, batch fleet.EventBatch) (fleet.EventAck, error) {
	var resp fleet.EventAck
	err := c.post(ctx, fleet.PathEvents, batch, &resp)
	return resp, err
}

// Inventory calls fleet.PathInventory.
func (c *Client) Inventory(ctx context.Context, inv fleet.Inventory) error {
	return c.post(ctx, fleet.PathInventory, inv, nil)
}
