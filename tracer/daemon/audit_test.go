package daemon

import (
	"encoding/binary"
	"testing"
)

func nlmsg(typ uint16, text string, pad int) []byte {
	b := make([]byte, 16+len(text)+pad)
	binary.NativeEndian.PutUint32(b[0:4], uint32(16+len(text)))
	binary.NativeEndian.PutUint16(b[4:6], typ)
	copy(b[16:], text)
	return b
}

func TestParseAudit(t *testing.T) {
	text := `audit(1796494199.776:77): auid=4294967295 uid=0 gid=0 ses=4294967295 pid=7 comm="sct" exe="/sct" sig=0 arch=c000003e syscall=111 compat=0 ip=0x40866e code=0x50000`
	if r, ok := parseAudit(nlmsg(1326, text, 3)); !ok || r.PID != 7 || r.Syscall != 111 {
		t.Errorf("record: %+v %v", r, ok)
	}
	if _, ok := parseAudit(nlmsg(1300, text, 0)); ok {
		t.Error("a SYSCALL record read as seccomp")
	}
	if _, ok := parseAudit([]byte{1, 2}); ok {
		t.Error("a short datagram read")
	}
}
