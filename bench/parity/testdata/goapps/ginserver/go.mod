module example.com/parity/ginserver

go 1.22

require github.com/gin-gonic/gin v1.6.0
