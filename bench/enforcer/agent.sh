#!/usr/bin/env bash
# agent.sh measures what `mamori enforcer` costs a container's execs, and
# the agent's own CPU and memory:
#
#   - wall time of N serial fork+execs of /bin/true run by a shell INSIDE a
#     busybox container (docker exec is far too slow to time one exec), in
#     four settings: no agent; the agent running with the container not
#     targeted; a targeted container in audit mode; a targeted container in
#     enforce mode. Both targeted containers run the same controls
#     (blockExec allowing busybox, driftPrevention), so nothing is violated:
#     the figures are the cost of the mechanisms (BPF exec monitor scoped to
#     the container, fanotify pre-exec decision per exec);
#   - the agent's CPU time and RSS (with its anonymous and file-backed
#     parts: the latter are the program's own pages), idle and during the
#     loops.
#
# On a host with 2 or more CPUs the containers are pinned to CPU 0 and the
# agent to CPU 1 (set PIN=0 to disable), so that the per-exec figures are
# the time an exec waits for the mechanisms rather than for a CPU the
# agent's after-the-fact work (audit mode) happens to hold; the agent's CPU
# is reported separately.
#
# Rounds are interleaved; medians are printed with the ratio to no agent.
# Needs root, the Docker Engine (scripts/start-dockerd.sh) and busybox-static.
# Usage: bench/enforcer/agent.sh [N] [ROUNDS]   (defaults 5000 and 5)
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-5000}
ROUNDS=${2:-5}
if [ "$(id -u)" != 0 ]; then
	echo "agent.sh: needs root" >&2
	exit 1
fi
work=$(mktemp -d)
containers=()
agent_pid=""
cleanup() {
	if [ -n "$agent_pid" ]; then kill "$agent_pid" 2>/dev/null || true; wait "$agent_pid" 2>/dev/null || true; fi
	for c in "${containers[@]}"; do docker rm -f "$c" >/dev/null 2>&1 || true; done
	rm -rf "$work"
}
trap cleanup EXIT

go build -o "$work/mamori" ./cmd/mamori

# The test image of internal/testenv: busybox-static with its applets.
img=mamori-test/busybox:latest
if ! docker image inspect "$img" >/dev/null 2>&1; then
	mkdir -p "$work/img/bin" "$work/img/tmp" "$work/img/etc" "$work/img/proc" "$work/img/sys" "$work/img/dev" "$work/img/app"
	cp /bin/busybox "$work/img/bin/busybox"
	for a in sh ls cat echo sleep true false cp chmod ps id env touch mkdir rm head wc grep nc seq; do ln -s busybox "$work/img/bin/$a"; done
	printf 'root:x:0:0:root:/root:/bin/sh\n' >"$work/img/etc/passwd"
	tar -C "$work/img" -c . | docker import -c 'CMD ["/bin/sh"]' - "$img" >/dev/null
fi

tag=bench$$
pin_ctr=() pin_agent=()
if [ "${PIN:-1}" = 1 ] && [ "$(nproc)" -ge 2 ]; then
	pin_ctr=(--cpuset-cpus 0) pin_agent=(taskset -c 1)
fi
# start runs a container labelled for setting $1 and sets started to its
# id. It is not called in a command substitution: that subshell's
# containers+=() would be lost and cleanup would leave the container.
started=""
start() {
	started=$(docker run -d --network none "${pin_ctr[@]}" --label "mamori.bench=$tag-$1" "$img" sleep 3600)
	containers+=("$started")
}
start none
plain=$started
start audit
audit=$started
start enforce
enforce=$started

cat >"$work/policy.yaml" <<YAML
policies:
  - name: bench-audit
    enabled: true
    mode: audit
    criteria: 'label["mamori.bench"] == "$tag-audit"'
    controls:
      blockExec: {allowedProcesses: [busybox]}
      driftPrevention: {}
  - name: bench-enforce
    enabled: true
    mode: enforce
    criteria: 'label["mamori.bench"] == "$tag-enforce"'
    controls:
      blockExec: {allowedProcesses: [busybox]}
      driftPrevention: {}
bypass: {namespaces: [kube-system]}
YAML

# loop ID prints the seconds N execs of /bin/true took inside container ID
# (from /proc/uptime, 10 ms resolution).
loop() {
	docker exec "$1" sh -c "read a _ </proc/uptime; i=0; while [ \$i -lt $N ]; do /bin/true; i=\$((i+1)); done; read b _ </proc/uptime; echo \$a \$b" |
		awk '{ printf "%.3f\n", $2 - $1 }'
}
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
rss_kb() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }
rss_parts() { awk '/^RssAnon/ { a = $2 } /^RssFile/ { f = $2 } END { printf "anon %d KiB, file %d KiB", a, f }' "/proc/$1/status"; }
median() { sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
hz=$(getconf CLK_TCK)

loop "$plain" >/dev/null # warm up
for r in $(seq "$ROUNDS"); do loop "$plain" >>"$work/none"; done

${pin_agent[@]} "$work/mamori" enforcer --policy "$work/policy.yaml" --events "$work/events.jsonl" --state-dir "$work/state" 2>"$work/agent.log" &
agent_pid=$!
# Ready when the enforce container refuses a drifted binary.
docker cp /bin/busybox "$enforce:/app/drift" >/dev/null
for _ in $(seq 300); do
	if ! docker exec "$enforce" /app/drift true >/dev/null 2>&1; then break; fi
	sleep 0.1
done
if docker exec "$enforce" /app/drift true >/dev/null 2>&1; then
	echo "agent.sh: the agent did not protect the enforce container; log:" >&2
	cat "$work/agent.log" >&2
	exit 1
fi
sleep 2
t0=$(cpu_ticks "$agent_pid")
sleep 5
t1=$(cpu_ticks "$agent_pid")
idle_cpu=$(awk -v d=$((t1 - t0)) -v hz="$hz" 'BEGIN { printf "%.2f", 100 * d / hz / 5 }')
idle_rss=$(rss_kb "$agent_pid")
idle_parts=$(rss_parts "$agent_pid")

c0=$(cpu_ticks "$agent_pid")
s0=$(date +%s.%N)
for r in $(seq "$ROUNDS"); do
	loop "$plain" >>"$work/untargeted"
	loop "$audit" >>"$work/audit"
	loop "$enforce" >>"$work/enforce"
done
s1=$(date +%s.%N)
c1=$(cpu_ticks "$agent_pid")
load_rss=$(rss_kb "$agent_pid")
load_parts=$(rss_parts "$agent_pid")
load_cpu=$(awk -v d=$((c1 - c0)) -v hz="$hz" -v s0="$s0" -v s1="$s1" 'BEGIN { printf "%.2f", 100 * d / hz / (s1 - s0) }')
cpu_per_exec=$(awk -v d=$((c1 - c0)) -v hz="$hz" -v n=$((2 * N * ROUNDS)) 'BEGIN { printf "%.2f", 1e6 * d / hz / n }')

kill "$agent_pid"
wait "$agent_pid" || true
agent_pid=""
for r in $(seq "$ROUNDS"); do loop "$plain" >>"$work/none"; done

base=$(median <"$work/none")
printf 'mamori enforcer exec cost: %d execs of /bin/true inside a busybox container, %d rounds (median)\n' "$N" "$ROUNDS"
printf '%-34s %10s %12s %8s\n' setting "seconds" "us/exec" ratio
for k in none untargeted audit enforce; do
	m=$(median <"$work/$k")
	awk -v k="$k" -v m="$m" -v n="$N" -v b="$base" 'BEGIN {
		name["none"] = "no agent"; name["untargeted"] = "agent running, not targeted"
		name["audit"] = "targeted, audit mode"; name["enforce"] = "targeted, enforce mode"
		printf "%-34s %10.3f %12.1f %8.2f\n", name[k], m, 1e6 * m / n, m / b }'
done
printf 'pinning: %s\n' "$([ ${#pin_agent[@]} -gt 0 ] && echo 'containers on CPU 0, agent on CPU 1' || echo none)"
printf 'agent idle:       CPU %s%% of one core, RSS %d KiB (%s)\n' "$idle_cpu" "$idle_rss" "$idle_parts"
printf 'agent under load: CPU %s%% of one core, RSS %d KiB (%s), %s us of agent CPU per targeted exec\n' "$load_cpu" "$load_rss" "$load_parts" "$cpu_per_exec"
printf 'events logged: %d (the readiness probe'"'"'s refused drift execs; the loops violate nothing)\n' "$(wc -l <"$work/events.jsonl")"
