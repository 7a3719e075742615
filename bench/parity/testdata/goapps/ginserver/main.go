// Command ginserver is a gin v1.6.0 server whose handler calls the
// vulnerable Context.ClientIP; it never calls Context.FileAttachment.
package main

import (
	"os"

	"github.com/gin-gonic/gin"
)

func main() {
	r := gin.Default()
	r.GET("/", func(c *gin.Context) { c.String(200, c.ClientIP()) })
	if len(os.Args) > 1 {
		_ = r.Run(os.Args[1])
	}
}
