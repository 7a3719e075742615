#!/usr/bin/env bash
# exec.sh measures the cost and throughput of mamori's BPF exec monitor
# (internal/enforcer/bpf) in one run of bench/enforcer/execbench:
#
#   - µs per serial fork+exec of a tiny static binary with no monitor, with
#     the monitor loaded but the process not targeted, and targeted
#     (report mode), interleaved in rounds; plus the in-kernel program time
#     per exec from BPF run-time statistics;
#   - events/s delivered and drops under an exec burst from every CPU in a
#     targeted cgroup v1 pids cgroup (created and removed by the program);
#   - the monitor process's CPU and RSS, idle and under load;
#   - the comparison with Falco's published 4,372 events/s at 38% CPU.
#
# Needs root (BPF, cgroup moves) and kernel BTF. No clang: the BPF object is
# committed. Usage: bench/enforcer/exec.sh [-n 20000] [-rounds 10] [-burst 5s]
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ "$(id -u)" != 0 ]; then
	echo "exec.sh: needs root (loads BPF, creates a pids cgroup)" >&2
	exit 1
fi
bin=$(mktemp -d)/execbench
trap 'rm -rf "$(dirname "$bin")"' EXIT
go build -o "$bin" ./bench/enforcer/execbench
"$bin" "$@"
