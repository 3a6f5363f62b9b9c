#!/usr/bin/env bash
# Installs what the test suites need on a fresh Debian machine: the npm packages and a real
# POP3 server (Dovecot) for the conformance and end-to-end tests, and Courier, popa3d, Mailutils
# and Cyrus unpacked into .servers/ for the POP3 servers conformance suite.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

if ! command -v dovecot >/dev/null 2>&1 && [ ! -x /usr/sbin/dovecot ]; then
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq dovecot-pop3d openssl
fi
# Other POP3 servers for test/integration/pop3-servers-conformance.test.ts (docs/pop3-servers.md).
# They conflict with dovecot-pop3d (all "Provide: pop3-server"), so they are downloaded and
# unpacked into .servers/<package>/ and run from there in a private mount namespace; only their
# shared libraries are installed system-wide (plain libraries: no daemon, no config, no service).
SERVER_PACKAGES="courier-pop courier-base courier-authlib popa3d mailutils-pop3d cyrus-pop3d cyrus-common sasl2-bin"
SERVER_LIBRARIES="libxapian30 libpcre3 libical3 libidn12 libcourier-unicode4 libltdl7 libgsasl18 libkyotocabinet16v5 libmailutils9 libmu-dbm9 mailutils-common libsasl2-modules libsasl2-modules-db"
missing=""
for package in $SERVER_PACKAGES; do [ -f ".servers/$package/VERSION" ] || missing="$missing $package"; done
if [ -n "$missing" ]; then
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends $SERVER_LIBRARIES
  download_dir="$(mktemp -d)"
  chmod 0777 "$download_dir"
  for package in $missing; do
    (cd "$download_dir" && apt-get download -qq "$package")
    deb="$(ls "$download_dir/${package}_"*.deb)"
    rm -rf ".servers/$package"
    mkdir -p ".servers/$package"
    dpkg-deb -x "$deb" ".servers/$package"
    dpkg-deb -f "$deb" Version > ".servers/$package/VERSION"
  done
  rm -rf "$download_dir"
fi
# Debian's Chromium for the onboarding browser test (test/browser/), driven by playwright-core
# through executablePath: no browser download, the distribution's build and its updates.
if [ ! -x /usr/bin/chromium ]; then
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends chromium
fi
npm ci --no-audit --no-fund
