# oci-netdev. `make test` needs root and works from a fresh clone on Debian 12.
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -ec
.DEFAULT_GOAL := build

BIN := node_modules/.bin
TAP := $(BIN)/tap --reporter=tap
SUITES := dist/test/unit dist/test/integration dist/test/e2e
SYSTEM_PACKAGES := runc crun podman busybox-static iproute2 ethtool containernetworking-plugins wget
APT_GET := DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600

.PHONY: deps build lint test demo clean install

deps: node_modules/.package-lock.json
	@missing=; \
	for c in runc crun podman ip ethtool nsenter wget; do command -v $$c >/dev/null || missing="$$missing $$c"; done; \
	for p in busybox-static containernetworking-plugins; do \
	  [ "$$(dpkg-query -W -f='$${Status}' $$p 2>/dev/null)" = 'install ok installed' ] || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "deps: missing$$missing; installing $(SYSTEM_PACKAGES)"; \
	  $(APT_GET) update && $(APT_GET) install -y $(SYSTEM_PACKAGES); \
	fi

# koffi ships prebuilt binaries, so its install script (which npm 11 warns about) is not needed.
node_modules/.package-lock.json: package-lock.json
	npm ci --ignore-scripts --no-audit --no-fund
	@touch $@

# tsc type-checks and compiles everything (tests, bench) to dist/; build-cli.mjs bundles the CLI's
# compiled modules with esbuild into dist/oci-netdev.js and makes its V8 code cache, which
# bin/oci-netdev runs (README, Dependencies). gen-man.mjs: man/oci-netdev.1 from the same command
# table as --help.
build: node_modules/.package-lock.json
	node scripts/gen-validators.mjs && $(BIN)/tsc -p . && node scripts/build-cli.mjs && node scripts/gen-man.mjs

# `make install` (PREFIX, DESTDIR as usual): the launcher, the bundled CLI and its code cache, and
# koffi (the package.json the loader resolves, its licence, the native modules for this machine)
# go to $(PREFIX)/lib/oci-netdev, which the hook entries name; $(PREFIX)/bin/oci-netdev links to the
# launcher. Tests, benchmarks and dev dependencies stay. test/integration/install.test.ts runs it.
PREFIX ?= /usr/local
# The CNI plugin: a link named oci-netdev in the runtimes' plugin folder (it is a plugin when CNI_COMMAND is set).
CNI_BIN_DIR ?= /opt/cni/bin
LIBDIR := $(DESTDIR)$(PREFIX)/lib/oci-netdev
# koffi's native modules for this machine only: glibc and musl (native/koffi-loader.ts tries both).
ARCH := $(shell node -p process.arch)
install: build
	install -d $(LIBDIR)/bin $(LIBDIR)/dist $(LIBDIR)/node_modules/koffi $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 0755 bin/oci-netdev $(LIBDIR)/bin/oci-netdev
	install -m 0644 dist/oci-netdev.js dist/oci-netdev.cache $(LIBDIR)/dist/
	install -m 0644 node_modules/koffi/package.json node_modules/koffi/LICENSE.txt $(LIBDIR)/node_modules/koffi/
	rm -rf $(LIBDIR)/node_modules/koffi/build
	for variant in linux musl; do \
	  install -d $(LIBDIR)/node_modules/koffi/build/koffi/$${variant}_$(ARCH); \
	  install -m 0644 node_modules/koffi/build/koffi/$${variant}_$(ARCH)/koffi.node $(LIBDIR)/node_modules/koffi/build/koffi/$${variant}_$(ARCH)/; \
	done
	ln -sfn ../lib/oci-netdev/bin/oci-netdev $(DESTDIR)$(PREFIX)/bin/oci-netdev
	install -d $(DESTDIR)$(CNI_BIN_DIR)
	ln -sfn $(PREFIX)/lib/oci-netdev/bin/oci-netdev $(DESTDIR)$(CNI_BIN_DIR)/oci-netdev
	install -m 0644 man/oci-netdev.1 $(DESTDIR)$(PREFIX)/share/man/man1/oci-netdev.1

# The layering rules (scripts/check-layers.mjs), ESLint with type information (eslint.config.mjs)
# and knip's unused files, exports and dependencies (knip.json). After the build: the type-aware
# rules need the generated validators.
lint: deps build
	@node scripts/check-layers.mjs
	$(BIN)/eslint --max-warnings 0 .
	$(BIN)/knip --no-progress
	@echo 'lint: eslint and knip are clean'

# lint first, then each suite in its own tap run, in this order (tap sorts the files of one run by
# name), then the leak check alone; one summary line for all.
test: deps build lint
	@scripts/setup-runtimes.sh
	@rc=0; { \
	  for suite in $(SUITES) dist/test/leak-check.test.js; do \
	    [ ! -e $$suite ] || $(TAP) $$suite || rc=$$?; echo; \
	  done; \
	  exit $$rc; \
	} | node scripts/tap-summary.mjs

demo: deps build
	scripts/demo.sh

clean:
	rm -rf dist .tap src/schema/generated man/oci-netdev.1

# Benchmarks (issue 4), never part of `make test`: oci-netdev against the kernel floor, an iproute2
# shell hook and the CNI plugins (installed by deps). Needs root; about 5 minutes.
.PHONY: bench
bench: deps build
	node dist/bench/run.js

# Fuzzing (issue 5): a long campaign from a fixed seed over the netlink decoder and the state,
# config.json, annotation and policy parsers; `make test` runs a short one (test/unit/fuzz-*).
# FUZZ_SEED and FUZZ_ITERATIONS change it; a finding prints the command that replays it.
.PHONY: fuzz
fuzz: build
	node dist/test/fuzz/run.js $(if $(FUZZ_SEED),--seed $(FUZZ_SEED)) $(if $(FUZZ_ITERATIONS),--iterations $(FUZZ_ITERATIONS))
