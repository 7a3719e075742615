#!/bin/sh
# generate.sh regenerates fleet.pb.go and fleet_grpc.pb.go from fleet.proto.
# It needs protoc (Debian package protobuf-compiler) and fetches the Go
# plugins from the module proxy at the versions pinned here; the generated
# files are committed, so building and testing never need protoc.
set -eu
cd "$(dirname "$0")"
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
GOBIN=$bin go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
GOBIN=$bin go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2
PATH=$bin:$PATH protoc -I . -I /usr/include \
	--go_out=. --go_opt=paths=source_relative \
	--go-grpc_out=. --go-grpc_opt=paths=source_relative \
	fleet.proto
