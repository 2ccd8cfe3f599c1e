#!/usr/bin/env bash
# A local PostgreSQL server on 127.0.0.1 for the distributed-sweep tests (Debian, as root,
# no systemd). Idempotent. Prints the URL the tests read from ADAMKIT_TEST_POSTGRES_URL.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
if ! command -v pg_ctlcluster >/dev/null || [ -z "$(ls /usr/lib/postgresql 2>/dev/null)" ]; then
  apt-get update -qq >&2
  apt-get install -y -qq postgresql >&2
fi
version=$(ls /usr/lib/postgresql | sort -n | tail -1)
pg_lsclusters -h | awk '{print $1, $2}' | grep -qx "$version main" || pg_createcluster "$version" main >&2
pg_lsclusters -h | awk -v v="$version" '$1 == v && $2 == "main" {print $4}' | grep -q online \
  || pg_ctlcluster "$version" main start >&2
port=$(pg_lsclusters -h | awk -v v="$version" '$1 == v && $2 == "main" {print $3}')
psql_() { su postgres -c "psql -p $port -qtAX -v ON_ERROR_STOP=1 $*"; }
psql_ "-c \"SELECT 1 FROM pg_roles WHERE rolname = 'adamkit'\"" | grep -q 1 \
  || psql_ "-c \"CREATE ROLE adamkit LOGIN PASSWORD 'adamkit'\"" >&2
psql_ "-c \"SELECT 1 FROM pg_database WHERE datname = 'adamkit_test'\"" | grep -q 1 \
  || psql_ "-c \"CREATE DATABASE adamkit_test OWNER adamkit\"" >&2
echo "postgresql://adamkit:adamkit@127.0.0.1:$port/adamkit_test"
