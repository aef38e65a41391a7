#!/usr/bin/env bash
# Usage: hack/vmtest/lanes.sh 'COMMAND' ['COMMAND' ...]   (make vm)
#
# Runs each COMMAND (a shell command line, e.g. `make vmtest k8s-node`) at
# the same time as the others, and fails when any of them fails. make test
# runs its VM steps this way: under software emulation a VM with one
# virtual CPU keeps one host CPU busy, and the machine has two, so one VM
# after another left a CPU idle for most of the run (docs/testing.md).
#
# The first lane's output streams as it comes. The others' goes to
# .cache/vmtest/lane-N.log and is printed whole when the lane ends, so that
# no two VMs' consoles are interleaved. A summary line per lane comes last.
set -euo pipefail

(($#)) || { echo "usage: $0 'COMMAND' ['COMMAND' ...]" >&2; exit 2; }
root=$(cd "$(dirname "$0")/../.." && pwd)
cache=${VMTEST_CACHE:-$root/.cache/vmtest}
mkdir -p "$cache"

cmds=("$@") pids=()
# An interrupted make test stops every lane.
trap 'kill "${pids[@]}" 2>/dev/null; exit 130' INT TERM
for i in "${!cmds[@]}"; do
	n=$((i + 1)) out=""
	if ((n > 1)); then
		out=$cache/lane-$n.log
		echo "lanes: lane $n (${cmds[$i]}) runs beside lane 1; its output, in $out, follows when it ends" >&2
	fi
	# Each lane records its own status and time: the waits below end in
	# lane order, not in the order the lanes end.
	(
		s=0 t=$SECONDS
		if [[ -z $out ]]; then
			bash -c "${cmds[$i]}" || s=$?
		else
			bash -c "${cmds[$i]}" >"$out" 2>&1 || s=$?
		fi
		echo "lanes: lane $n (${cmds[$i]}): exit status $s after $((SECONDS - t)) s" >"$cache/lane-$n.status"
		exit "$s"
	) &
	pids+=("$!")
done

rc=0
for i in "${!pids[@]}"; do
	wait "${pids[$i]}" || rc=1
	((i == 0)) || cat "$cache/lane-$((i + 1)).log"
done
for i in "${!pids[@]}"; do
	cat "$cache/lane-$((i + 1)).status" >&2
done
exit "$rc"
