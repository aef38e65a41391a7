#!/usr/bin/env bash
# Usage: hack/vmtest/selfcheck.sh SMOKE_TEST_BINARY
#
# Proves that hack/vmtest/run.sh reports what goes wrong inside the VM instead
# of passing: boots the VM four more times and checks run.sh's exit status.
#   1. a failing test (the smoke test's -smoke.fail)  -> exit 1, FAIL in the log
#   2. no /init (rdinit=/nonexistent: kernel panic)    -> exit 3 (no marker)
#   3. a hanging test (-smoke.hang) and a --timeout    -> exit 124
#   4. --rootfs with an image that does not mount     -> exit 125
# Each run's console goes to .cache/vmtest/selfcheck-N.log and is printed
# only when the check fails.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${VMTEST_CACHE:-$(cd "$here/../.." && pwd)/.cache/vmtest}
bin=${1:?usage: selfcheck.sh SMOKE_TEST_BINARY}
mkdir -p "$cache"

# Resolve the kernel once (run.sh would ask apt each time).
kernel=$("$here/fetch-kernel.sh" --boot-image)
failed=0
# check N WANT_STATUS WANT_TEXT DESCRIPTION RUN.SH-ARGS...
check() {
	local n=$1 want=$2 text=$3 what=$4 rc=0 start=$SECONDS
	shift 4
	local out=$cache/selfcheck-$n.log
	"$here/run.sh" --kernel "$kernel" "$@" >"$out" 2>&1 || rc=$?
	last_s=$((SECONDS - start))
	if [[ $rc == "$want" ]] && grep -qa -- "$text" "$out"; then
		echo "vmtest selfcheck: ok   $what: run.sh exit status $rc ($((SECONDS - start))s)"
	else
		echo "vmtest selfcheck: FAIL $what: run.sh exit status $rc, want $want with \"$text\" in its output:"
		sed 's/^/    | /' "$out"
		failed=1
	fi
}

check 1 1 '--- FAIL: TestFailOnRequest' "a failing test in the VM" \
	"$bin" -test.v -test.run '^TestFailOnRequest$' -smoke.fail
check1_s=$last_s
check 2 3 'without printing its result marker' "a kernel panic (no /init)" \
	--append rdinit=/nonexistent "$bin"
# The hang must begin before the timeout: allow twice the first check's whole
# run (boot, test, power-off) and 4 s more, so a slow or busy machine does
# not time out while still booting.
hang_timeout=$((2 * check1_s + 4))
check 3 124 'hanging on request' "a test that hangs past --timeout $hang_timeout" \
	--timeout "$hang_timeout" "$bin" -test.v -test.run '^TestHangOnRequest$' -smoke.hang
# --rootfs: an image that is not ext4 must fail the run, not boot on.
notfs=$cache/selfcheck-notfs.img
head -c 1M /dev/zero >"$notfs"
check 4 125 'cannot mount the --rootfs image' "a --rootfs image that does not mount" \
	--rootfs "$notfs" "$bin" -test.v
rm -f "$notfs"
exit "$failed"
