# nri-armor — see README.md. `make test` runs every test; CI runs it via .ci/run.
GO           ?= go
STATICCHECK  := honnef.co/go/tools/cmd/staticcheck@v0.8.2
FUZZTIME     ?= 15s
# Minimizing every new input for up to 60 s (the default) stalls short runs.
FUZZFLAGS    ?= -fuzztime $(FUZZTIME) -fuzzminimizetime 2s
BIN          := bin
PKGS         := ./...
# Packages whose tests (build tag vmtest) run as root inside the QEMU VM of
# hack/vmtest, each as one statically linked test binary; VMTEST_ARGS are
# passed to every binary, VMTEST_RUN_FLAGS to hack/vmtest/run.sh. The kernel,
# the binaries and the logs go to VMTEST_CACHE. tracer/telemetry has no
# VM-only tests: its host tests run there again, on Debian 12's 6.1 kernel.
VMTEST_PKGS      ?= ./hack/vmtest/smoke ./enforce/bpflsm ./tracer/telemetry
VMTEST_CACHE     ?= $(CURDIR)/.cache/vmtest
export VMTEST_CACHE
VMTEST_BIN       := $(VMTEST_CACHE)/bin
VMTEST_ARGS      ?= -test.v
# preempt=full: BPF programs may be preempted halfway (TestBypassLSM's
# scratch-race-preempt needs it, and fails without it). The bpflsm tests
# take about 380 s in the VM on a quiet machine, over 436 s on a busy one.
VMTEST_RUN_FLAGS ?= --timeout 900 --preempt full
vmtest_name       = $(subst /,-,$(patsubst ./%,%,$(1)))
# Packages whose tests (build tag k8s) run against a real etcd and
# kube-apiserver (internal/k8stest), built by hack/k8s/build.sh into
# K8S_CACHE (default .cache/k8s).
K8S_PKGS         ?= ./internal/k8stest ./k8s/apiserver

.PHONY: all build demo demo-vm test unit fuzz lint bench clean bpf-generate bpf-check generate-crds vmtest vmbench vmtest-e2e vmtest-apparmor k8s-node e2e e2e-bench helm manifests image k8s k8s-bench e2e-k8s-bench

all: build

build:
	$(GO) build -o $(BIN)/ ./cmd/...

# The README's first command (root): sets up what is missing (cached in
# .cache/e2e), runs nri-armor and armor-tracer against a private containerd
# with config/policies/demo-hardening.yaml, shows what is blocked and what is
# audited on this kernel, and tears everything down.
RUNTIME ?= containerd
demo:
	DEMO_RUNTIME=$(RUNTIME) hack/demo/demo.sh

# The same demo in the QEMU VM of hack/vmtest, where BPF-LSM is active
# (root): process and file Block rules refused with EPERM, alerts with
# Enforcer BPFLSM. hack/vmtest/demo.sh builds (cached) the Debian root of
# make vmtest-e2e, passes in the static binaries, the demo script and the
# policies, and runs hack/demo/demo.sh there with DEMO_PREBUILT_BIN (no
# set-up, no build); its output is streamed, its status is make's. Hard
# timeout DEMO_VM_TIMEOUT (300 s). Not part of make test.
# DEMO_VM_LSM=apparmor: the VM booted without BPF-LSM, AppArmor enforcing
# process, file and capability rules (apt-get refused with EACCES, alerts
# with Enforcer AppArmor).
demo-vm:
	hack/vmtest/demo.sh

# Every test: lint, the BPF regeneration check, unit, conformance and host
# privileged tests (root) with the race detector, a short run of each fuzz
# target, the end-to-end tests with a real containerd, the tests against a
# real API server, then the tests that need the VM (BPF-LSM), the
# end-to-end tests in the VM, and one Kubernetes node in the VM.
test: lint bpf-check unit fuzz e2e k8s vmtest vmtest-e2e vmtest-apparmor k8s-node

# The chart's tests (package charts) run helm: built first, once.
unit: helm
	$(GO) test -race -count=1 $(PKGS)

# helm, pinned, built from the Go module proxy into .cache/k8s/bin on first
# use (hack/k8s/helm.sh; a few minutes cold).
helm:
	@hack/k8s/helm.sh version >/dev/null

# deploy/nri-armor.yaml: charts/nri-armor rendered with its defaults, and
# the chart's copies of config/'s node files refreshed (a test fails when
# either is stale).
manifests:
	hack/k8s/render.sh

# The image the chart runs, nri-armor.local/nri-armor:<appVersion>, as an
# OCI archive in .cache/image (hack/image/build.sh; import it on a node
# with ctr -n k8s.io images import). Not part of make test (about a minute
# warm, more with a cold Go cache).
image:
	hack/image/build.sh

fuzz:
	hack/fuzz.sh FuzzLoad ./policy $(FUZZFLAGS)
	hack/fuzz.sh FuzzDecide ./policy $(FUZZFLAGS)
	hack/fuzz.sh FuzzKernelGlob ./enforce/bpflsm $(FUZZFLAGS)
	hack/fuzz.sh FuzzCompile ./enforce/apparmor $(FUZZFLAGS)

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) vet -tags e2e ./e2e
	$(GO) vet -tags 'e2e vme2e' ./e2e
	$(GO) vet -tags 'e2e vmapparmor' ./e2e
	$(GO) vet -tags 'e2e vmk8s' ./e2e
	$(GO) vet -tags vmtest ./enforce/apparmor
	$(GO) vet -tags k8s $(K8S_PKGS)
	$(GO) run $(STATICCHECK) $(PKGS)
	$(GO) run $(STATICCHECK) -tags e2e ./e2e
	$(GO) run $(STATICCHECK) -tags 'e2e vme2e' ./e2e
	$(GO) run $(STATICCHECK) -tags 'e2e vmapparmor' ./e2e
	$(GO) run $(STATICCHECK) -tags 'e2e vmk8s' ./e2e
	$(GO) run $(STATICCHECK) -tags k8s $(K8S_PKGS)

# The committed BPF objects must be what the pinned clang builds.
bpf-generate:
	./hack/bpf-generate.sh

bpf-check:
	./hack/bpf-generate.sh --check

# The Kubernetes CRDs (config/crd, one file per kind, and the same files in
# charts/nri-armor/crds) and the deepcopy functions, generated by
# controller-gen (go.mod's tool) from the API types of k8s/api/v1. The
# unit test TestCRDsGenerated fails when the committed files differ from a
# fresh run.
generate-crds:
	./hack/generate-crds.sh

# VM tests: one VM runs every VMTEST_PKGS binary (run.sh fetches the Debian
# kernel and installs qemu on first use); then selfcheck.sh proves that a
# failing test, a kernel panic, a timeout and a --rootfs image that does
# not mount fail run.sh. When the VM itself fails — a guest kernel panic or
# hang (run.sh exit 3 or 124), never a failed test (1) — it runs once more:
# software emulation with two virtual CPUs has panicked the guest on the
# kernel's own code patching (an int3 while the syscall tracepoints'
# static keys switch) in tests that did not change, and one CPU cannot run
# TestBypassLSM's race. The first attempt's console stays in the output.
VMTEST_RUN = hack/vmtest/run.sh $(VMTEST_RUN_FLAGS) $(foreach p,$(VMTEST_PKGS),--run '$(VMTEST_BIN)/$(call vmtest_name,$(p)).test $(VMTEST_ARGS)')
vmtest:
	$(GO) vet -tags vmtest $(VMTEST_PKGS)
	@rm -rf $(VMTEST_BIN) && mkdir -p $(VMTEST_BIN)
	$(foreach p,$(VMTEST_PKGS),CGO_ENABLED=0 $(GO) test -c -tags vmtest -o $(VMTEST_BIN)/$(call vmtest_name,$(p)).test $(p) &&) true
	$(VMTEST_RUN) || { rc=$$?; if [ $$rc = 3 ] || [ $$rc = 124 ]; then \
		echo "vmtest: the VM itself failed (run.sh exit $$rc: a guest kernel panic or hang, not a test); once more" >&2; \
		$(VMTEST_RUN); else exit $$rc; fi; }
	hack/vmtest/selfcheck.sh $(VMTEST_BIN)/hack-vmtest-smoke.test

# What enforcement costs, measured in the VM with one CPU: interleaved A/B
# rounds, the floor of empty programs, and the kernel's per-program
# statistics (figures, not a test). With --icount the guest's clock counts
# instructions, so every figure is an instruction count. Then AppArmor's
# (enforce/apparmor, in the Debian root for apparmor_parser, both LSMs
# active): open+close and fork+exec unconfined, under a 1,000-rule profile
# and under BPF-LSM with the same rules; profile load and replace times.
vmbench:
	@mkdir -p $(VMTEST_BIN)
	CGO_ENABLED=0 $(GO) test -c -tags vmtest -o $(VMTEST_BIN)/bpflsm-bench.test ./enforce/bpflsm
	hack/vmtest/run.sh --icount --smp 1 --timeout 1800 $(VMTEST_BIN)/bpflsm-bench.test -test.run '^$$' -test.bench 'LSMOverhead|LSMFloor|LSMChangeHooks' -test.benchtime 1x
	CGO_ENABLED=0 $(GO) test -c -tags vmtest -o $(VMTEST_BIN)/apparmor-bench.test ./enforce/apparmor
	hack/vmtest/run.sh --icount --smp 1 --timeout 1800 --rootfs "$$(hack/vmtest/rootfs.sh)" $(VMTEST_BIN)/apparmor-bench.test -test.run '^$$' -test.bench 'AppArmor' -test.benchtime 1x

# End-to-end in the VM (root): the e2e flows where BPF-LSM enforces
# (process and file Block, armor-tracer's alerts). hack/vmtest/e2e.sh builds
# and caches a Debian root with containerd, runc and crictl (rootfs.sh),
# boots it with run.sh --rootfs and runs the e2e tests tagged vme2e
# (TestVM*) there; hard timeout VME2E_TIMEOUT (1500 s). Not root it fails,
# or skips when NRI_ARMOR_ALLOW_SKIP_PRIVILEGED=1.
vmtest-e2e:
	hack/vmtest/e2e.sh

# The same VM booted as most Debian, Ubuntu and COS nodes are: AppArmor
# active, BPF-LSM not; containerd with AppArmor enabled. Runs the VM tests
# of enforce/apparmor (the loader, the attack suite) and the end-to-end
# tests tagged vmapparmor (TestAppArmor*).
vmtest-apparmor:
	VME2E_LSM=apparmor hack/vmtest/e2e.sh

# One real Kubernetes node in the VM (root): etcd, kube-apiserver, a kubelet
# (hack/k8s/build.sh, from Go modules) with the private containerd, runc,
# the standard CNI plugins (hack/k8s/cni.sh), nri-armor watching
# KubeArmorPolicy objects and armor-tracer; kubectl apply, run, exec and
# delete (e2e TestK8sNode, build tag vmk8s; docs/testing.md).
k8s-node:
	VME2E_K8S=1 hack/vmtest/e2e.sh

# End-to-end (root): hack/e2e/setup.sh installs runc, containerd, crictl,
# CRI-O (crio, pinns; conmon and skopeo from Debian) and builds the local
# images (cached in .cache/e2e); the tests (build tag e2e) run the real
# nri-armor against a private containerd and a private CRI-O (the subtests
# named crio) and tear them down. Not
# root, set-up (apt) is left out and the tests fail, or skip when
# NRI_ARMOR_ALLOW_SKIP_PRIVILEGED=1.
E2E_FLAGS ?= -v
e2e:
	@if [ "$$(id -u)" = 0 ]; then hack/e2e/setup.sh; fi
	hack/k8s/build.sh
	$(GO) test -tags e2e -race -count=1 -timeout 20m $(E2E_FLAGS) ./e2e

# Tests against a real etcd and kube-apiserver (no root needed):
# hack/k8s/build.sh builds the pinned binaries once (cached in K8S_CACHE;
# a no-op after), then the packages of K8S_PKGS run with the build tag k8s,
# each starting its own cluster on loopback ports (internal/k8stest).
K8S_FLAGS ?= -v
k8s: helm
	hack/k8s/build.sh
	$(GO) test -tags k8s -race -count=1 -timeout 10m $(K8S_FLAGS) $(K8S_PKGS)

# 10,000 policies across 1,000 namespaces in a real API server: the
# agent's heap for them, the time to the first catalog, an update's p99 to
# the catalog, the webhook's review p99 (docs/benchmarks.md).
k8s-bench:
	hack/k8s/build.sh
	$(GO) test -tags k8s -count=1 -run '^$$' -bench WatchScale -benchtime 1x -timeout 20m ./k8s/apiserver

# The whole agent with 10,000 API policies on the e2e node (root): its RSS,
# and each update's time from the watch event to the running containers'
# kernel state (figures, not a test).
e2e-k8s-bench:
	hack/e2e/setup.sh
	hack/k8s/build.sh
	$(GO) test -tags e2e -count=1 -run '^$$' -bench KubernetesScale -benchtime 1x -timeout 20m ./e2e

# Container start latency with nri-armor (a 1,000-rule policy) and without,
# through crictl (figures, not a test).
e2e-bench:
	hack/e2e/setup.sh
	RUNTIME=$(RUNTIME) hack/e2e/bench-start.sh

# Benchmarks; hack/bench-policy.sh prints the policy engine's figures.
bench:
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

clean:
	rm -rf $(BIN)
