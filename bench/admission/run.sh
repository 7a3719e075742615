#!/usr/bin/env bash
# run.sh measures the kube-enforcer's admission latency (p50/p99/max) at a
# fixed request rate: direct AdmissionReview POSTs over HTTPS, then Pod
# creates with dry-run=All through a real kube-apiserver (built by
# scripts/build-kube.sh) that calls the webhook.
#
#   bench/admission/run.sh [-rate 200] [-duration 30s]
set -euo pipefail
cd "$(dirname "$0")/../.."
MAMORI_BENCH=1 exec go test -count=1 -timeout 10m -run 'TestAdmissionLatency' ./bench/admission -v -args "$@"
