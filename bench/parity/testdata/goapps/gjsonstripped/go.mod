module example.com/parity/gjsonstripped

go 1.22

require github.com/tidwall/gjson v1.6.0
