package alert

import (
	"encoding/json"
	"testing"
)

// TestAppendJSON: the hand-written encoder gives exactly encoding/json's
// bytes, including hostile strings (quotes, control bytes, HTML, invalid
// UTF-8, U+2028) that paths and comm names can hold.
func TestAppendJSON(t *testing.T) {
	hostile := []string{"", "plain", `q"uo\te`, "ctl\x00\x01\x1f\n\r\t", "<a&b>", "bad\xff\xfeutf8", "line\u2028sep\u2029", "ünïcødé 日本"}
	for i, s := range hostile {
		a := Alert{Timestamp: int64(i), UpdatedTime: s, ClusterName: s, HostName: s, NamespaceName: s, PodName: s,
			Labels: s, ContainerID: s, ContainerName: s, ContainerImage: s, HostPPID: int64(i), HostPID: -1, PPID: 0,
			PID: 7, UID: int64(i), ParentProcessName: s, ProcessName: s, PolicyName: s, Severity: s, Tags: s,
			Message: s, Type: s, Source: s, Operation: s, Resource: s, Data: s, Enforcer: s, Action: s, Result: s, Cwd: s}
		if i%2 == 1 {
			a.ATags = []string{s, "x"}
		}
		want, err := json.Marshal(&a)
		if err != nil {
			t.Fatal(err)
		}
		if got := a.AppendJSON(nil); string(got) != string(want) {
			t.Errorf("%q:\n got %s\nwant %s", s, got, want)
		}
	}
}
