package events

import (
	"bytes"
	"encoding/binary"
	"syscall"
	"testing"

	"github.com/nri-armor/nri-armor/policy"
)

// record encodes a record as the kernel program writes it: the header
// (binary.Write over the generated struct, whose layout is the C one)
// followed by res_len bytes of resource.
func record(t testing.TB, h eventsEvent, res string) []byte {
	t.Helper()
	h.ResLen = uint16(len(res))
	var buf bytes.Buffer
	if err := binary.Write(&buf, binary.NativeEndian, &h); err != nil {
		t.Fatal(err)
	}
	return append(buf.Bytes()[:eventHeader], res...)
}

// TestDecodeEvent: every header field lands where the generated struct
// says it is (the field-by-field decoder against binary.Write).
func TestDecodeEvent(t *testing.T) {
	h := eventsEvent{CgroupId: 1 << 40, TsNs: 123456789, Pid: 11, Tgid: 10, Ppid: 9, Uid: 1000,
		RuleId: 7, SetId: 3, Retval: -int32(syscall.EPERM), Cls: uint8(eventsArmorClassCLASS_FILE), Action: uint8(eventsArmorActionACT_BLOCK), Posture: 0, Write: 1}
	copy(h.Comm[:], []int8{'c', 'a', 't'})
	ev, err := DecodeEvent(record(t, h, "/etc/shadow"))
	if err != nil {
		t.Fatal(err)
	}
	want := Event{CgroupID: 1 << 40, BootNs: 123456789, PID: 11, TGID: 10, PPID: 9, UID: 1000, RuleID: 7, SetID: 3,
		Retval: -int32(syscall.EPERM), Class: policy.ClassFile, Action: policy.Block, Write: true, Comm: "cat", Resource: "/etc/shadow"}
	ev.raw = eventHead{}
	if ev != want {
		t.Fatalf("decoded %+v\nwant    %+v", ev, want)
	}
	h = eventsEvent{Cls: uint8(eventsArmorClassCLASS_NETWORK), Action: uint8(eventsArmorActionACT_AUDIT), Posture: 1, Arg: syscall.AF_INET<<16 | syscall.SOCK_RAW<<8 | syscall.IPPROTO_ICMP}
	ev, err = DecodeEvent(record(t, h, ""))
	if err != nil {
		t.Fatal(err)
	}
	if ev.Family != syscall.AF_INET || ev.SockType != syscall.SOCK_RAW || ev.Protocol != syscall.IPPROTO_ICMP || !ev.Posture || ev.Action != policy.Audit {
		t.Fatalf("network event %+v", ev)
	}
	if _, err := DecodeEvent(make([]byte, eventHeader-1)); err == nil {
		t.Fatal("short record decoded")
	}
}

// BenchmarkDecodeEvent: user-space cost of one ring buffer record.
func BenchmarkDecodeEvent(b *testing.B) {
	rec := record(b, eventsEvent{CgroupId: 42, Cls: uint8(eventsArmorClassCLASS_FILE), Action: uint8(eventsArmorActionACT_BLOCK), RuleId: 1}, "/etc/shadow")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeEvent(rec); err != nil {
			b.Fatal(err)
		}
	}
}

// TestEncode: Encode is DecodeEvent's inverse.
func TestEncode(t *testing.T) {
	for _, want := range []Event{
		{CgroupID: 7, BootNs: 1e9, PID: 301, TGID: 300, PPID: 1, UID: 1000, RuleID: 4, SetID: 2, Retval: -int32(syscall.EPERM),
			Class: policy.ClassNetwork, Action: policy.Block, Comm: "ping", Family: syscall.AF_INET, SockType: syscall.SOCK_RAW, Protocol: syscall.IPPROTO_ICMP},
		{CgroupID: 8, Class: policy.ClassFile, Action: policy.Audit, Posture: true, Write: true, Comm: "sh", Resource: "/etc/shadow"},
		{CgroupID: 9, Class: policy.ClassFile, Action: policy.Block, Builtin: true, Write: true, Resource: "/sys/fs/cgroup/cgroup.procs"},
		{CgroupID: 9, Class: policy.ClassProcess, Action: policy.Block, Unnamed: true},
		{CgroupID: 11, Class: policy.ClassFile, Action: policy.Block, NoMemory: true},
		{CgroupID: 10, Class: policy.ClassCapabilities, Action: policy.Block, Capability: 21},
	} {
		got, err := DecodeEvent(Encode(want))
		if err != nil {
			t.Fatal(err)
		}
		got.raw = eventHead{}
		if got != want {
			t.Errorf("decoded %+v\nwant    %+v", got, want)
		}
	}
}
