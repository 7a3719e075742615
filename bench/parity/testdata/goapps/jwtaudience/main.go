// Command jwtaudience calls the vulnerable MapClaims.VerifyAudience of
// github.com/dgrijalva/jwt-go v3.2.0.
package main

import (
	"fmt"
	"os"

	"github.com/dgrijalva/jwt-go"
)

func main() {
	claims := jwt.MapClaims{"aud": os.Args[0]}
	fmt.Println(claims.VerifyAudience(os.Args[len(os.Args)-1], true))
}
