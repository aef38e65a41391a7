package daemon

import (
	"encoding/binary"
	"testing"

	"github.com/nri-armor/nri-armor/tracer"
)

func nlmsg(typ uint16, text string, pad int) []byte {
	b := make([]byte, 16+len(text)+pad)
	binary.NativeEndian.PutUint32(b[0:4], uint32(16+len(text)))
	binary.NativeEndian.PutUint16(b[4:6], typ)
	copy(b[16:], text)
	return b
}

// TestParseAudit: a datagram of the group gives the record of its type,
// when that type is chosen; SELinux's AVC records and other types none.
func TestParseAudit(t *testing.T) {
	text := `audit(1796494199.776:77): auid=4294967295 uid=0 gid=0 ses=4294967295 pid=7 comm="sct" exe="/sct" sig=0 arch=c000003e syscall=111 compat=0 ip=0x40866e code=0x50000`
	if r, ok := parseAudit(nlmsg(1326, text, 3), true, true); !ok || r.(*tracer.SeccompRecord).PID != 7 || r.(*tracer.SeccompRecord).Syscall != 111 {
		t.Errorf("record: %+v %v", r, ok)
	}
	if _, ok := parseAudit(nlmsg(1326, text, 0), false, true); ok {
		t.Error("a seccomp record read with seccomp records off")
	}
	if _, ok := parseAudit(nlmsg(1300, text, 0), true, true); ok {
		t.Error("a SYSCALL record read as seccomp")
	}
	if _, ok := parseAudit([]byte{1, 2}, true, true); ok {
		t.Error("a short datagram read")
	}
	avc := `audit(1796494200.001:78): apparmor="DENIED" operation="open" class="file" profile="nri-armor.shop.web.0123456789abcdef" name="/etc/shadow" pid=1234 comm="cat" requested_mask="r" denied_mask="r" fsuid=0 ouid=0`
	r, ok := parseAudit(nlmsg(1400, avc, 1), true, true)
	if aa, _ := r.(*tracer.AppArmorRecord); !ok || aa == nil || aa.PID != 1234 || aa.Name != "/etc/shadow" || !aa.Refused() {
		t.Errorf("AppArmor record: %+v %v", r, ok)
	}
	if _, ok := parseAudit(nlmsg(1400, avc, 0), true, false); ok {
		t.Error("an AppArmor record read with AppArmor records off")
	}
	selinux := `audit(1796494200.002:79): avc:  denied  { read } for  pid=1234 comm="cat" name="shadow" dev="sda1" ino=42 scontext=system_u:system_r:container_t:s0 tcontext=system_u:object_r:shadow_t:s0 tclass=file permissive=0`
	if r, ok := parseAudit(nlmsg(1400, selinux, 0), true, true); ok {
		t.Errorf("SELinux's AVC record read as AppArmor's: %+v", r)
	}
}
