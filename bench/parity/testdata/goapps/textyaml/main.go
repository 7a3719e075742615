// Command textyaml calls the vulnerable language.Parse of golang.org/x/text
// v0.3.5 and yaml.Unmarshal of gopkg.in/yaml.v2 v2.2.1.
package main

import (
	"fmt"
	"os"

	"golang.org/x/text/language"
	"gopkg.in/yaml.v2"
)

func main() {
	tag, err := language.Parse(os.Args[len(os.Args)-1])
	fmt.Println(tag, err)
	var v map[string]any
	fmt.Println(yaml.Unmarshal([]byte("a: 1"), &v), v)
}
