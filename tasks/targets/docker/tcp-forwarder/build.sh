#!/bin/sh
# Rebuild the forwarder's committed binaries from main.go: static (no cgo), stripped and
# reproducible (-trimpath, no VCS stamp, no build id), for the engine architectures stagegate
# supports. bin/BUILT_WITH records the Go release that made them: the same release makes the
# same bytes anywhere; another release makes other bytes.
set -eu
cd "$(dirname "$0")"
mkdir -p bin
for arch in amd64 arm64; do
    CGO_ENABLED=0 GOOS=linux GOARCH="$arch" GOFLAGS= \
        go build -trimpath -buildvcs=false -ldflags="-s -w -buildid=" -o "bin/tcp-forwarder-linux-$arch" .
done
go env GOVERSION > bin/BUILT_WITH
