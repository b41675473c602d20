#!/usr/bin/env bash
# Start a throwaway PostgreSQL on loopback for the store tests; prints the SQLAlchemy URL.
# Needs Debian's postgresql package (its server binaries and the `postgres` user).
set -euo pipefail
PORT="${WAM_PG_PORT:-54329}"
DIR="${WAM_PG_DIR:-/tmp/wam-postgres}"
BIN="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
as_postgres() {
  if [ "$(id -u)" = "0" ]; then su postgres -s /bin/bash -c "$*"; elif [ "$(id -un)" = "postgres" ]; then bash -c "$*"; else sudo -u postgres bash -c "$*"; fi
}
if ! as_postgres "$BIN/pg_ctl -D $DIR status" >/dev/null 2>&1; then
  rm -rf "$DIR"; mkdir -p "$DIR"; chown postgres "$DIR" 2>/dev/null || sudo chown postgres "$DIR"
  as_postgres "$BIN/initdb -D $DIR -U postgres --auth=trust -E UTF8" >/dev/null
  as_postgres "$BIN/pg_ctl -D $DIR -l $DIR/log -o '-h 127.0.0.1 -p $PORT -k $DIR' -w start" >/dev/null
fi
as_postgres "$BIN/psql -h 127.0.0.1 -p $PORT -U postgres -tc \"SELECT 1 FROM pg_database WHERE datname='wam_test'\"" | grep -q 1 \
  || as_postgres "$BIN/createdb -h 127.0.0.1 -p $PORT -U postgres wam_test"
echo "postgresql+psycopg://postgres@127.0.0.1:$PORT/wam_test"
