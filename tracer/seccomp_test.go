package tracer

import (
	"testing"
	"time"
)

// Records as the kernel (6.18 here) writes them for SCMP_ACT_LOG and for a
// refusal under SECCOMP_FILTER_FLAG_LOG; comm and exe in hex when they
// hold a space.
func TestParseSeccomp(t *testing.T) {
	r, ok := ParseSeccomp(`audit(1796493447.612:1): auid=4294967295 uid=0 gid=0 ses=4294967295 pid=17804 comm="sct" exe="/tmp/sctest/sct" sig=0 arch=c000003e syscall=110 compat=0 ip=0x40866e code=0x7ffc0000`)
	if !ok || r.PID != 17804 || r.UID != 0 || r.Comm != "sct" || r.Exe != "/tmp/sctest/sct" || r.Arch != 0xc000003e || r.Syscall != 110 || r.Code != 0x7ffc0000 || r.Refused() {
		t.Errorf("log record: %+v %v", r, ok)
	}
	if want := time.Unix(1796493447, 612*int64(time.Millisecond)); !r.Time.Equal(want) {
		t.Errorf("time %v, want %v", r.Time, want)
	}
	r, ok = ParseSeccomp(`audit(1796493447.624:3): auid=4294967295 uid=1000 gid=0 ses=4294967295 pid=9 comm=6D7920636F6D6D exe=2F746D702F6D792065786500 sig=0 arch=c00000b7 syscall=168 compat=0 ip=0x40866e code=0x50000`)
	if !ok || r.Comm != "my comm" || r.Exe != "/tmp/my exe\x00" || r.UID != 1000 || r.Arch != 0xc00000b7 || !r.Refused() {
		t.Errorf("errno record: %+v %v", r, ok)
	}
	for _, bad := range []string{
		"",
		"type=1326 msg=audit(1:2): pid=1",
		`audit(1.0:2): pid=1 comm="x" arch=c000003e code=0x50000`, // no syscall
		`audit(1.0:2): pid=x comm="x" arch=c000003e syscall=1 code=0x50000`,
	} {
		if r, ok := ParseSeccomp(bad); ok {
			t.Errorf("%q parsed: %+v", bad, r)
		}
	}
}
