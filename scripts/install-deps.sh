#!/usr/bin/env bash
# Install what building and testing stepup needs on Debian/Ubuntu, as root.
# Idempotent and quick when everything is already there.
set -euo pipefail

packages=(
  gcc pkg-config libpam0g-dev libudev-dev   # build: the module links libpam; hidapi (FIDO2) needs libudev
  dbus                                      # dbus-daemon for the private test bus
  pamtester oathtool                        # real libpam driver, independent TOTP
  sudo python3-pexpect                      # real sudo/su under a pseudo-terminal
  binutils util-linux passwd groff-base valgrind     # nm, setpriv/unshare, useradd; man page rendering; leak checks
  openssh-server openssh-client             # package test: ssh to an sshd on 127.0.0.1
  lintian rpm                               # package test: lintian on the deb, rpm -qpl on the rpm
  faketime                                  # libfaketime: move stepupd's clock in the faults tests
  libmaxmind-db-writer-perl                 # MaxMind::DB::Writer: tests/geoip/make-test-mmdb.pl writes the geoip test databases
  postgresql openssl                        # the shared store's tests: a private cluster (initdb/pg_ctl as postgres) and a test CA
)
command -v busctl >/dev/null 2>&1 || packages+=(systemd)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: missing ${missing[*]}; run as root (or: sudo apt-get install ${missing[*]})" >&2
    exit 1
  fi
  echo "install-deps: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
command -v cargo >/dev/null 2>&1 || { echo "install-deps: cargo not found (install Rust with rustup)" >&2; exit 1; }
# The test runner (each test in its own process, one summary line).
cargo nextest --version >/dev/null 2>&1 || cargo install cargo-nextest --locked
# The packagers (make deb / make rpm).
cargo deb --version >/dev/null 2>&1 || cargo install cargo-deb --locked
cargo generate-rpm --version >/dev/null 2>&1 || cargo install cargo-generate-rpm --locked
# The fuzzer driver (make fuzz; make test runs every target briefly).
cargo fuzz --version >/dev/null 2>&1 || cargo install cargo-fuzz --locked
