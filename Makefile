# oci-netdev. `make test` needs root and works from a fresh clone on Debian 12.
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -ec
.DEFAULT_GOAL := build

BIN := node_modules/.bin
SUITES := dist/test/unit dist/test/integration dist/test/e2e
SYSTEM_PACKAGES := runc crun podman busybox-static iproute2 ethtool containernetworking-plugins wget containerd buildah systemd
APT_GET := DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600

.PHONY: deps build lint test demo clean install uninstall deb image

deps: node_modules/.package-lock.json
	@missing=; \
	for c in runc crun podman ip ethtool nsenter wget containerd ctr buildah systemd-analyze; do command -v $$c >/dev/null || missing="$$missing $$c"; done; \
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
# bin/oci-netdev (the Node launcher) runs; build-exe.mjs compiles that bundle with Bun into the
# product, the single executable dist/oci-netdev, with koffi's native module beside it (README,
# Dependencies). gen-man.mjs: man/oci-netdev.1 from the same command table as --help.
build: node_modules/.package-lock.json
	node scripts/gen-validators.mjs && $(BIN)/tsc -p . && node scripts/build-cli.mjs && node scripts/build-exe.mjs && node scripts/gen-man.mjs && node scripts/gen-completion.mjs

# `make install` (PREFIX, DESTDIR as usual): the single executable, a file and not a link, as
# $(PREFIX)/bin/oci-netdev and as the CNI plugin $(CNI_BIN_DIR)/oci-netdev (it is a plugin when
# CNI_COMMAND is set), each with koffi's native module beside it, where it loads it from, and the
# man page; then the node files (install-node). Hook entries name the executable that wrote them.
# test/integration/install.test.ts runs it.
# The node files (install-node): the man pages, the bash completion, the gc units (systemd reads
# $(PREFIX)/lib/systemd/system for /usr and /usr/local), the hooks.d file (podman and CRI-O read
# /usr/share/containers/oci/hooks.d, so for PREFIX=/usr it is live), the licences and the example
# policy; test/integration/deploy.test.ts checks them and `make uninstall`.
PREFIX ?= /usr/local
CNI_BIN_DIR ?= /opt/cni/bin
KOFFI_BESIDE := oci-netdev-koffi.node
install: build
	@[ -x dist/oci-netdev ] || { echo 'install: make build made no dist/oci-netdev (no Bun for this machine); make install-launcher installs the Node launcher'; exit 1; }
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(CNI_BIN_DIR) $(DESTDIR)$(PREFIX)/share/man/man1
	for dir in $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(CNI_BIN_DIR); do \
	  install -m 0644 dist/$(KOFFI_BESIDE) $$dir/$(KOFFI_BESIDE); \
	  install -m 0755 dist/oci-netdev $$dir/oci-netdev; \
	done
	install -m 0644 man/oci-netdev.1 $(DESTDIR)$(PREFIX)/share/man/man1/oci-netdev.1
	$(MAKE) --no-print-directory install-node
	install -m 0644 node_modules/koffi/LICENSE.txt $(DESTDIR)$(DOC_DIR)/koffi-LICENSE.txt

# `make install-launcher`, where no executable is built: the Node launcher, the bundled CLI and its
# code cache, and koffi (the package.json the loader resolves, its licence, the native modules for
# this machine, glibc and musl: native/koffi-loader.ts tries both) go to $(PREFIX)/lib/oci-netdev, which the hook entries
# name; $(PREFIX)/bin/oci-netdev and $(CNI_BIN_DIR)/oci-netdev link to the launcher; then the node files.
LIBDIR := $(DESTDIR)$(PREFIX)/lib/oci-netdev
ARCH := $(shell node -p process.arch)
.PHONY: install-launcher
install-launcher: build
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
	$(MAKE) --no-print-directory install-node

UNIT_DIR = $(PREFIX)/lib/systemd/system
HOOKS_D_DIR = $(PREFIX)/share/containers/oci/hooks.d
COMPLETION_DIR = $(PREFIX)/share/bash-completion/completions
DOC_DIR = $(PREFIX)/share/doc/oci-netdev
# Everything install puts in place but the tree in $(LIBDIR) and the CNI plugin.
INSTALLED_FILES = $(PREFIX)/bin/oci-netdev $(PREFIX)/bin/$(KOFFI_BESIDE) $(PREFIX)/share/man/man1/oci-netdev.1 $(PREFIX)/share/man/man5/oci-netdev.5 \
  $(COMPLETION_DIR)/oci-netdev $(UNIT_DIR)/oci-netdev-gc.service $(UNIT_DIR)/oci-netdev-gc.timer \
  $(HOOKS_D_DIR)/oci-netdev.json $(DOC_DIR)/LICENSE $(DOC_DIR)/policy.example.json

# The hooks.d file is what the installed oci-netdev's `hooks-d` prints, with the path it will have
# once installed (scripts/relocate-hooks-d.mjs takes DESTDIR off).
.PHONY: install-node
install-node:
	install -d $(DESTDIR)$(PREFIX)/share/man/man5 $(DESTDIR)$(COMPLETION_DIR) $(DESTDIR)$(UNIT_DIR) $(DESTDIR)$(HOOKS_D_DIR) $(DESTDIR)$(DOC_DIR)
	install -m 0644 man/oci-netdev.5 $(DESTDIR)$(PREFIX)/share/man/man5/oci-netdev.5
	install -m 0644 completion/oci-netdev.bash $(DESTDIR)$(COMPLETION_DIR)/oci-netdev
	sed 's|@BINDIR@|$(PREFIX)/bin|g' deploy/systemd/oci-netdev-gc.service.in > $(DESTDIR)$(UNIT_DIR)/oci-netdev-gc.service
	chmod 0644 $(DESTDIR)$(UNIT_DIR)/oci-netdev-gc.service
	install -m 0644 deploy/systemd/oci-netdev-gc.timer $(DESTDIR)$(UNIT_DIR)/oci-netdev-gc.timer
	$(DESTDIR)$(PREFIX)/bin/oci-netdev hooks-d | node scripts/relocate-hooks-d.mjs '$(DESTDIR)' > $(DESTDIR)$(HOOKS_D_DIR)/oci-netdev.json
	install -m 0644 LICENSE deploy/policy.example.json $(DESTDIR)$(DOC_DIR)/

# Removes what install (or install-launcher) put in place, with the same PREFIX, DESTDIR and
# CNI_BIN_DIR; the CNI plugin only while it is ours: a link to our launcher, or a copy of the
# installed executable (then with koffi's module beside it).
uninstall:
	if [ "$$(readlink $(DESTDIR)$(CNI_BIN_DIR)/oci-netdev)" = $(PREFIX)/lib/oci-netdev/bin/oci-netdev ]; then rm -f $(DESTDIR)$(CNI_BIN_DIR)/oci-netdev; fi
	if [ ! -L $(DESTDIR)$(CNI_BIN_DIR)/oci-netdev ] && cmp -s $(DESTDIR)$(CNI_BIN_DIR)/oci-netdev $(DESTDIR)$(PREFIX)/bin/oci-netdev; then \
	  rm -f $(DESTDIR)$(CNI_BIN_DIR)/oci-netdev $(DESTDIR)$(CNI_BIN_DIR)/$(KOFFI_BESIDE); \
	fi
	rm -rf $(LIBDIR) $(DESTDIR)$(DOC_DIR)
	rm -f $(addprefix $(DESTDIR),$(INSTALLED_FILES))

VERSION := $(shell node -p "require('./package.json').version")

# `make deb`: a Debian package of `make install PREFIX=/usr`: the single executable as /usr/bin/oci-netdev
# and, a copy, as the CNI plugin /opt/cni/bin/oci-netdev (where containerd, CRI-O and podman look),
# koffi's module beside each, then the node files; built with dpkg-deb alone into $(DEB_DIR). It
# depends on what the executable and koffi's module link (ldd): libc, libstdc++ and libgcc_s, no
# Node.js. gzip, not xz: xz takes minutes over the two copies of a 110 MB executable, for 15% less.
# Its postinst enables the gc timer; nothing is downloaded. test/integration/deb.test.ts
# installs it into a scratch root and moves a device with it where no node is reachable.
DEB_DIR ?= build
DEB_ARCH := $(shell dpkg --print-architecture 2>/dev/null)
DEB_ROOT = $(DEB_DIR)/deb-root
deb: build
	rm -rf $(DEB_ROOT)
	$(MAKE) --no-print-directory -o build install DESTDIR=$(abspath $(DEB_ROOT)) PREFIX=/usr CNI_BIN_DIR=/opt/cni/bin
	install -d $(DEB_ROOT)/DEBIAN
	sed -e 's|@VERSION@|$(VERSION)|' -e 's|@ARCH@|$(DEB_ARCH)|' -e "s|@SIZE@|$$(du -sk --exclude=DEBIAN $(DEB_ROOT) | cut -f1)|" \
	  deploy/debian/control.in > $(DEB_ROOT)/DEBIAN/control
	install -m 0755 deploy/debian/postinst deploy/debian/prerm deploy/debian/postrm $(DEB_ROOT)/DEBIAN/
	install -m 0644 LICENSE $(DEB_ROOT)/usr/share/doc/oci-netdev/copyright
	dpkg-deb --root-owner-group -Zgzip --build $(DEB_ROOT) $(DEB_DIR)/oci-netdev_$(VERSION)_$(DEB_ARCH).deb
	rm -rf $(DEB_ROOT)

# `make image`: the DaemonSet's image (deploy/Containerfile), named as deploy/kubernetes/oci-netdev.yaml
# names it, built with buildah from `make install PREFIX=/opt/oci-netdev` (the single executable and
# koffi's module, the node files; not the CNI copy, which the init script makes on the node) staged
# in $(IMAGE_DIR). BUILDAH may carry global options (--root,
# --storage-driver); IMAGE_BASE must provide sh, cp, mv, mkdir and the libraries the executable and
# koffi's module link (libc, libstdc++, libgcc_s): debian:bookworm-slim does; busybox alone does not.
IMAGE ?= localhost/oci-netdev:$(VERSION)
IMAGE_BASE ?= docker.io/library/debian:bookworm-slim
IMAGE_DIR ?= build/image
BUILDAH ?= buildah
image: build
	rm -rf $(IMAGE_DIR)
	$(MAKE) --no-print-directory -o build install DESTDIR=$(abspath $(IMAGE_DIR))/root PREFIX=/opt/oci-netdev CNI_BIN_DIR=/opt/cni/bin
	rm -r $(IMAGE_DIR)/root/opt/cni
	cp deploy/Containerfile deploy/install-on-host.sh $(IMAGE_DIR)/
	$(BUILDAH) build --layers=false --build-arg BASE=$(IMAGE_BASE) -f $(IMAGE_DIR)/Containerfile -t $(IMAGE) $(IMAGE_DIR)

# The layering rules (scripts/check-layers.mjs), ESLint with type information (eslint.config.mjs)
# and knip's unused files, exports and dependencies (knip.json). After the build: the type-aware
# rules need the generated validators.
lint: deps build
	@node scripts/check-layers.mjs
	$(BIN)/eslint --max-warnings 0 .
	$(BIN)/knip --no-progress
	@echo 'lint: eslint and knip are clean'

# lint first; then every test file as `node FILE`, TEST_JOBS at a time (scripts/run-tests.mjs, one
# TAP stream): the unit, integration and e2e suites, and the integration and e2e suites again
# against the single executable (OCI_NETDEV_TEST_BIN, test/helpers/hook.ts) but for TEST_ONCE, the
# files whose run OCI_NETDEV_TEST_BIN does not change: inprocess, records, netlink-forgery and
# default-routes run the engine's modules in this process; executable tests both builds side by
# side; deb and deploy package the single executable whichever build is under test; sandbox-helpers
# and runtime-smoke run no oci-netdev. Then the leak check alone; one summary line for all
# (scripts/tap-summary.mjs).
# Test files run side by side: each works in network namespaces, devices, state dirs, bundles,
# runtime roots and stores of its own, named uniquely per process (test/helpers/names.ts), so
# neither another file nor the same file on the other build sees them. SERIAL_TESTS share something
# of the machine's and run one at a time (beside the others):
#   cdi.test.js            /etc/cdi: it writes a spec there, and creates and removes the folder
#   deb.test.js, deploy.test.js, install.test.js   `make` in this checkout (deb, image, install),
#                          a few hundred MB written and gzipped each: two at once risk their timeouts
# The leak check lists /run/netns at the start (OCI_NETDEV_TEST_NETNS_BEFORE): a runtime's cni-*
# netns that is new at the end, empty and unused is a leak.
TEST_ONCE := inprocess.test.js records.test.js netlink-forgery.test.js default-routes.test.js executable.test.js \
  deb.test.js deploy.test.js sandbox-helpers.test.js runtime-smoke.test.js
SERIAL_TESTS := cdi.test.js deb.test.js deploy.test.js install.test.js
TEST_JOBS ?= 3
NETNS_BEFORE := dist/test/netns-before.txt
test: deps build lint
	@scripts/setup-runtimes.sh
	@ls -1 /run/netns 2>/dev/null > $(NETNS_BEFORE) || true
	@rc=0; { \
	  exe_runs=; \
	  if [ -x dist/oci-netdev ]; then \
	    exe_runs="--env OCI_NETDEV_TEST_BIN=dist/oci-netdev $$(ls dist/test/integration/*.test.js dist/test/e2e/*.test.js | grep -v -F $(foreach f,$(TEST_ONCE),-e /$(f)))"; \
	  else \
	    echo 'Bail out! no dist/oci-netdev: make build found no Bun for this machine'; rc=1; \
	  fi; \
	  node scripts/run-tests.mjs --jobs $(TEST_JOBS) --serial '$(SERIAL_TESTS)' $$(ls $(addsuffix /*.test.js,$(SUITES))) $$exe_runs || rc=$$?; echo; \
	  OCI_NETDEV_TEST_NETNS_BEFORE=$(NETNS_BEFORE) node scripts/run-tests.mjs dist/test/leak-check.test.js || rc=$$?; echo; \
	  exit $$rc; \
	} | node scripts/tap-summary.mjs

demo: deps build
	scripts/demo.sh

clean:
	rm -rf dist .tap src/schema/generated man/oci-netdev.1 man/oci-netdev.5 completion build

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
