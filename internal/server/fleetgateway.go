package server

import (
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/mamorisec/mamori/internal/server/api"
	"github.com/mamorisec/mamori/internal/server/rbac"
)

// PathGatewayCertificate is where a gateway asks for its serving
// certificate (POST GatewayCertificateRequest → GatewayCertificate).
const PathGatewayCertificate = "/api/v1/fleet/gateway-certificate"

// Gateway certificate limits.
const (
	// MaxGatewayHosts bounds the names of one gateway certificate.
	MaxGatewayHosts = 32
	// maxGatewayCertBody bounds a gateway certificate request.
	maxGatewayCertBody = 32 << 10
	actionGatewayCert  = "fleet.gateway_certificate"
)

// GatewayCertificateRequest asks the fleet CA to sign a gateway's serving
// certificate.
type GatewayCertificateRequest struct {
	// CSR is the PEM certificate request of a key the gateway generated
	// and keeps.
	CSR string `json:"csr"`
	// Hosts are the DNS names and IP addresses agents reach the gateway
	// by (the first is the CommonName), at most MaxGatewayHosts.
	Hosts []string `json:"hosts"`
}

// GatewayCertificate is a signed gateway serving certificate.
type GatewayCertificate struct {
	// Certificate is the PEM certificate (server and client
	// authentication, for the requested names only).
	Certificate string `json:"certificate"`
	// CA is the PEM fleet CA: the gateway trusts agents' client
	// certificates by it, and agents trust the gateway by it.
	CA string `json:"ca"`
	// Serial is the certificate's serial number in hex.
	Serial    string    `json:"serial"`
	NotAfter  time.Time `json:"notAfter"`
	RenewFrom time.Time `json:"renewFrom"`
}

// gatewayRoutes serve gateways their serving certificates. Only a token
// with edit on enforcers on the Global scope (the Gateway role bound on
// Global) may ask: a certificate for any name lets its holder stand in for
// every gateway.
func (s *Server) gatewayRoutes() []*api.Route {
	return []*api.Route{
		{Method: "POST", Path: PathGatewayCertificate, OperationID: "fleetGatewayCertificate", Tag: "fleet",
			Summary:  "Sign a gateway's serving certificate request with the fleet CA, for the given DNS names and IP addresses",
			Resource: rEnforcers, Action: "edit", Request: GatewayCertificateRequest{}, Response: GatewayCertificate{},
			Handler: s.gatewayCertificate},
	}
}

func (s *Server) gatewayCertificate(w http.ResponseWriter, r *http.Request) error {
	var in GatewayCertificateRequest
	if err := api.DecodeJSON(w, r, &in, maxGatewayCertBody); err != nil {
		return err
	}
	if err := groupCheck(r, rbac.Edit); err != nil {
		return err
	}
	hosts, err := gatewayHosts(in.Hosts)
	if err != nil {
		return err
	}
	is, err := s.fleet.ca.SignGateway([]byte(in.CSR), hosts)
	if err != nil {
		return badRequest("csr", "%v", err)
	}
	out := GatewayCertificate{Certificate: string(is.CertPEM), CA: string(s.fleet.ca.CertPEM()), Serial: is.Serial,
		NotAfter: is.NotAfter, RenewFrom: is.RenewFrom}
	return s.respond(w, r, http.StatusOK, out, actionGatewayCert, rEnforcers, hosts[0], nil,
		map[string]any{"hosts": hosts, "certSerial": is.Serial, "notAfter": is.NotAfter})
}

// gatewayHosts checks a gateway certificate's names: 1 to MaxGatewayHosts
// DNS names (no wildcards) or IP addresses (not unspecified or multicast),
// returned in lower case without duplicates.
func gatewayHosts(hosts []string) ([]string, error) {
	if len(hosts) == 0 || len(hosts) > MaxGatewayHosts {
		return nil, badRequest("hosts", "1 to %d host names or addresses are required, got %d", MaxGatewayHosts, len(hosts))
	}
	var out []string
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			if ip.IsUnspecified() || ip.IsMulticast() {
				return nil, badRequest("hosts", "address %s cannot name a gateway", h)
			}
			h = ip.String()
		} else {
			h = strings.ToLower(strings.TrimSuffix(h, "."))
			if !validDNSName(h) {
				return nil, badRequest("hosts", "%.80q is neither an IP address nor a DNS name (letters, digits and hyphens in dot-separated labels of at most 63 characters, no wildcards)", h)
			}
		}
		if !slices.Contains(out, h) {
			out = append(out, h)
		}
	}
	return out, nil
}

// validDNSName reports whether name is a lower-case host name of at most
// 253 characters whose labels are 1 to 63 letters, digits and inner
// hyphens.
func validDNSName(name string) bool {
	if name == "" || len(name) > 253 {
		return false
	}
	for _, l := range strings.Split(name, ".") {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for _, c := range []byte(l) {
			if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
				return false
			}
		}
	}
	return true
}
