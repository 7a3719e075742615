module example.com/parity/jwtaudience

go 1.22

require github.com/dgrijalva/jwt-go v3.2.0+incompatible
