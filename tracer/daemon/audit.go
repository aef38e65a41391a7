package daemon

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"

	"github.com/nri-armor/nri-armor/tracer"
)

// auditReadLog is the audit netlink multicast group that receives a copy
// of every record of the kernel's audit log (AUDIT_NLGRP_READLOG); joining
// it needs CAP_AUDIT_READ, and the kernel sends to the initial network
// namespace only (OpenAuditLog makes its socket there).
const auditReadLog = 1

// AuditLog reads the kernel's seccomp and AppArmor records from the audit
// netlink multicast group. Unlike the kernel log (dmesg), where audit records are
// printed only while no audit daemon runs and at most 10 per 5 s, the
// group receives every record whether or not auditd runs, as long as the
// kernel's audit backlog does not overflow.
type AuditLog struct {
	fd int
	// Seccomp and AppArmor choose the records read: AUDIT_SECCOMP,
	// AppArmor's AUDIT_AVC.
	Seccomp, AppArmor bool
}

// OpenAuditLog joins the group. procRoot is the host's /proc: when the
// tracer runs in a network namespace of its own (a pod without
// hostNetwork), the socket is made in the host's (that of procRoot's pid
// 1), on a thread that enters it for the call and goes back; a socket
// stays in the namespace it was made in.
func OpenAuditLog(procRoot string) (*AuditLog, error) {
	fd, err := socketInHostNet(procRoot)
	if err != nil {
		return nil, fmt.Errorf("audit netlink socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: auditReadLog}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("joining the audit log's multicast group (needs CAP_AUDIT_READ and the host's network namespace): %w", err)
	}
	// Reads wake up at least every second to notice ctx's end.
	tv := unix.Timeval{Sec: 1}
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return &AuditLog{fd: fd, Seccomp: true, AppArmor: true}, nil
}

// Read sends the records chosen to out until ctx ends; lost counts the
// records the socket's buffer could not hold (ENOBUFS).
func (l *AuditLog) Read(ctx context.Context, out chan<- tracer.AuditRecord, lost func(uint64)) error {
	defer unix.Close(l.fd)
	buf := make([]byte, 1<<16)
	for ctx.Err() == nil {
		n, _, err := unix.Recvfrom(l.fd, buf, 0)
		switch {
		case errors.Is(err, unix.EAGAIN), errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.ENOBUFS):
			lost(1) // at least one
			continue
		case err != nil:
			return fmt.Errorf("audit log: %w", err)
		}
		r, ok := parseAudit(buf[:n], l.Seccomp, l.AppArmor)
		if !ok {
			continue
		}
		select {
		case out <- r:
		case <-ctx.Done():
		}
	}
	return nil
}

// parseAudit reads one datagram of the group: one netlink message whose
// payload is the record's text; seccomp and apparmor choose the records.
func parseAudit(b []byte, seccomp, apparmor bool) (tracer.AuditRecord, bool) {
	if len(b) < unix.NLMSG_HDRLEN {
		return nil, false
	}
	size := int(binary.NativeEndian.Uint32(b[0:4]))
	typ := binary.NativeEndian.Uint16(b[4:6])
	if typ != tracer.AuditTypeSeccomp && typ != tracer.AuditTypeAVC {
		return nil, false // not one of ours: no text to read
	}
	if size < unix.NLMSG_HDRLEN || size > len(b) {
		size = len(b)
	}
	text := b[unix.NLMSG_HDRLEN:size]
	for len(text) > 0 && text[len(text)-1] == 0 {
		text = text[:len(text)-1]
	}
	return tracer.ParseAudit(int(typ), string(text), seccomp, apparmor)
}

// socketInHostNet makes the audit netlink socket in the network namespace
// of procRoot's pid 1 (the host's, with hostPID), on a goroutine of its own
// locked to its thread: should the thread fail to go back to the tracer's
// namespace, it ends with that goroutine instead of serving others.
func socketInHostNet(procRoot string) (int, error) {
	mk := func() (int, error) {
		return unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_AUDIT)
	}
	var host, self unix.Stat_t
	if unix.Stat(procRoot+"/1/ns/net", &host) != nil || unix.Stat("/proc/self/ns/net", &self) != nil || host.Ino == self.Ino {
		return mk()
	}
	type made struct {
		fd  int
		err error
	}
	done := make(chan made, 1)
	go func() {
		runtime.LockOSThread()
		back, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			done <- made{-1, err}
			return
		}
		defer unix.Close(back)
		target, err := unix.Open(procRoot+"/1/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			done <- made{-1, err}
			return
		}
		defer unix.Close(target)
		if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			done <- made{-1, fmt.Errorf("entering the host's network namespace: %w", err)}
			return
		}
		fd, sockErr := mk()
		if err := unix.Setns(back, unix.CLONE_NEWNET); err != nil {
			if fd >= 0 {
				unix.Close(fd)
			}
			done <- made{-1, fmt.Errorf("leaving the host's network namespace: %w", err)} // the thread stays locked, and ends
			return
		}
		runtime.UnlockOSThread()
		done <- made{fd, sockErr}
	}()
	m := <-done
	return m.fd, m.err
}
