// Command netjwt imports golang.org/x/net/html v0.7.0 and
// github.com/dgrijalva/jwt-go v3.2.0 but calls none of their vulnerable
// functions: html.EscapeString instead of html.Parse, jwt.Parse without
// MapClaims.VerifyAudience.
package main

import (
	"fmt"
	"os"

	"github.com/dgrijalva/jwt-go"
	"golang.org/x/net/html"
)

func main() {
	fmt.Println(html.EscapeString(os.Args[0]))
	_, err := jwt.Parse(os.Args[len(os.Args)-1], func(*jwt.Token) (any, error) { return []byte("k"), nil })
	fmt.Println(err)
}
