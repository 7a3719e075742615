module example.com/parity/netjwt

go 1.22

require (
	github.com/dgrijalva/jwt-go v3.2.0+incompatible
	golang.org/x/net v0.7.0
)
