package fleetca

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"net"
)

// SignGateway signs a gateway's certificate request for a serving
// certificate whose names are hosts (DNS names or IP addresses, checked by
// the caller); the first is also the CommonName. Like IssueGateway's, the
// certificate allows server and client authentication and lives for
// GatewayValidity; unlike it, the key stays with the gateway. Whatever
// names or usages the request asks for are ignored.
func (c *CA) SignGateway(csrPEM []byte, hosts []string) (Issued, error) {
	csr, err := ParseCSR(csrPEM)
	if err != nil {
		return Issued{}, err
	}
	if len(hosts) == 0 {
		return Issued{}, errors.New("gateway certificate: at least one host name or address is required")
	}
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{Organization: []string{"mamori fleet"}, CommonName: hosts[0]},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	return c.sign(csr.PublicKey, tmpl, GatewayValidity)
}
