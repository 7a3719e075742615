// Package fleetv1 is the gRPC fleet protocol spoken between agents and
// gateways (fleet.proto), with conversions to and from the wire model of
// package fleet.
package fleetv1

//go:generate sh generate.sh
