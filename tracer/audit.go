package tracer

import (
	"strconv"
	"strings"
	"time"

	"github.com/nri-armor/nri-armor/internal/cgroups"
)

// AuditRecord is a record of the kernel's audit log that the tracer
// reads (tracer/daemon's AuditLog): a *SeccompRecord or an
// *AppArmorRecord.
type AuditRecord interface {
	auditType() int
}

func (*SeccompRecord) auditType() int  { return AuditTypeSeccomp }
func (*AppArmorRecord) auditType() int { return AuditTypeAVC }

// ParseAudit reads the text of an audit record of type typ: a seccomp
// record, or an AppArmor one (AUDIT_AVC: other LSMs' AVC records, such as
// SELinux's, are not AppArmor's and give ok false, as every other type).
// seccomp and apparmor say which of the two the caller wants.
func ParseAudit(typ int, text string, seccomp, apparmor bool) (AuditRecord, bool) {
	switch {
	case typ == AuditTypeSeccomp && seccomp:
		r, ok := ParseSeccomp(text)
		return &r, ok
	case typ == AuditTypeAVC && apparmor:
		r, ok := ParseAppArmor(text)
		return &r, ok
	}
	return nil, false
}

// auditHeader reads the `audit(SECONDS.MILLIS:SERIAL): ` that starts a
// record's text, and returns its time (zero when unreadable) and the rest.
func auditHeader(text string) (t time.Time, rest string, ok bool) {
	rest, found := strings.CutPrefix(strings.TrimSpace(text), "audit(")
	if !found {
		return t, "", false
	}
	stamp, rest, found := strings.Cut(rest, "):")
	if !found {
		return t, "", false
	}
	if sec, _, _ := strings.Cut(stamp, ":"); sec != "" {
		if s, frac, _ := strings.Cut(sec, "."); s != "" {
			secs, err1 := strconv.ParseInt(s, 10, 64)
			ms, err2 := strconv.ParseInt(frac, 10, 64)
			if err1 == nil && err2 == nil {
				t = time.Unix(secs, ms*int64(time.Millisecond))
			}
		}
	}
	return t, rest, true
}

// fields splits an audit record's text at spaces outside double quotes.
func fields(s string) []string {
	var out []string
	start, quoted := -1, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"':
			quoted = !quoted
			if start < 0 {
				start = i
			}
		case c == ' ' && !quoted:
			if start >= 0 {
				out = append(out, s[start:i])
				start = -1
			}
		default:
			if start < 0 {
				start = i
			}
		}
	}
	if start >= 0 {
		out = append(out, s[start:])
	}
	return out
}

// auditString decodes a string field as the kernel writes it
// (audit_log_untrustedstring): between double quotes, as it is — no
// escapes: a backslash is itself — or, when it holds a double quote, a
// byte below '!' (a space, a control character) or above '~', as hex
// digits without quotes.
func auditString(v string) string {
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		return v[1 : len(v)-1]
	}
	if len(v)%2 == 0 {
		b := make([]byte, 0, len(v)/2)
		for i := 0; i+1 < len(v); i += 2 {
			n, err := strconv.ParseUint(v[i:i+2], 16, 8)
			if err != nil {
				return v
			}
			b = append(b, byte(n))
		}
		return string(b)
	}
	return v
}

// auditRetry is how long a record whose process the tracer cannot place
// waits for the telemetry events that may place it: the telemetry reader
// leaves a lone event unread up to its PollInterval (100 ms), and the two
// inputs are read independently. maxAuditPending bounds those waiting.
const (
	auditRetry      = time.Second
	maxAuditPending = 4096
)

type pendingAudit struct {
	r  AuditRecord
	at time.Time
}

// Audit handles one record of the kernel's audit log. The record names
// its process by pid: the cgroup comes from /proc while the process is
// there, else from the process table (its last exec, fork or exit event).
// A record neither can place yet waits auditRetry once (settleAudit) for
// telemetry still to be read, then is counted unattributed.
func (t *Tracer) Audit(r AuditRecord) {
	if !t.placeAudit(r, false) && len(t.auditPending) < maxAuditPending {
		t.auditPending = append(t.auditPending, pendingAudit{r, t.now()})
	}
}

// placeAudit handles r when its process's cgroup is known, or when last;
// false when it was not handled.
func (t *Tracer) placeAudit(r AuditRecord, last bool) bool {
	var pid int
	switch r := r.(type) {
	case *SeccompRecord:
		pid = r.PID
	case *AppArmorRecord:
		pid = r.PID
	}
	cg, err := cgroups.IDOfPID(t.cfg.ProcRoot, t.cgroup2(), pid)
	if err != nil {
		cg = t.procs.cgroupOf(uint32(pid))
	}
	if cg == 0 && !last {
		return false
	}
	switch r := r.(type) {
	case *SeccompRecord:
		t.Seccomp(r, cg)
	case *AppArmorRecord:
		t.AppArmor(r, cg)
	}
	return true
}

// settleAudit handles the records that waited auditRetry (all when all),
// and says when the next one is due (zero when none waits).
func (t *Tracer) settleAudit(all bool) time.Time {
	if len(t.auditPending) == 0 {
		return time.Time{}
	}
	now := t.now()
	n := 0
	for _, p := range t.auditPending {
		if all || !now.Before(p.at.Add(auditRetry)) {
			t.placeAudit(p.r, true)
			continue
		}
		t.auditPending[n] = p
		n++
	}
	clear(t.auditPending[n:])
	t.auditPending = t.auditPending[:n]
	if n == 0 {
		return time.Time{}
	}
	return t.auditPending[0].at.Add(auditRetry)
}
