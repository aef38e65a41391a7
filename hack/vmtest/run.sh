#!/usr/bin/env bash
# hack/vmtest/run.sh: run statically linked test binaries as root inside a
# QEMU VM (software emulation) booting a stock Debian kernel with BPF-LSM and
# AppArmor active.
#
# Usage:
#   run.sh [OPTIONS] BINARY [ARGS...]
#   run.sh [OPTIONS] --run 'BINARY [ARGS...]' [--run 'BINARY [ARGS...]' ...]
#
#   The first form runs one binary with its arguments passed through exactly.
#   Each --run runs one more binary; its string is split on whitespace (no
#   quoting: use the first form for an argument that holds a space). Both forms
#   may be mixed: the --run binaries run first, in order, then the trailing
#   BINARY. Every binary runs, even after one fails.
#
#   Options:
#     --timeout SECONDS   hard limit for the whole VM run (default 600)
#     --smp N             virtual CPUs (default 2)
#     --mem MB            memory (default 2048)
#     --icount            count instructions: the guest's clock advances 1 ns
#                         per guest instruction (qemu -icount shift=0), so a
#                         benchmark's times are instruction counts, whatever
#                         else the host does (the guest's own background work
#                         still moves a loop's figure by a few percent)
#     --env NAME=VALUE    set a variable for the binaries (repeatable)
#     --kernel PATH       boot this kernel (bzImage, or an ELF vmlinux with a PVH
#                         note) instead of hack/vmtest/fetch-kernel.sh's (its
#                         uncompressed vmlinux when there is one, else vmlinuz)
#     --append ARGS       more kernel command-line arguments
#     --preempt MODE      boot with preempt=MODE (full, voluntary or none;
#                         Debian's kernel has CONFIG_PREEMPT_DYNAMIC and
#                         boots voluntary): with full, kernel code — BPF
#                         programs too — may be preempted almost anywhere
#     --qemu ARGS         more qemu arguments, split on whitespace (repeatable)
#     --quiet-console     show only the binaries' output, not the kernel's
#                         (the VM is always booted with `quiet`; this adds
#                         loglevel=1)
#     --rootfs IMAGE      switch root into this ext4 image (hack/vmtest/rootfs.sh
#                         builds a Debian one) before the binaries run; see below
#     --files DIR         copy DIR's contents into the VM at /vmtest/files
#                         (data, scripts, or binaries for the rootfs's libc:
#                         not checked for being static)
#     --console-log FILE  where the copy of the console goes (default
#                         .cache/vmtest/console.log; VMs that run at the same
#                         time each need their own)
#
# Examples:
#   CGO_ENABLED=0 go test -c -tags vmtest -o /tmp/smoke.test ./hack/vmtest/smoke
#   hack/vmtest/run.sh /tmp/smoke.test -test.v
#   hack/vmtest/run.sh --run '/tmp/a.test -test.v' --run '/tmp/b.test -test.run TestX'
#
# Inside the VM, /init mounts proc, sysfs, devtmpfs, devpts, securityfs
# (/sys/kernel/security), bpffs (/sys/fs/bpf), cgroup2 (/sys/fs/cgroup),
# tracefs (/sys/kernel/tracing), debugfs (/sys/kernel/debug) and tmpfs on /tmp
# and /run, brings up lo, sets NRI_ARMOR_VM=1 (see internal/vmtest), then runs
# each binary as root in its own empty working directory /tmp/vmtest/<N>-<name>
# with stdout and stderr on the console. At the end it prints one marker line
# carrying a per-run nonce and the combined status (0, or the first non-zero
# exit status) and powers off.
#
# With --rootfs the initramfs also holds the kernel's virtio, ext4 and overlay
# modules (from the same kernel package, in modules.dep order: the image's
# containers need overlayfs, and Debian builds these as modules). /init loads
# them, mounts the image (a virtio disk with snapshot=on: the VM's writes
# never reach the file), copies /vmtest into a tmpfs there and switches root;
# everything above then happens in the image, with its programs first on PATH
# and busybox's applets (/vmtest/applets) after them. A failure on the way
# prints the marker with status 125.
#
# This script streams the VM's console to stdout as it comes (a copy of the
# last run is left in --console-log's file) and exits with:
#   the combined status  when the marker appeared (0 = every binary passed;
#                        125 = the VM's set-up failed: a mount, or with
#                        --rootfs a module or the image, before any binary)
#   2                    usage error or a binary that cannot run in the VM
#   3                    the VM stopped without the marker (kernel panic, crash)
#   124                  the hard timeout expired (qemu was killed)
#
# Missing Debian packages (qemu-system-x86, busybox-static, cpio) are installed
# with apt-get, which needs root. Without --rootfs no kernel modules are used:
# everything that layer needs is built into Debian's kernel.
set -euo pipefail
export LC_ALL=C

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cache=${VMTEST_CACHE:-$root/.cache/vmtest}

log() { echo "vmtest: $*" >&2; }
die() {
	local rc=$1
	shift
	echo "vmtest: error: $*" >&2
	exit "$rc"
}
usage() {
	sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0" >&2
	exit 2
}

timeout_s=600 smp=2 mem=2048 kernel="" extra_append="" quiet_console=0 rootfs="" files="" icount=0 preempt=""
console_copy=$cache/console.log
runs=() envs=() qemu_extra=()
while (($#)); do
	case $1 in
	--timeout) timeout_s=${2:?--timeout needs SECONDS}; shift 2 ;;
	--smp) smp=${2:?--smp needs N}; shift 2 ;;
	--mem) mem=${2:?--mem needs MB}; shift 2 ;;
	--icount) icount=1; shift ;;
	--env) envs+=("${2:?--env needs NAME=VALUE}"); shift 2 ;;
	--kernel) kernel=${2:?--kernel needs PATH}; shift 2 ;;
	--append) extra_append+=" ${2:?--append needs ARGS}"; shift 2 ;;
	--preempt) preempt=${2:?--preempt needs MODE}; shift 2 ;;
	--run) runs+=("${2:?--run needs 'BINARY ARGS'}"); shift 2 ;;
	--qemu) read -r -a more <<<"${2:?--qemu needs ARGS}"; qemu_extra+=("${more[@]}"); shift 2 ;;
	--quiet-console) quiet_console=1; shift ;;
	--rootfs) rootfs=${2:?--rootfs needs IMAGE}; shift 2 ;;
	--files) files=${2:?--files needs DIR}; shift 2 ;;
	--console-log) console_copy=${2:?--console-log needs FILE}; shift 2 ;;
	-h | --help) usage ;;
	--) shift; break ;;
	-*) echo "vmtest: unknown option $1" >&2; usage ;;
	*) break ;;
	esac
done
for v in "$timeout_s" "$smp" "$mem"; do
	[[ $v =~ ^[1-9][0-9]*$ ]] || die 2 "--timeout, --smp and --mem take positive integers, got '$v'"
done
case $preempt in
"" | full | voluntary | none) ;;
*) die 2 "--preempt takes full, voluntary or none, got '$preempt'" ;;
esac
for e in "${envs[@]}"; do
	[[ $e =~ ^[A-Za-z_][A-Za-z0-9_]*= ]] || die 2 "--env takes NAME=VALUE, got '$e'"
done

# Each test is one array of words: binary then arguments. Stored as one
# NUL-free line per word in tests[i] ("\n"-joined), which is enough because
# arguments cannot hold NULs and a newline inside one is rejected below.
tests=()
for r in "${runs[@]}"; do
	read -r -a words <<<"$r"
	((${#words[@]})) || die 2 "--run '' names no binary"
	tests+=("$(printf '%s\n' "${words[@]}")")
done
if (($#)); then
	for a in "$@"; do
		[[ $a != *$'\n'* ]] || die 2 "an argument holds a newline"
	done
	tests+=("$(printf '%s\n' "$@")")
fi
((${#tests[@]})) || usage

# --- host packages -----------------------------------------------------------
need=()
pkgs=(qemu-system-x86 busybox-static cpio)
# depmod and modprobe order the modules for --rootfs.
[[ -n $rootfs ]] && pkgs+=(kmod)
for p in "${pkgs[@]}"; do
	[[ $(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null) == installed ]] || need+=("$p")
done
if ((${#need[@]})); then
	((EUID == 0)) || die 2 "missing Debian packages ${need[*]}; run as root or apt-get install them"
	log "installing ${need[*]} with apt-get ..."
	export DEBIAN_FRONTEND=noninteractive
	aptlog=$(mktemp)
	start=$SECONDS
	if ! apt-get install -y -q --no-install-recommends "${need[@]}" >"$aptlog" 2>&1; then
		# A fresh machine may have empty or stale package lists.
		log "apt-get install failed; running apt-get update and retrying"
		if ! { apt-get update -q && apt-get install -y -q --no-install-recommends "${need[@]}"; } >"$aptlog" 2>&1; then
			cat "$aptlog" >&2
			rm -f "$aptlog"
			die 2 "apt-get install ${need[*]} failed"
		fi
	fi
	rm -f "$aptlog"
	log "installed ${need[*]} in $((SECONDS - start)) s"
fi
busybox=/bin/busybox
[[ -x $busybox ]] || die 2 "$busybox missing although busybox-static is installed"

# --- kernel ------------------------------------------------------------------
if [[ -z $kernel ]]; then
	# The uncompressed vmlinux when fetch-kernel.sh could extract it: QEMU
	# enters it through PVH, without the xz decompression that takes ~2.5 s
	# under TCG.
	kernel=$("$here/fetch-kernel.sh" --boot-image) || die 2 "fetch-kernel.sh failed"
fi
[[ -f $kernel ]] || die 2 "kernel $kernel not found"
if [[ -n $rootfs ]]; then
	[[ -f $rootfs ]] || die 2 "--rootfs $rootfs not found"
	rootfs=$(realpath "$rootfs")
	# The modules of the booted kernel: fetch-kernel.sh's tree holds
	# boot/vmlinu[xz]-RELEASE and lib/modules/RELEASE side by side.
	release=$(basename "$kernel" | sed 's/^vmlinu[xz]-//')
	kroot=$(cd "$(dirname "$kernel")/.." && pwd)
	[[ -d $kroot/lib/modules/$release/kernel ]] ||
		die 2 "--rootfs needs the kernel's modules; none at $kroot/lib/modules/$release (boot fetch-kernel.sh's kernel)"
fi
[[ -z $files || -d $files ]] || die 2 "--files $files is not a directory"

# --- initramfs ---------------------------------------------------------------
mkdir -p "$cache"
work=$(mktemp -d "$cache/run.XXXXXX")
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
	# timeout runs qemu in a process group of its own: stop it explicitly
	# when this script is interrupted.
	if [[ -s $work/timeout.pid && ! -s $work/qemu.rc ]]; then
		kill -TERM "$(cat "$work/timeout.pid")" 2>/dev/null || true
		wait || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
stage=$work/root
mkdir -p "$stage"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,tmp,run,root,etc,vmtest/bin}
cp "$busybox" "$stage/bin/busybox"
# The kernel opens /dev/console for init before anything is mounted; without
# the node (mknod needs root) /init reopens it after mounting devtmpfs.
mknod "$stage/dev/console" c 5 1 2>/dev/null || true
echo 'root:x:0:0:root:/root:/bin/sh' >"$stage/etc/passwd"
echo 'root:x:0:' >"$stage/etc/group"
echo 'nri-armor-vm' >"$stage/etc/hostname"
# One dynamically linked program with its loader and libc, for the tests of
# `ld.so /blocked/binary` (the test binaries themselves are static).
mkdir -p "$stage/lib64" "$stage/lib/x86_64-linux-gnu" "$stage/vmtest/dyn"
cp -L /lib64/ld-linux-x86-64.so.2 "$stage/lib64/"
cp -L /lib/x86_64-linux-gnu/libc.so.6 "$stage/lib/x86_64-linux-gnu/"
cp /usr/bin/true "$stage/vmtest/dyn/true"
if [[ -n $files ]]; then
	mkdir -p "$stage/vmtest/files"
	cp -a "$files/." "$stage/vmtest/files/"
fi
# modules_for_rootfs copies the modules that mounting the root image needs
# into /vmtest/modules with their load order in /vmtest/modules/order.
modules_for_rootfs() {
	local dir=$kroot/lib/modules/$release line n=0 ko
	# fetch-kernel.sh makes modules.dep (the .deb carries none).
	[[ -s $dir/modules.dep ]] || die 2 "no $dir/modules.dep (fetch-kernel.sh makes it when depmod is installed)"
	mkdir -p "$stage/vmtest/modules"
	# crc32c is not a dependency of ext4 in modules.dep (ext4 asks the
	# crypto API for it at mount time, which would need modprobe).
	while read -r line; do
		[[ $line == insmod\ * ]] || continue
		ko=$(awk '{print $2}' <<<"$line")
		grep -qsFx "$(basename "$ko")" "$stage/vmtest/modules/order" && continue
		n=$((n + 1))
		cp "$ko" "$stage/vmtest/modules/"
		basename "$ko" >>"$stage/vmtest/modules/order"
	done < <(modprobe -d "$kroot" -S "$release" --show-depends -a virtio_pci virtio_blk crc32c_generic ext4 overlay)
	((n)) || die 2 "modprobe --show-depends found no modules for --rootfs in $dir"
}
[[ -n $rootfs ]] && modules_for_rootfs

# is_static_elf fails the run unless $1 is an x86-64 ELF executable without a
# program interpreter (PT_INTERP): the VM has no dynamic loader or libc.
is_static_elf() {
	local f=$1 phoff phentsize phnum i
	rd() { od -An -v -t "u$2" -j "$1" -N "$2" "$f" | tr -d ' '; } # offset size
	[[ $(od -An -c -N4 "$f" | tr -d ' ') == 177ELF ]] || die 2 "$f is not an ELF binary"
	[[ $(rd 4 1) == 2 && $(rd 18 2) == 62 ]] || die 2 "$f is not an x86-64 (ELF64) binary"
	phoff=$(rd 32 8) phentsize=$(rd 54 2) phnum=$(rd 56 2)
	for ((i = 0; i < phnum; i++)); do
		if [[ $(rd $((phoff + i * phentsize)) 4) == 3 ]]; then
			die 2 "$f is dynamically linked (has an ELF interpreter); build it with CGO_ENABLED=0"
		fi
	done
}

# shq quotes a word for a POSIX shell.
shq() { printf "'%s'" "${1//\'/\'\\\'\'}"; }

nonce=$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
marker="NRI_ARMOR_VMTEST_DONE $nonce"
plan=$stage/vmtest/plan.sh
{
	echo "# generated by hack/vmtest/run.sh"
	for e in "${envs[@]}"; do
		echo "export $(shq "$e")"
	done
} >"$plan"
i=0
declare -A copied=()
for t in "${tests[@]}"; do
	mapfile -t words <<<"$t"
	bin=${words[0]}
	[[ -f $bin ]] || die 2 "test binary $bin not found"
	i=$((i + 1))
	name=$(printf '%02d-%s' "$i" "$(basename "$bin")")
	# A binary named by several runs is copied once.
	key=$(realpath "$bin")
	# Each binary keeps its base name (argv[0]), in a directory of its own.
	if [[ -z ${copied[$key]:-} ]]; then
		is_static_elf "$bin"
		mkdir -p "$stage/vmtest/bin/$i"
		cp "$bin" "$stage/vmtest/bin/$i/"
		chmod 0755 "$stage/vmtest/bin/$i/$(basename "$bin")"
		copied[$key]=$i/$(basename "$bin")
	fi
	line="run_test $(shq "$name") $(shq "${copied[$key]}")"
	for w in "${words[@]:1}"; do
		line+=" $(shq "$w")"
	done
	echo "$line" >>"$plan"
done

cat >"$stage/init" <<EOF
#!/bin/busybox sh
# /init of the nri-armor VM test layer, generated by hack/vmtest/run.sh.
/bin/busybox --install -s
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root TMPDIR=/tmp NRI_ARMOR_VM=1
umask 022
marker='$marker'
mount -t devtmpfs devtmpfs /dev 2>/dev/null
[ -t 1 ] || exec </dev/console >/dev/console 2>&1
echo # the firmware's last line has no newline
EOF
body=$stage/init
if [[ -n $rootfs ]]; then
	# Stage 1 (/init): modules, mount, switch root. Stage 2
	# (/vmtest/init2 in the image): the rest, as without --rootfs.
	cat >>"$stage/init" <<'EOF'
fail() {
	echo "vmtest: $*"
	echo "$marker rc=125"
	sync
	poweroff -f
	sleep 5
}
for m in $(cat /vmtest/modules/order); do
	insmod "/vmtest/modules/$m" || fail "insmod $m failed"
done
# devtmpfs creates the node when virtio_blk has probed the disk.
i=0
while [ ! -b /dev/vda ] && [ "$i" -lt 100 ]; do
	sleep 0.1
	i=$((i + 1))
done
[ -b /dev/vda ] || fail "no /dev/vda: the --rootfs disk did not appear"
mkdir -p /newroot
mount -t ext4 /dev/vda /newroot || fail "cannot mount the --rootfs image (/dev/vda)"
mkdir -p /newroot/vmtest
mount -t tmpfs -o mode=0755 tmpfs /newroot/vmtest || fail "cannot mount a tmpfs on /vmtest in the root image"
cp -a /vmtest/. /newroot/vmtest/ || fail "cannot copy /vmtest into the root image"
cp /bin/busybox /newroot/vmtest/busybox || fail "cannot copy busybox into the root image"
echo "vmtest: switching root to the --rootfs image"
exec switch_root /newroot /vmtest/busybox sh /vmtest/init2
fail "switch_root failed"
EOF
	body=$stage/vmtest/init2
	cat >"$body" <<EOF
# Stage 2 of the nri-armor VM init, in the --rootfs image (hack/vmtest/run.sh).
# The image's programs first; busybox's applets (poweroff, …) fill the gaps.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/vmtest/applets
marker='$marker'
mkdir -p /vmtest/applets
/vmtest/busybox --install -s /vmtest/applets
# busybox's switch_root leaves the first devtmpfs behind: mount one here.
mount -t devtmpfs devtmpfs /dev
EOF
fi
cat >>"$body" <<'EOF'
setup_rc=0
mnt() { # mnt TYPE DIR [OPTIONS]
	mkdir -p "$2"
	if ! mount -t "$1" ${3:+-o "$3"} "$1" "$2"; then
		echo "vmtest: cannot mount $1 on $2"
		setup_rc=125
	fi
}
mnt proc /proc
mnt sysfs /sys
mnt devpts /dev/pts
mnt tmpfs /dev/shm mode=1777
mnt securityfs /sys/kernel/security
mnt bpf /sys/fs/bpf mode=0700
mnt cgroup2 /sys/fs/cgroup nsdelegate
mnt tracefs /sys/kernel/tracing
mnt debugfs /sys/kernel/debug
mnt tmpfs /tmp mode=1777
mnt tmpfs /run mode=0755
ln -sf /proc/self/fd /dev/fd
hostname -F /etc/hostname
ip link set lo up || setup_rc=125
ulimit -l unlimited

echo "vmtest: kernel $(uname -r), lsm $(cat /sys/kernel/security/lsm), preempt $(cat /sys/kernel/debug/sched/preempt 2>/dev/null || echo '?'), $(nproc) cpus, uptime $(cut -d' ' -f1 /proc/uptime)s"
rc=$setup_rc failed=0 total=0
run_test() { # run_test NAME BINARY ARGS...
	name=$1 bin=$2
	shift 2
	total=$((total + 1))
	dir=/tmp/vmtest/$name
	mkdir -p "$dir"
	echo "vmtest: === $name $*"
	start=$(cut -d' ' -f1 /proc/uptime)
	(cd "$dir" && exec "/vmtest/bin/$bin" "$@")
	st=$?
	end=$(cut -d' ' -f1 /proc/uptime)
	echo "vmtest: === $name exit status $st ($(awk "BEGIN{printf \"%.1f\", $end-$start}")s)"
	if [ "$st" -ne 0 ]; then
		failed=$((failed + 1))
		[ "$rc" -eq 0 ] && rc=$st
	fi
}
if [ "$setup_rc" -eq 0 ]; then
	. /vmtest/plan.sh
else
	echo "vmtest: setup failed; no test ran"
fi
echo "vmtest: $failed of $total binaries failed, uptime $(cut -d' ' -f1 /proc/uptime)s"
echo "$marker rc=$rc"
sync
sleep 0.2
poweroff -f
# Not reached; should poweroff fail, init exiting panics the kernel and
# panic=-1 with qemu's -no-reboot ends the VM.
sleep 5
EOF
chmod 0755 "$stage/init"

initrd=$work/initrd.cpio
(cd "$stage" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc -R 0:0 --quiet) >"$initrd" ||
	die 2 "building the initramfs failed"
log "initramfs $(($(stat -c %s "$initrd") / 1024)) KiB with ${#tests[@]} binaries; kernel $(basename "$kernel")"

# --- boot --------------------------------------------------------------------
qemu_drive=()
# snapshot=on: the VM's writes go to a temporary file, the image stays as
# cached.
[[ -n $rootfs ]] && qemu_drive=(-drive "file=$rootfs,if=virtio,format=raw,snapshot=on")
# softlockup_panic: a CPU stuck in the kernel panics the VM (with its stack)
# after about 20 s, instead of the run waiting out --timeout.
append="console=ttyS0 lsm=landlock,lockdown,yama,apparmor,bpf panic=-1 softlockup_panic=1 quiet"
((quiet_console)) && append+=" loglevel=1"
[[ -n $preempt ]] && append+=" preempt=$preempt"
append+=$extra_append
consolelog=$work/console.log
# Instruction counting needs one TCG thread for all the vCPUs.
accel=(-accel tcg,thread=multi)
((icount)) && accel=(-accel tcg,thread=single -icount shift=0,sleep=off,align=off)
log "booting qemu (tcg, ${smp} cpus, ${mem} MiB$( ((icount)) && echo ", icount"), timeout ${timeout_s}s)"
start=$SECONDS
# The console is streamed as it comes: qemu writes the serial port to stdout,
# sed drops the tty's carriage returns and the firmware's terminal resets
# (ESC c, "no line wrap", "clear screen"), tee keeps a copy for the marker.
set +e
{
	timeout --kill-after=10 "$timeout_s" \
		qemu-system-x86_64 "${accel[@]}" -nographic -no-reboot -nic none \
		-cpu max -m "$mem" -smp "$smp" \
		-kernel "$kernel" -initrd "$initrd" -append "$append" \
		"${qemu_drive[@]}" "${qemu_extra[@]}" \
		</dev/null 2>&1 &
	echo "$!" >"$work/timeout.pid"
	wait "$!"
	echo "$?" >"$work/qemu.rc"
} | sed -u -e 's/\r$//' -e 's/\x1bc//g; s/\x1b\[?7l//g; s/\x1b\[2J//g; s/\x1b\[0m//g' | tee "$consolelog" &
# In the background so that a signal to this script runs its traps at once
# (bash defers them while a foreground pipeline runs).
wait "$!"
set -e
qrc=$(cat "$work/qemu.rc" 2>/dev/null || echo 255)
elapsed=$((SECONDS - start))
cp "$consolelog" "$console_copy"
consolelog=$console_copy

# The marker may share its line with a kernel message; match it anywhere.
result=$(grep -ao "$marker rc=[0-9]*" "$consolelog" | tail -n1 | sed 's/.*rc=//' || true)
if [[ $qrc == 124 ]] || [[ $qrc == 137 && $elapsed -ge $timeout_s ]]; then
	if [[ -n $result ]]; then
		die 124 "timed out: the binaries finished (combined status $result) but the VM did not power off within ${timeout_s}s; qemu was killed (console log: $consolelog)"
	fi
	die 124 "timed out: the VM ran for more than ${timeout_s}s and qemu was killed (console log: $consolelog)"
fi
if [[ -z $result ]]; then
	why="the VM stopped without printing its result marker"
	grep -aq 'Kernel panic' "$consolelog" && why+=" (kernel panic, see above)"
	grep -aq 'soft lockup' "$consolelog" && why+=" (a CPU stuck in the kernel: its stack is above)"
	die 3 "$why; qemu exit status $qrc after ${elapsed}s (console log: $consolelog)"
fi
if ((result == 0)); then
	log "PASS: every binary passed (VM ran ${elapsed}s)"
else
	# CI shows the head and tail of a long log: the failed tests and what
	# they reported go last, where it is seen.
	log "the failed tests, with the last 20 lines each logged from *_test.go (whole log: $consolelog):"
	awk '
		/^=== (RUN|CONT) / { cur = $3 }
		/^[ \t]+[^ ]+_test\.go:[0-9]+:/ { line[cur, n[cur]++ % 20] = $0 }
		/^ *--- FAIL: / { print; t = $3; for (i = (n[t] > 20 ? n[t] - 20 : 0); i < n[t]; i++) print line[t, i % 20] }
		/^panic: / { print }
	' "$consolelog" | head -n 200
	log "FAIL: combined exit status $result (VM ran ${elapsed}s)"
fi
exit "$result"
