# AppArmor profile written by nri-armor (enforce/apparmor) for rule set sha256:b990756b26978421fcc5a9442a571291d92d3c6dac624010d252934385b09867.
# Each rule's line names its rule id (armorctl explain shows the rules).
profile "nri-armor.shop.web.0123456789abcdef" flags=(attach_disconnected,mediate_deleted) {
  # the container runtime's default profile, in effect
  signal (receive) peer=unconfined,
  signal (receive) peer=runc,
  signal (receive) peer=crun,
  signal (send,receive) peer="nri-armor.*",
  ptrace (trace,tracedby,read,readby) peer="nri-armor.*",
  umount,
  deny mount,
  deny "/proc/*" w,
  deny "/proc/{[^1-9s/]*,s,s[^y/]*,sy,sy[^s/]*,sys?*}/**" w,
  deny "/proc/sys/{[^k/]*,k,k[^e/]*,ke,ke[^r/]*,ker,ker[^n/]*,kern,kern[^e/]*,kerne,kerne[^l/]*,kernel?*}/**" w,
  deny "/proc/sys/kernel/{[^s/]*,s,s[^h/]*,sh,sh[^m/]*}{,/**}" w,
  deny "/proc/{sysrq-trigger,kcore}" rwklx,
  deny "/sys/{[^f/]*,f,f[^s/]*,fs?*}/**" wklx,
  deny "/sys/fs/{[^c/]*,c,c[^g/]*,cg,cg[^r/]*}/**" wklx,
  deny "/sys/{firmware,devices/virtual/powercap,kernel/security}/**" rwklx,
  # process and file rules
  file,
  audit deny "/usr/bin/apt{,/}" mx,  # rule 2
  audit "/etc/shadow{,/}" rwl,  # rule 3
  "/etc/shadow{,/}" mk,  # rule 3
  audit "/var/log/**/*.{log,txt}" rwl,  # rule 4
  "/var/log/**/*.{log,txt}" mk,  # rule 4
  audit "/var/log/**/*.{log,txt}/" rwl,  # rule 4
  "/var/log/**/*.{log,txt}/" mk,  # rule 4
  audit deny "/etc{,/**}" wl,  # rule 5
  audit deny "/bin{,/}" wl,  # rule 6
  audit deny "/bin/sh{,/}" wl,  # rule 7
  audit deny other "/home/app/.ssh/id_ed25519{,/}" rwl,  # rule 8
  # network rules
  # the families no rule covers
  network unix, network ax25, network ipx, network appletalk, network netrom, network bridge, network atmpvc, network x25,
  network rose, network netbeui, network security, network key, network netlink, network ash, network econet, network atmsvc,
  network rds, network sna, network irda, network pppox, network wanpipe, network llc, network ib, network mpls,
  network can, network tipc, network bluetooth, network iucv, network rxrpc, network isdn, network phonet, network ieee802154,
  network caif, network alg, network nfc, network vsock, network kcm, network qipcrtr, network smc, network xdp,
  network mctp,
  network inet stream,  # rule 9
  network inet6 stream,  # rule 9
  network inet dgram,  # rule 10
  network inet6 dgram,  # rule 10
  audit deny network inet raw,  # rule 11
  audit deny network inet6 raw,  # rule 11
  audit deny network packet raw,  # rule 11
  audit deny network packet packet,  # rule 11
  # capabilities rules
  capability,
  audit deny capability net_raw,  # rule 12
}

# Unenforced:
#   rule 1 (execname curl fromSource=/bin/sh), partial false: AppArmor cannot tell which program acts (fromSource): exec transitions, the only way to, are refused under no_new_privs; not applied, armor-tracer reports what it would block or audit
#   rule 2 (path /usr/bin/apt), partial true: AppArmor checks the program execve names, under the caller's profile: this program run as a script's interpreter (#!), or run by the runtime itself (the container's command, crictl/kubectl exec), is not refused
#   rule 9 (protocol tcp), partial true: allowed by socket type only (AppArmor mediates a socket's family and type, not its protocol): not on raw sockets (SOCK_RAW with IPPROTO_TCP or IPPROTO_RAW); the Block posture does not hold for every stream socket, SCTP's one-to-one ones too (allowed by socket type)
#   rule 10 (protocol udp), partial true: allowed by socket type only (AppArmor mediates a socket's family and type, not its protocol): not on raw sockets (SOCK_RAW with IPPROTO_UDP or IPPROTO_RAW); the Block posture does not hold for every datagram socket, ICMP's datagram (ping) ones too (allowed by socket type)
# Unlogged: []
