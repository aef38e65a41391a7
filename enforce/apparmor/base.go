package apparmor

import "strings"

// base writes what every profile keeps, equal in effect to the default
// profile containerd and Docker give a container (docs/apparmor.md): a pod
// keeps working, and stops cleanly.
//
//   - Signals: the container's processes may signal, and trace (as the
//     other LSMs and yama allow), each other and the processes of other
//     containers nri-armor confines — as under the runtime's profile,
//     which every container shares: in a pod that shares its process
//     namespace a sidecar may signal the main container. Only unconfined
//     processes and the OCI runtimes (runc, crun: their profiles where the
//     distribution ships them) may signal them besides.
//   - No mount (umount stays allowed, as in the runtime's profile).
//   - /proc: writes only to the processes' own files (/proc/<pid>/…) and
//     to the IPC sysctls of the container's namespace (/proc/sys/kernel/
//     shm*); /proc/sysrq-trigger and /proc/kcore not at all.
//   - /sys: no writes outside the cgroup filesystem; firmware, powercap
//     and the LSMs' files not at all.
//
// The deny rules here are quiet (no audit), as the runtime's are.
func (c *compiler) base() {
	peers := []string{quoted(escape(NamePrefix) + "*")}
	if !strings.HasPrefix(c.name, NamePrefix) {
		peers = append(peers, quoted(c.name))
	}
	c.comment("the container runtime's default profile, in effect")
	c.add(0, "signal (receive) peer=unconfined,")
	c.add(0, "signal (receive) peer=runc,")
	c.add(0, "signal (receive) peer=crun,")
	for _, p := range peers {
		c.add(0, "signal (send,receive) peer=%s,", p)
		c.add(0, "ptrace (trace,tracedby,read,readby) peer=%s,", p)
	}
	c.add(0, "umount,")
	c.add(0, "deny mount,")
	// /proc: a top-level name that is no process's (pids start with 1-9)
	// and not "sys"; below /proc/sys, anything but kernel/shm*.
	c.add(0, `deny "/proc/*" w,`)
	c.add(0, `deny "/proc/{[^1-9s/]*,s,s[^y/]*,sy,sy[^s/]*,sys?*}/**" w,`)
	c.add(0, `deny "/proc/sys/{[^k/]*,k,k[^e/]*,ke,ke[^r/]*,ker,ker[^n/]*,kern,kern[^e/]*,kerne,kerne[^l/]*,kernel?*}/**" w,`)
	c.add(0, `deny "/proc/sys/kernel/{[^s/]*,s,s[^h/]*,sh,sh[^m/]*}{,/**}" w,`)
	c.add(0, `deny "/proc/{sysrq-trigger,kcore}" rwklx,`)
	// /sys: a top-level name other than "fs"; below /sys/fs, other than
	// cgroup (the runtime's profile allows every /sys/fs/cgr* name).
	c.add(0, `deny "/sys/{[^f/]*,f,f[^s/]*,fs?*}/**" wklx,`)
	c.add(0, `deny "/sys/fs/{[^c/]*,c,c[^g/]*,cg,cg[^r/]*}/**" wklx,`)
	c.add(0, `deny "/sys/{firmware,devices/virtual/powercap,kernel/security}/**" rwklx,`)
}
