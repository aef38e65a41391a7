#!/bin/bash
# Resident memory and losses of the real armor-tracer binary while a watched
# container produces events as fast as one core of load can: a process in a
# test cgroup, published as a container with full visibility, opens and
# closes a file in a loop for SECONDS (default 10). Prints the tracer's
# resident memory each second, its peak, and the events it read and lost.
# Target (issue 5): resident memory under 64 MiB, no ring-buffer loss. As root.
#
# Two measures of resident memory: VmRSS counts the ring buffer twice (the
# kernel maps its data pages twice in a row, so that a record that wraps
# reads as one piece, and maps all of them at mmap), Pss counts each page
# once (its share of the page's mappings). Pss is the memory the tracer
# holds: its own (anonymous) memory, its binary, and the ring once.
#
#   hack/bench-tracer-rss.sh [SECONDS [RING_BYTES]]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
ring=${2:-33554432} # the tracer's default telemetryRingBytes
[ "$(id -u)" = 0 ] || { echo "bench-tracer-rss: needs root" >&2; exit 2; }
tmp=$(mktemp -d)
cg2=$(awk '$3 == "cgroup2" {print $2; exit}' /proc/self/mounts)
cg="$cg2/nri-armor-tracer-rss-$$"
pins=/sys/fs/bpf/nri-armor-tracer-rss-$$
tracer_pid="" load_pid=""
cleanup() {
	if [ -n "$load_pid" ]; then kill "$load_pid" 2>/dev/null || true; fi
	if [ -n "$tracer_pid" ]; then
		kill "$tracer_pid" 2>/dev/null || true
		wait "$tracer_pid" 2>/dev/null || true
	fi
	rmdir "$cg" 2>/dev/null || true
	rm -rf "$pins" "$tmp"
}
trap cleanup EXIT
go build -o "$tmp/" ./cmd/armor-tracer
mkdir "$cg"
id=$(stat -c %i "$cg")
mkdir -p "$tmp/state/v1/containers" "$tmp/state/v1/sets"
printf '{"cgroupId":%s,"containerId":"rss","containerName":"load","podName":"load","podNamespace":"bench","visibility":{"process":true,"file":true,"network":true,"capabilities":false},"updated":"%s"}\n' \
	"$id" "$(date -u +%FT%TZ)" >"$tmp/state/v1/containers/$id.json"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$tmp/armor-tracer" -stateDir "$tmp/state" -bpffs "$pins" -telemetryPinPath "$pins/tracer" -telemetryRingBytes "$ring" \
	-metricsAddress "127.0.0.1:$port" -streamAddress "" -stdout=false -logLevel error &
tracer_pid=$!
metric() { curl -s "http://127.0.0.1:$port/metrics" | awk -v m="$1" 'index($0, m) == 1 {s += $NF} END {print s + 0}'; }
for _ in $(seq 50); do metric nri_armor_tracer_containers_watched | grep -q '^1$' && break; sleep 0.2; done
echo "bench-tracer-rss: tracer pid $tracer_pid watching cgroup $id (ring $ring bytes); open+close loop for ${secs}s"
sh -c 'echo $$ > "$1/cgroup.procs"; exec python3 -c "
import os
p = os.path.realpath(\"/etc/hostname\")
while True:
    os.close(os.open(p, os.O_RDONLY))
"' sh "$cg" &
load_pid=$!
pss() { awk '/^Pss:/ {print $2}' "/proc/$tracer_pid/smaps_rollup"; }
peak=0
for s in $(seq "$secs"); do
	sleep 1
	p=$(pss)
	if [ "$p" -gt "$peak" ]; then peak=$p; fi
	echo "  ${s}s: Pss $p kB, VmRSS $(awk '/^VmRSS/ {print $2}' "/proc/$tracer_pid/status") kB"
done
kill "$load_pid"; load_pid=""
sleep 1
echo "bench-tracer-rss: peak Pss $peak kB (VmHWM $(awk '/^VmHWM/ {print $2}' "/proc/$tracer_pid/status") kB, own memory RssAnon $(awk '/^RssAnon/ {print $2}' "/proc/$tracer_pid/status") kB)," \
	"telemetry events read $(metric 'nri_armor_tracer_events_total{source="telemetry"'), lost $(metric 'nri_armor_tracer_events_lost_total{source="telemetry"}')"
