# stepup — see README.md. Targets run as root on Debian/Ubuntu.
CARGO ?= cargo
AUTO ?=

.PHONY: all build deps test demo lint clean bench release deb rpm packages package-test fuzz

all: build

deps:
	@scripts/install-deps.sh

build: deps
	$(CARGO) build --workspace --locked

# The whole suite: unit tests, then end-to-end tests with a real dbus-daemon,
# stepupd, libpam (pamtester and an in-process driver), sudo and su; then
# the packages, installed and driven through sudo, su and sshd; then every
# fuzz target briefly. End-to-end tests need root: they write
# /etc/pam.d/stepup-test-* (removed afterwards), create throwaway users and
# start private daemons. The quick loop while coding:
# cargo nextest run --workspace
test: build
	@[ "$$(id -u)" -eq 0 ] || { echo "make test: run as root (the end-to-end tests use real PAM, sudo and su)"; exit 1; }
	$(CARGO) nextest run --workspace --locked --no-fail-fast
	$(MAKE) package-test
	$(MAKE) fuzz FUZZ_SECONDS=$(FUZZ_SMOKE_SECONDS) FUZZ_SANITIZER=none

# Packages (release build). The PAM module and the sudo plugin come from
# other crates of the workspace, so they are built and stripped first
# (libX.so → X.so); cargo-deb and cargo-generate-rpm then take everything
# from stepupd's metadata.
PKG_STAGE := target/package

release: deps
	$(CARGO) build --release --locked -p stepupd -p pam_stepup -p stepup_sudo
	mkdir -p $(PKG_STAGE)
	for f in libpam_stepup.so libstepup_sudo.so stepupd stepupctl; do \
	  strip --strip-unneeded -o $(PKG_STAGE)/$${f#lib} target/release/$$f; done
	mkdir -p $(PKG_STAGE)/man
	for page in packaging/man/*.[58]; do \
	  gzip -9n -c $$page > $(PKG_STAGE)/man/$${page##*/}.gz; done

deb: release
	$(CARGO) deb -p stepupd --no-build --locked -o target/debian/
	@ls target/debian/*.deb

rpm: release
	mkdir -p target/generate-rpm
	$(CARGO) generate-rpm -p stepupd -o target/generate-rpm/
	@ls target/generate-rpm/*.rpm

packages: deb rpm

# Installs the deb system-wide (refusing where stepup is already installed),
# drives sudo, su and sshd through it, then purges it; lintian on the deb;
# the rpm's file set against the deb's.
package-test: packages
	@[ "$$(id -u)" -eq 0 ] || { echo "make package-test: run as root"; exit 1; }
	STEPUP_DEB=$$(ls -t $(CURDIR)/target/debian/stepup_*.deb | head -n1) \
	STEPUP_RPM=$$(ls -t $(CURDIR)/target/generate-rpm/stepup-*.rpm | head -n1) \
	$(CARGO) nextest run -p stepup-tests --test package --run-ignored only --locked --no-fail-fast

# A guided tour on a built-in demo policy in a sandbox: private bus, private
# stepupd, a new /etc/pam.d/stepup-demo-* removed on exit. AUTO=1 runs it
# without a person.
demo: build
	@AUTO=$(AUTO) scripts/demo.sh

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

clean:
	$(CARGO) clean

# Benchmarks on this machine (release build, as root; installs the peer
# modules, oathtool and gnuplot with apt): per-authentication cost next to
# pam_permit, pam_google_authenticator and pam_oath; 1-256 concurrent
# clients; 10-100 000 users and a 1-million-row history; start-up and
# module load. Writes bench/results.md and bench/results.png; method and
# figures in docs/performance.md. About 3 minutes after the build. The
# policy evaluator alone: cargo bench -p stepupd --bench policy.
bench: deps
	bench/run.sh

# Fuzz every target (config, policy, importers, FIDO2 verifier, daemon
# requests) for FUZZ_SECONDS each with cargo-fuzz (installed if missing; on
# stable via RUSTC_BOOTSTRAP=1); summary in fuzz/last-run.md. See fuzz/README.md.
FUZZ_SECONDS ?= 20
# `make test` runs every target briefly, without AddressSanitizer (every
# crate of ours forbids unsafe code, and the build is much faster).
FUZZ_SMOKE_SECONDS ?= 10
FUZZ_SANITIZER ?= address
fuzz:
	FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_SANITIZER=$(FUZZ_SANITIZER) fuzz/run.sh
