#!/bin/sh
# start-dockerd.sh starts Debian's Docker Engine (package docker.io) in the
# background for mamori's tests, unless /var/run/docker.sock already answers.
#
# The daemon runs without a bridge, iptables rules or IP forwarding, so
# containers started by tests can have no network beyond --network none. The
# storage driver is overlay2 where the kernel and backing filesystem allow it,
# vfs otherwise. Logs go to /tmp/mamori-dockerd.log. Idempotent: a second run
# returns at once. Must run as root.
set -eu

SOCK=/var/run/docker.sock
LOG=${MAMORI_DOCKERD_LOG:-/tmp/mamori-dockerd.log}
PIDFILE=/var/run/mamori-dockerd.pid

# The docker.io client, when the PATH has another one first.
DOCKER=docker
[ -x /usr/bin/docker ] && DOCKER=/usr/bin/docker

answers() {
	"$DOCKER" -H "unix://$SOCK" version >/dev/null 2>&1
}

if answers; then
	echo "dockerd already answers on $SOCK"
	exit 0
fi

if ! command -v dockerd >/dev/null 2>&1; then
	echo "dockerd not found: apt-get install -y docker.io" >&2
	exit 1
fi
if [ "$(id -u)" != 0 ]; then
	echo "start-dockerd.sh must run as root" >&2
	exit 1
fi

# A previous daemon of ours that no longer answers: stop it first.
if [ -f "$PIDFILE" ]; then
	old=$(cat "$PIDFILE")
	if [ -n "$old" ] && kill -0 "$old" 2>/dev/null; then
		kill "$old" 2>/dev/null || true
		i=0
		while kill -0 "$old" 2>/dev/null && [ $i -lt 50 ]; do
			sleep 0.2
			i=$((i + 1))
		done
	fi
	rm -f "$PIDFILE"
fi

# overlay2 needs the overlay filesystem and a backing filesystem that supports
# it; try it first and fall back to vfs when the daemon refuses to start.
start() {
	driver=$1
	echo "starting dockerd (storage driver $driver), log $LOG"
	rm -f "$SOCK"
	nohup dockerd \
		--host "unix://$SOCK" \
		--iptables=false \
		--ip-forward=false \
		--ip-masq=false \
		--bridge=none \
		--storage-driver "$driver" \
		--pidfile "$PIDFILE" \
		>>"$LOG" 2>&1 </dev/null &
	pid=$!
	i=0
	while [ $i -lt 150 ]; do
		if answers; then
			echo "dockerd is up (pid $pid, storage driver $driver)"
			return 0
		fi
		if ! kill -0 "$pid" 2>/dev/null; then
			echo "dockerd (storage driver $driver) exited; see $LOG" >&2
			return 1
		fi
		sleep 0.2
		i=$((i + 1))
	done
	echo "dockerd (storage driver $driver) did not answer within 30s; see $LOG" >&2
	kill "$pid" 2>/dev/null || true
	return 1
}

if grep -qw overlay /proc/filesystems 2>/dev/null && start overlay2; then
	exit 0
fi
start vfs
