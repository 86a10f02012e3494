#!/bin/sh
# vaultlab e2e: the official postgres image's entrypoint interface, for the kind suite's Postgres
# image built from Debian's postgresql package (images.ts). What vaultlab's sample Postgres relies
# on, as the official image does it:
#   POSTGRES_USER / POSTGRES_PASSWORD / POSTGRES_DB  the superuser and database created on an empty PGDATA
#   /docker-entrypoint-initdb.d/*.sql                 run once, in order, against POSTGRES_DB, after that
#   PGDATA                                            the data directory (default /var/lib/postgresql/data)
#   started as root: PGDATA made and owned by postgres, then the server runs as postgres
#   remote clients: scram-sha-256 from any address; local socket: trust (the init step's own)
# The password reaches initdb through a 0600 file, never argv.
set -eu
: "${PGDATA:=/var/lib/postgresql/data}"
export PGDATA
[ "${1:-postgres}" = postgres ] || exec "$@"
[ "$#" -gt 0 ] && shift

if [ "$(id -u)" = 0 ]; then
  mkdir -p "$PGDATA" /var/run/postgresql
  chmod 0700 "$PGDATA"
  chown -R postgres:postgres "$PGDATA" /var/run/postgresql
  exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" postgres "$@"
fi

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  : "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD must be set (the superuser password)}"
  user="${POSTGRES_USER:-postgres}"
  db="${POSTGRES_DB:-$user}"
  pw=$(mktemp)
  chmod 0600 "$pw"
  printf '%s\n' "$POSTGRES_PASSWORD" > "$pw"
  initdb --username="$user" --pwfile="$pw" --encoding=UTF8 --locale=C.UTF-8 --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  rm -f "$pw"
  printf '\nhost all all all scram-sha-256\n' >> "$PGDATA/pg_hba.conf"
  pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -c unix_socket_directories=/var/run/postgresql" -w start >/dev/null
  if [ "$db" != postgres ]; then
    psql -v ON_ERROR_STOP=1 -h /var/run/postgresql -U "$user" -d postgres -q -c "CREATE DATABASE \"$db\""
  fi
  for f in /docker-entrypoint-initdb.d/*; do
    case "$f" in
      *.sql) echo "entrypoint: running $f"; psql -v ON_ERROR_STOP=1 -h /var/run/postgresql -U "$user" -d "$db" -q -f "$f" ;;
      *.sh) echo "entrypoint: sourcing $f"; . "$f" ;;
      *) [ -e "$f" ] && echo "entrypoint: ignoring $f" ;;
    esac
  done
  pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
  echo 'entrypoint: PostgreSQL init process complete; ready for start up.'
fi
exec postgres -c listen_addresses='*' -c unix_socket_directories=/var/run/postgresql "$@"
