#!/bin/sh
# start-postgres.sh starts a throwaway PostgreSQL cluster for tests and
# benchmarks, and writes its connection URL to $MAMORI_PG_DIR/url.
#
# It installs nothing: the Debian package "postgresql" must be installed
# (scripts/install-test-deps.sh does). The cluster lives in $MAMORI_PG_DIR
# (default /var/tmp/mamori-pg), listens on 127.0.0.1:$MAMORI_PG_PORT
# (default 55432) only, and is run by the "postgres" system user when the
# script runs as root. Running it again when the cluster is up only prints
# the URL. The role "mamori" gets a password generated on first run; the
# tests (testenv.Postgres) create and drop one database per test.
#
# Usage: scripts/start-postgres.sh [stop]
set -eu

dir=${MAMORI_PG_DIR:-/var/tmp/mamori-pg}
port=${MAMORI_PG_PORT:-55432}
bin=${MAMORI_PG_BIN:-}
if [ -z "$bin" ]; then
	for d in /usr/lib/postgresql/*/bin; do
		[ -x "$d/initdb" ] && bin=$d
	done
fi
if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
	echo "start-postgres.sh: initdb not found under /usr/lib/postgresql/*/bin: install the Debian package postgresql" >&2
	exit 1
fi

# run runs a command as the cluster owner.
run() {
	if [ "$(id -u)" = 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

mkdir -p "$dir"
if [ "$(id -u)" = 0 ]; then
	chown postgres: "$dir"
fi
data=$dir/data

if [ "${1:-}" = stop ]; then
	if [ -f "$data/postmaster.pid" ]; then
		run "$bin/pg_ctl" -D "$data" -m fast -w stop
	fi
	exit 0
fi

# Serialize concurrent callers (test packages run in parallel).
exec 9>"$dir/lock"
flock 9

if [ ! -f "$data/PG_VERSION" ]; then
	pwfile=$dir/superuser-password
	head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$pwfile"
	chmod 600 "$pwfile"
	[ "$(id -u)" = 0 ] && chown postgres: "$pwfile"
	run "$bin/initdb" -D "$data" -U postgres --auth=scram-sha-256 --pwfile="$pwfile" -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 || {
		cat "$dir/initdb.log" >&2
		exit 1
	}
	cat >>"$data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
max_connections = 200
fsync = off
synchronous_commit = off
full_page_writes = off
shared_buffers = 256MB
CONF
fi

if ! run "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
	run "$bin/pg_ctl" -D "$data" -l "$dir/postgres.log" -w -t 60 start >/dev/null 9>&- || {
		tail -20 "$dir/postgres.log" >&2
		exit 1
	}
fi

if [ ! -f "$dir/url" ]; then
	pw=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
	export PGPASSWORD
	PGPASSWORD=$(cat "$dir/superuser-password")
	"$bin/psql" -q -h 127.0.0.1 -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 \
		-c "DROP ROLE IF EXISTS mamori" \
		-c "CREATE ROLE mamori LOGIN CREATEDB PASSWORD '$pw'" \
		-c "CREATE DATABASE mamori OWNER mamori" >/dev/null 2>&1 ||
		"$bin/psql" -q -h 127.0.0.1 -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 \
			-c "ALTER ROLE mamori LOGIN CREATEDB PASSWORD '$pw'" >/dev/null
	umask 077
	echo "postgres://mamori:$pw@127.0.0.1:$port/mamori?sslmode=disable" >"$dir/url.tmp"
	chmod 644 "$dir/url.tmp"
	mv "$dir/url.tmp" "$dir/url"
fi
cat "$dir/url"
