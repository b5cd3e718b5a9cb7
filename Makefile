# stepup — see README.md. Targets run as root on Debian/Ubuntu.
CARGO ?= cargo
AUTO ?=

.PHONY: all build deps test demo lint clean bench

all: build

deps:
	@scripts/install-deps.sh

build: deps
	$(CARGO) build --workspace --locked

# The whole suite: unit tests, then end-to-end tests with a real dbus-daemon,
# stepupd, libpam (pamtester and an in-process driver), sudo and su.
# End-to-end tests need root: they write /etc/pam.d/stepup-test-* (removed
# afterwards), create throwaway users and start private daemons.
test: build
	@[ "$$(id -u)" -eq 0 ] || { echo "make test: run as root (the end-to-end tests use real PAM, sudo and su)"; exit 1; }
	$(CARGO) nextest run --workspace --locked --no-fail-fast

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

# Per-authentication cost next to pam_permit (release build), and the
# policy evaluator on a 100-rule policy (criterion).
bench: deps
	bench/auth_cost.sh
	$(CARGO) bench -p stepupd --bench policy
