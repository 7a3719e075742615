// Command gjsonstripped calls the vulnerable gjson.Get of
// github.com/tidwall/gjson v1.6.0; the test links it with -s -w, so the
// binary has no symbol table.
package main

import (
	"fmt"
	"os"

	"github.com/tidwall/gjson"
)

func main() {
	fmt.Println(gjson.Get(os.Args[len(os.Args)-1], "a.b").String())
}
