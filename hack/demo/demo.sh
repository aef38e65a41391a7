#!/usr/bin/env bash
# hack/demo/demo.sh (make demo, as root): nri-armor end to end on this node,
# in about half a minute once set up, leaving nothing behind.
#
#  1. sets up what is missing (hack/e2e/setup.sh: runc, containerd, crictl,
#     the local busybox image with a fake apt-get and the nettool probe;
#     cached in .cache/e2e) and builds nri-armor, nri-armor-hook,
#     armor-tracer and armorctl;
#  2. probes the kernel (armorctl probe): which classes it enforces, which
#     it only audits;
#  3. starts a private containerd (hack/e2e/containerd.sh, environment
#     "demo": own sockets, NRI socket and cgroups, fail-closed NRI and the
#     guard of every container start; or CRI-O, hack/e2e/crio.sh, with
#     DEMO_RUNTIME=crio: make demo RUNTIME=crio), then nri-armor (with its start gate,
#     which installs the guard's hook) and armor-tracer with their own bpffs
#     pins, state directory and ports on 127.0.0.1 — never the node's
#     defaults;
#  4. runs a host-network busybox pod selected by the shipped policy
#     config/policies/demo-hardening.yaml and performs allowed and forbidden
#     operations in it with crictl exec, saying what happened;
#  5. prints the alerts armor-tracer streamed (armorctl logs) and the
#     interesting lines of both /metrics;
#  6. tears everything down (trap): pod, processes, containerd with its
#     shims, mounts and cgroups, the pins. A killed demo's leftovers are
#     removed by the next one.
#
# Exit status 0 when every operation ended as the policy and this kernel
# say it should and every alert expected arrived; 1 otherwise.
#
# Environment:
#   DEMO_PREBUILT_BIN=DIR  use the prebuilt nri-armor, nri-armor-hook,
#                          armor-tracer and armorctl in DIR
#                          instead of building them, and skip step 1's
#                          hack/e2e/setup.sh: containerd, ctr, the shim,
#                          crictl and the images must already be in
#                          NRI_ARMOR_E2E_CACHE, runc, jq and ss on PATH. No Go
#                          is needed then: `make demo-vm` (hack/vmtest/demo.sh)
#                          runs the demo this way in the QEMU VM with BPF-LSM.
#   DEMO_ALERT_WAIT=S      how long to wait for the expected alerts (5 s).
#   DEMO_RUNTIME=crio      run the demo on a private CRI-O (hack/e2e/crio.sh,
#                          config/crio-nri.conf and the guard of
#                          config/crio-hook.json) instead of containerd
#                          (make demo RUNTIME=crio).
set -euo pipefail

# The demo's own environment beside the e2e tests' (hack/e2e/lib.sh).
export NRI_ARMOR_E2E_RUN_NAME=demo
# shellcheck source=../e2e/lib.sh
. "$(dirname "$0")/../e2e/lib.sh"
export LC_ALL=C
# E2E_NRI_SOCK, E2E_CGROUP_PARENT … of the demo's containerd.
eval "$("$E2E_ROOT/hack/e2e/containerd.sh" env)"
# The runtime the demo runs on: RT_SCRIPT starts and stops it, CRICTL_CFG
# reaches it; on CRI-O its NRI socket and cgroup parent replace
# containerd's.
RUNTIME=${DEMO_RUNTIME:-containerd}
case $RUNTIME in
containerd)
	RT_SCRIPT=containerd.sh CRICTL_CFG=$E2E_CRICTL_CONFIG RT_LOG=$E2E_RUN/containerd.log
	RT_BINS="containerd ctr containerd-shim-runc-v2 crictl"
	;;
crio)
	eval "$("$E2E_ROOT/hack/e2e/crio.sh" env)"
	RT_SCRIPT=crio.sh CRICTL_CFG=$E2E_CRIO_CRICTL_CONFIG RT_LOG=$E2E_CRIO_LOG
	E2E_NRI_SOCK=$E2E_CRIO_NRI_SOCK E2E_CGROUP_PARENT=$E2E_CRIO_CGROUP_PARENT
	RT_BINS="crio pinns crictl"
	;;
*)
	echo "demo: error: DEMO_RUNTIME takes containerd or crio, got '$RUNTIME'" >&2
	exit 2
	;;
esac

ROOT=$E2E_ROOT
POLICY=$ROOT/config/policies/demo-hardening.yaml
DEMO=$E2E_RUN/armor # our logs, state, pid files and binaries
PINS=/sys/fs/bpf/nri-armor-demo-$E2E_ID
NAMESPACE=demo
# How long an expected alert may take to reach the stream: events are
# read from the ring buffer in batches, then enriched.
ALERT_WAIT=${DEMO_ALERT_WAIT:-5}
PREBUILT=${DEMO_PREBUILT_BIN:-}
# Where full enforcement (BPF-LSM) can be seen when this kernel lacks it.
VM_HINT="make demo-vm (this demo in a QEMU VM booted with BPF-LSM, where every class is enforced: apt-get refused with EPERM, alerts with Enforcer BPFLSM)"

# Headings in bold on a terminal, plain in a log.
if [ -t 1 ]; then bold=$'\033[1m' plain=$'\033[0m'; else bold='' plain=''; fi
step() { printf '\n%s==> %s%s\n' "$bold" "$*" "$plain"; }
info() { echo "    $*"; }
fail() { echo "demo: error: $*" >&2; exit 1; }
indent() { sed 's/^/      | /'; }

[ "$(id -u)" = 0 ] || fail "make demo needs root (it loads BPF programs, creates cgroups and runs containerd)"
command -v ss >/dev/null || fail "ss (Debian package iproute2) is needed to find the ports nri-armor and armor-tracer listen on"

# http_get http://HOST:PORT/PATH: the body, or a non-zero status. curl when
# present, else bash's /dev/tcp (a fresh Debian, and the VM of make demo-vm,
# lack curl; busybox-static's wget crashes on Debian 12). An HTTP/1.0
# request: the daemons' Go servers answer it unchunked and close.
http_get() {
	if command -v curl >/dev/null; then
		curl -fsS --max-time 5 "$1"
		return
	fi
	local rest=${1#http://}
	local hostport=${rest%%/*}
	local path=${rest#"$hostport"}
	# shellcheck disable=SC2016 # expanded by the inner bash
	timeout 5 bash -c '
		exec 3<>"/dev/tcp/${1%:*}/${1##*:}" || exit 1
		printf "GET %s HTTP/1.0\r\nHost: %s\r\n\r\n" "$2" "$1" >&3
		IFS= read -r status <&3 || exit 1
		case $status in "HTTP/1."?" 200 "*) ;; *) exit 1 ;; esac
		while IFS= read -r line <&3 && [ -n "${line%$'"'\r'"'}" ]; do :; done
		cat <&3' http_get "$hostport" "${path:-/}"
}

# wait_until SECONDS CMD...: retries CMD every 0.1 s until it succeeds
# (status 0) or SECONDS pass (status 1).
wait_until() {
	local limit=$1
	shift
	local end=$((SECONDS + limit))
	until "$@" >/dev/null 2>&1; do
		((SECONDS < end)) || return 1
		sleep 0.1
	done
}

# --- teardown ---------------------------------------------------------------

# stop_pid NAME: ends the process of $DEMO/NAME.pid if it is still ours (the
# pid of a killed demo may have been reused since: the command line says).
stop_pid() {
	local name=$1 pidfile=$DEMO/$1.pid pid
	[ -f "$pidfile" ] || return 0
	pid=$(cat "$pidfile")
	if tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -q "^$DEMO/bin/$name "; then
		kill -TERM "$pid" 2>/dev/null || true
		for _ in $(seq 50); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$pid" 2>/dev/null; then
			echo "demo: $name (pid $pid) ignored SIGTERM for 5 s: killing it" >&2
			kill -KILL "$pid" 2>/dev/null || true
		fi
	fi
	rm -f "$pidfile"
}

crictl_() { timeout 60 "$E2E_BIN/crictl" --config "$CRICTL_CFG" "$@"; }

# teardown removes everything the demo (or a killed one) started: the pod
# first, while nri-armor still follows it, then the daemons, containerd
# with its shims, mounts and cgroups, and the pins, which would otherwise
# keep the cgroup programs attached to the node's cgroup2 root.
teardown() {
	local ok=0
	if "$ROOT/hack/e2e/$RT_SCRIPT" status 2>/dev/null; then
		crictl_ rmp -fa >/dev/null 2>&1 || true
	fi
	stop_pid armor-tracer
	stop_pid nri-armor
	# Both runtimes: a killed demo may have run on the other one (the VM's
	# copy of the scripts has no crio.sh: make demo-vm).
	if [ -x "$ROOT/hack/e2e/crio.sh" ]; then
		"$ROOT/hack/e2e/crio.sh" stop 2>&1 | sed 's/^e2e: /    /' || ok=1
	fi
	"$ROOT/hack/e2e/containerd.sh" stop 2>&1 | sed 's/^e2e: /    /' || ok=1
	rm -rf "$PINS" || ok=1
	[ ! -e "$PINS" ] || { echo "demo: error: could not remove the pins $PINS" >&2; ok=1; }
	if awk -v r="$E2E_RUN/" 'index($5, r) == 1' /proc/self/mountinfo | grep -q .; then
		echo "demo: error: mounts left under $E2E_RUN" >&2
		ok=1
	fi
	return $ok
}

status=0
on_exit() {
	local rc=$?
	trap - EXIT INT TERM
	set +e
	step "Tearing down"
	if teardown; then
		info "nothing left: no pod, no $RUNTIME, no nri-armor or armor-tracer, no pins ($PINS), no cgroups, no mounts"
		info "logs kept until the next run: $DEMO/*.log, $RT_LOG"
	else
		echo "demo: error: teardown incomplete (see above)" >&2
		rc=1
	fi
	((rc == 0)) && rc=$status
	if ((rc == 0)); then
		echo "demo: done in ${SECONDS}s"
	else
		echo "demo: FAILED (exit $rc) after ${SECONDS}s" >&2
	fi
	exit "$rc"
}

# --- 1. set-up ----------------------------------------------------------------

mkdir -p "$DEMO/bin"
if [ -n "$PREBUILT" ]; then
	# The binaries are copied to $DEMO/bin all the same: stop_pid knows
	# the daemons by that path.
	step "Using the prebuilt binaries in $PREBUILT (DEMO_PREBUILT_BIN: no set-up, no build)"
	for b in nri-armor nri-armor-hook armor-tracer armorctl; do
		[ -x "$PREBUILT/$b" ] || fail "DEMO_PREBUILT_BIN: $PREBUILT/$b missing"
	done
	for b in $RT_BINS; do
		[ -x "$E2E_BIN/$b" ] || fail "DEMO_PREBUILT_BIN skips hack/e2e/setup.sh, but $E2E_BIN/$b is missing"
	done
	for b in nri-armor nri-armor-hook armor-tracer armorctl; do
		# rm first: a killed demo's daemon may still run the old file.
		rm -f "$DEMO/bin/$b"
		cp "$PREBUILT/$b" "$DEMO/bin/" || fail "cannot copy $PREBUILT/$b to $DEMO/bin"
	done
else
	step "Setting up (cached in .cache/e2e; the first run installs containerd and crictl: a few minutes)"
	"$ROOT/hack/e2e/setup.sh" 2>&1 | sed 's/^e2e: /    /' || fail "hack/e2e/setup.sh failed (see above)"
	info "building nri-armor, nri-armor-hook, armor-tracer, armorctl"
	(cd "$ROOT" && go build -o "$DEMO/bin/" ./cmd/nri-armor ./cmd/nri-armor-hook ./cmd/armor-tracer ./cmd/armorctl) || fail "go build failed"
fi
command -v jq >/dev/null || fail "jq is needed (Debian package jq; hack/e2e/setup.sh installs it)"
ARMORCTL=$DEMO/bin/armorctl

# From here on everything started is torn down however the demo ends. A
# demo that was killed may have left its daemons, pod and pins: clear them.
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
if [ -e "$PINS" ] || ls "$DEMO"/*.pid >/dev/null 2>&1 || "$ROOT/hack/e2e/containerd.sh" status 2>/dev/null || { [ -x "$ROOT/hack/e2e/crio.sh" ] && "$ROOT/hack/e2e/crio.sh" status 2>/dev/null; }; then
	info "removing what an earlier demo left running (it was killed)"
	teardown >/dev/null 2>&1 || true
fi
rm -rf "$DEMO/state" "$DEMO/logs" "$DEMO"/*.log "$DEMO/stream.sock"

# --- 2. what this kernel enforces --------------------------------------------

step "What this kernel can enforce (armorctl probe)"
probe=$("$ARMORCTL" probe -o json) || fail "armorctl probe failed"
info "kernel $(jq -r .kernel <<<"$probe"), active LSMs: $(jq -r '.lsms | join(",")' <<<"$probe")"
jq -r '.classes | to_entries[] | "\(.key)\t\(.value.backend)\t\(.value.enforcing)\t\(.value.reason // "")"' <<<"$probe" |
	while IFS=$'\t' read -r class backend enforcing reason; do
		if [ "$enforcing" = true ]; then
			printf '    %-13s ENFORCED by %s\n' "$class" "$backend"
		else
			printf '    %-13s audit only (%s)\n' "$class" "$reason"
		fi
	done
enforced() { [ "$(jq -r --arg c "$1" '.classes[$c].enforcing' <<<"$probe")" = true ]; }
audited=$(jq -r '[.classes | to_entries[] | select(.key != "syscalls" and (.value.enforcing | not)) | .key] | join(", ")' <<<"$probe")
if [ -n "$audited" ]; then
	info "Here $audited rules are not blocked, only audited (alerts from armor-tracer's telemetry)."
	info "To see every class blocked: $VM_HINT."
else
	info "Every class is enforced on this kernel."
fi

# --- 3. containerd, nri-armor, armor-tracer ------------------------------------

step "The policy (config/policies/demo-hardening.yaml)"
"$ARMORCTL" validate "$POLICY" | indent
sed -n '/^apiVersion/,$p' "$POLICY" | indent

step "Starting a private $RUNTIME, nri-armor and armor-tracer"
# The guard's program in place before the runtime starts, as a node's
# provisioning puts it (CRI-O drops a hook whose program is missing when
# it starts; nri-armor installs it there again from its own).
mkdir -p "$E2E_GATE" && install -m 0755 "$DEMO/bin/nri-armor-hook" "$E2E_GATE/nri-armor-hook" ||
	fail "installing the guard in $E2E_GATE"
"$ROOT/hack/e2e/$RT_SCRIPT" start 2>&1 | sed 's/^e2e: /    /' ||
	fail "hack/e2e/$RT_SCRIPT start failed (log: $RT_LOG)"
mkdir -p "$DEMO/state" "$DEMO/logs"

# await DAEMON WHAT CMD...: waits up to 20 s for CMD; when it does not
# succeed, shows the daemon's log and fails saying what did not happen.
await() {
	local daemon=$1 what=$2
	shift 2
	wait_until 20 "$@" && return
	tail -20 "$DEMO/$daemon.log" | indent >&2
	fail "$daemon $what within 20 s (log: $DEMO/$daemon.log)"
}

# listening PID: the TCP address PID listens on (into ADDR); fails while it
# does not, or when PID has exited. Both daemons are given port 0, so the
# kernel picks a free one and we ask the kernel which.
listening() {
	kill -0 "$1" 2>/dev/null || return 1
	ADDR=$(ss -Hltnp | awk -v p="pid=$1," 'index($0, p) {print $4; exit}')
	[ -n "$ADDR" ]
}

# launch NAME READY ARGS...: starts $DEMO/bin/NAME (log $DEMO/NAME.log, a pid
# file for the clean-up of a killed demo), waits until it listens and its
# /readyz answers (READY says what that means), and sets PID and ADDR.
launch() {
	local name=$1 ready=$2
	shift 2
	"$DEMO/bin/$name" "$@" >"$DEMO/$name.log" 2>&1 </dev/null &
	PID=$! ADDR=
	echo "$PID" >"$DEMO/$name.pid"
	await "$name" "did not listen on 127.0.0.1" listening "$PID"
	await "$name" "was not ready: $ready (/readyz)" http_get "http://$ADDR/readyz"
}

# The policy directory is config/policies itself: the demo enforces the
# file as shipped. The start gate puts nri-armor-hook where the demo
# containerd's guard (config/containerd-base-spec.json) runs it: no
# container of the demo starts before nri-armor has.
launch nri-armor "synchronized with $RUNTIME" -socket "$E2E_NRI_SOCK" \
	-policyDirs "$ROOT/config/policies" -bpffs "$PINS" -stateDir "$DEMO/state" \
	-gateBinary "$E2E_GATE/nri-armor-hook" -gateSocket "$E2E_GATE/gate.sock" \
	-metricsAddress 127.0.0.1:0 -reconnectMax 1s
armor_pid=$PID armor_addr=$ADDR
info "nri-armor up (pid $armor_pid): NRI $E2E_NRI_SOCK, pins $PINS, metrics http://$armor_addr/metrics"

# Metrics on a port of their own (found as nri-armor's are); the alert
# stream on a unix socket only root may use, never beside the metrics
# (docs/security.md). Ready: nri-armor's event ring buffer is open, so no
# event is missed.
STREAM_SOCK=$DEMO/stream.sock
launch armor-tracer "reading nri-armor's event ring buffer" -stateDir "$DEMO/state" \
	-bpffs "$PINS" -metricsAddress 127.0.0.1:0 -streamAddress "unix:$STREAM_SOCK" \
	-clusterName demo -retryInterval 1s
tracer_pid=$PID tracer_addr=$ADDR
info "armor-tracer up (pid $tracer_pid): metrics http://$tracer_addr, stream $STREAM_SOCK (armorctl logs --socket $STREAM_SOCK)"
# The telemetry loader exports its loss counter from the start: without it
# this armor-tracer reports only what the kernel enforces.
telemetry=false
if http_get "http://$tracer_addr/metrics" | grep -q '^nri_armor_tracer_events_lost_total{source="telemetry"}'; then
	telemetry=true
	info "armor-tracer's telemetry is on: rules this kernel cannot enforce are audited"
else
	info "armor-tracer runs without telemetry (telemetry: false): it reports enforced (kernel) decisions only"
fi

# --- 4. the pod and what it tries ------------------------------------------------

step "Running pod $NAMESPACE/armor-demo (label app=armor-demo, host network, busybox)"
# Where AppArmor enforces, the pod names its container's profile as
# nri-armor's admission webhook would: the container's securityContext and
# the annotation nri-armor loads the profile by when the pod starts
# (docs/apparmor.md). armorctl explain computes the name nri-armor does.
# The runtime's default seccomp filter too: nri-armor requires it beside a
# profile (it refuses open_tree, a way around AppArmor's file rules).
profile=
if [ "$(jq -r '.classes.file.backend' <<<"$probe")" = AppArmor ]; then
	profile=$("$ARMORCTL" explain -o apparmor --policies "$ROOT/config/policies" --namespace "$NAMESPACE" \
		--labels app=armor-demo --container app | sed -n 's/.*localhostProfile: \(.*\)}$/\1/p')
	[ -n "$profile" ] || fail "armorctl explain -o apparmor printed no profile name"
	info "AppArmor enforces here: the container runs under profile $profile"
fi
jq -n --arg logs "$DEMO/logs" --arg parent "/$E2E_CGROUP_PARENT" --arg ns "$NAMESPACE" --arg profile "$profile" '{
	metadata: {name: "armor-demo", namespace: $ns, uid: "armor-demo", attempt: 0},
	labels: {app: "armor-demo"},
	annotations: (if $profile == "" then {} else {"container.apparmor.security.beta.kubernetes.io/app": ("localhost/" + $profile)} end),
	log_directory: $logs,
	linux: {cgroup_parent: $parent, security_context: {namespace_options: {network: 2}}}}' >"$DEMO/pod.json"
# The labels a kubelet gives every container: CRI-O tells NRI plugins a
# container's name from io.kubernetes.container.name alone.
jq -n --arg image "$E2E_BUSYBOX_IMAGE" --arg profile "$profile" --arg ns "$NAMESPACE" '{
	metadata: {name: "app"}, image: {image: $image},
	labels: {"io.kubernetes.container.name": "app", "io.kubernetes.pod.name": "armor-demo",
		"io.kubernetes.pod.namespace": $ns, "io.kubernetes.pod.uid": "armor-demo"},
	command: ["sleep", "3600"], log_path: "app.log"}
	+ (if $profile == "" then {} else {linux: {security_context: {apparmor: {profile_type: 2, localhost_ref: $profile},
		seccomp: {profile_type: 0}}}} end)' >"$DEMO/container.json"
pod=$(crictl_ runp "$DEMO/pod.json" 2>"$DEMO/crictl.err") || fail "crictl runp: $(cat "$DEMO/crictl.err")"
cid=$(crictl_ create "$pod" "$DEMO/container.json" "$DEMO/pod.json" 2>"$DEMO/crictl.err") || fail "crictl create: $(cat "$DEMO/crictl.err")"
crictl_ start "$cid" >/dev/null 2>"$DEMO/crictl.err" || fail "crictl start: $(cat "$DEMO/crictl.err")"
# nri-armor names the container's rule set in an OCI annotation.
set_name=$(crictl_ inspect "$cid" 2>/dev/null | jq -r '.info.runtimeSpec.annotations["nri-armor.dev/policy-set"] // "none"') || set_name="unknown (crictl inspect failed)"
info "container app ${cid:0:13} started; its rule set (nri-armor.dev/policy-set): $set_name"

unexpected=()
# try WHAT CLASS EXPECT CMD...: runs CMD in the container and says what
# happened. EXPECT is allow (must succeed), block (must fail with EPERM where
# CLASS is enforced; elsewhere it runs and is only audited) or audit (must
# succeed, and raise an alert).
try() {
	local what=$1 class=$2 expect=$3
	shift 3
	local out code=0 want
	out=$(crictl_ exec "$cid" "$@" 2>&1) || code=$?
	# crictl's own log line repeats the exit status: noise here.
	out=$(grep -v 'level=error msg="execing command in container' <<<"$out" || true)
	case $expect in
	allow | audit) want=ok ;;
	block) if enforced "$class"; then want=denied; else want=ok; fi ;;
	esac
	echo
	info "$what"
	info "\$ crictl exec app $*"
	[ -n "$out" ] && indent <<<"$out"
	local got=ok
	if ((code != 0)); then
		got=failed
		grep -qi 'operation not permitted\|permission denied' <<<"$out" && got=denied
	fi
	case $got/$want in
	ok/ok)
		case $expect in
		allow) info "→ exit 0: allowed, as it should be" ;;
		audit) info "→ exit 0: allowed, and the policy audits it: $(alert_note "$class")" ;;
		block) info "→ exit 0: it ran — $class rules are audit only on this kernel: $(alert_note "$class")" ;;
		esac
		;;
	denied/denied) info "→ exit $code: BLOCKED by the kernel ($class: $(jq -r --arg c "$class" '.classes[$c].backend' <<<"$probe")), as the policy says" ;;
	*)
		info "→ exit $code: UNEXPECTED (wanted $want)"
		unexpected+=("$*: exit $code, wanted $want")
		;;
	esac
}

# wants CLASS: an alert for a rule of CLASS is to come: the kernel writes
# an event for what it enforces, armor-tracer's telemetry audits the rest.
wants() { enforced "$1" || [ "$telemetry" = true ]; }
alert_note() {
	if wants "$1"; then
		echo "an alert is expected (below)"
	else
		echo "no alert: this armor-tracer runs without telemetry"
	fi
}

step "Operations in the container"
try "Read an ordinary file (no rule):" file allow head -1 /etc/passwd
try "Open a UDP socket (no rule):" network allow nettool udp
try "Open a raw socket (network rule: Block raw):" network block nettool raw
# From a shell in the container, as an intruder's command runs: AppArmor
# checks the program runc itself executes under runc's profile, not the
# container's (docs/apparmor.md), so `crictl exec app apt-get` would run
# there, reported by armor-tracer as a Block that passed.
try "Run the package manager from a shell (process rule: Block /usr/bin/apt-get):" process block sh -c "apt-get install -y nmap"
try "Read the password hashes (file rule: Audit /etc/shadow):" file audit cat /etc/shadow

# --- 5. alerts and metrics -----------------------------------------------------------

step "Alerts (armorctl logs --socket $STREAM_SOCK --namespace $NAMESPACE --type alert)"
# Per expected alert: its name, the class whose rule raises it, and a jq
# test on one alert. It is awaited where the kernel enforces the class (the
# kernel writes the event) or armor-tracer's telemetry audits it.
names=("raw socket Block" "apt-get Block" "/etc/shadow Audit")
classes=(network process file)
tests=(
	'.Operation == "Network" and (.Resource // "" | test("SOCK_RAW"))'
	'.Operation == "Process" and ((.Resource // "") + " " + (.ProcessName // "") | test("apt-get"))'
	'.Operation == "File" and (.Resource // "" | test("/etc/shadow"))'
)
logs_json() { "$ARMORCTL" logs --socket "$STREAM_SOCK" --namespace "$NAMESPACE" --type alert -o json; }
# jq reads every line (no early exit): armorctl must not die of SIGPIPE,
# which pipefail would take for "not arrived".
arrived() { logs_json | jq -en "[inputs | select($1)] | length > 0" >/dev/null; }
all_arrived() {
	local i
	for i in "${!names[@]}"; do
		if wants "${classes[i]}" && ! arrived "${tests[i]}"; then return 1; fi
	done
}
wait_until "$ALERT_WAIT" all_arrived || true
alerts=$("$ARMORCTL" logs --socket "$STREAM_SOCK" --namespace "$NAMESPACE" --type alert 2>&1) ||
	fail "armorctl logs could not read armor-tracer's stream: $alerts"
indent <<<"${alerts:-(no alerts)}"
echo
for i in "${!names[@]}"; do
	if arrived "${tests[i]}"; then
		info "✓ ${names[i]}: alert received"
	elif wants "${classes[i]}"; then
		info "✗ ${names[i]}: no alert within ${ALERT_WAIT}s"
		unexpected+=("no alert for ${names[i]} within ${ALERT_WAIT}s (what armor-tracer read from the kernel: nri_armor_tracer_events_total in its metrics above; its log: $DEMO/armor-tracer.log)")
	else
		info "– ${names[i]}: no alert — ${classes[i]} is audit only here and this armor-tracer runs without telemetry"
	fi
done
first=$(logs_json | sed -n 1p) # sed reads it all: no SIGPIPE under pipefail
if [ -n "$first" ]; then
	echo
	info "The first alert as armor-tracer streams it (KubeArmor's JSON):"
	jq . <<<"$first" | indent
fi

step "Metrics"
info "nri-armor (http://$armor_addr/metrics):"
http_get "http://$armor_addr/metrics" |
	grep -E '^nri_armor_(nri_events_total|containers_enforced|policy_sets_loaded|kernel_rule_entries|policy_files_rejected_total)' |
	awk '$NF != 0' | indent
info "armor-tracer (http://$tracer_addr/metrics):"
http_get "http://$tracer_addr/metrics" |
	grep -E '^nri_armor_tracer_(alerts_total|events_total|events_lost_total|rate_limited_total|containers_watched)' |
	indent

if ((${#unexpected[@]})); then
	echo
	echo "demo: these did not go as expected:" >&2
	printf '  %s\n' "${unexpected[@]}" >&2
	status=1
fi
