#!/usr/bin/env bash
# Installs what the test suites need on a fresh Debian machine: the npm packages and a real
# POP3 server (Dovecot) for the conformance and end-to-end tests.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

if ! command -v dovecot >/dev/null 2>&1 && [ ! -x /usr/sbin/dovecot ]; then
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq dovecot-pop3d openssl
fi
npm ci --no-audit --no-fund
