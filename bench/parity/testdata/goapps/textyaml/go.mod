module example.com/parity/textyaml

go 1.22

require (
	golang.org/x/text v0.3.5
	gopkg.in/yaml.v2 v2.2.1
)
