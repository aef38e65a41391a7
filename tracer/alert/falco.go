package alert

import (
	"encoding/json"
	"strconv"
	"time"
)

// falcoAlert is Falco's JSON output (json_output: true): what Falco's
// consumers (falcosidekick, SIEM parsers) read. Field names in
// output_fields are Falco's own where one exists (k8s.*, container.*,
// proc.*, user.*, evt.*, fd.name) so that existing rules of those
// consumers keep working.
type falcoAlert struct {
	Time         string         `json:"time"`
	Rule         string         `json:"rule"`
	Priority     string         `json:"priority"`
	Output       string         `json:"output"`
	OutputFields map[string]any `json:"output_fields"`
	Source       string         `json:"source"`
	Tags         []string       `json:"tags"`
	Hostname     string         `json:"hostname"`
}

// falcoPriority maps KubeArmor's severity (1–10) to Falco's priorities.
func falcoPriority(a *Alert) string {
	if !a.IsAlert() {
		return "Debug"
	}
	sev, _ := strconv.Atoi(a.Severity)
	switch {
	case sev >= 9:
		return "Critical"
	case sev >= 7:
		return "Error"
	case sev >= 5:
		return "Warning"
	case sev >= 3:
		return "Notice"
	}
	return "Informational"
}

// AppendFalco appends a in Falco's shape. Not on the default path, so
// plain encoding/json.
func AppendFalco(b []byte, a *Alert) []byte {
	rule := a.PolicyName
	if rule == "" {
		rule = a.Type
	}
	out := a.Type + ": " + a.Operation + " " + a.Resource + " by " + a.ProcessName
	if a.Action != "" {
		out += " (" + a.Action + ", " + a.Result + ", " + a.Enforcer + ")"
	}
	if a.ContainerName != "" {
		out += " container=" + a.ContainerName + " pod=" + a.NamespaceName + "/" + a.PodName
	}
	if a.Message != "" {
		out += ": " + a.Message
	}
	fields := map[string]any{
		"evt.time": a.Time.UnixNano(), "evt.type": a.Operation, "evt.res": a.Result,
		"proc.exepath": a.ProcessName, "proc.pid": a.HostPID, "proc.ppid": a.HostPPID,
		"proc.pexepath": a.ParentProcessName, "user.uid": a.UID,
		"k8s.ns.name": a.NamespaceName, "k8s.pod.name": a.PodName,
		"container.id": a.ContainerID, "container.name": a.ContainerName, "container.image": a.ContainerImage,
		"nri_armor.resource": a.Resource, "nri_armor.action": a.Action, "nri_armor.enforcer": a.Enforcer,
		"nri_armor.data": a.Data,
	}
	if a.Operation == OpFile {
		fields["fd.name"] = a.Resource
	}
	tags := a.ATags
	if tags == nil {
		tags = []string{}
	}
	j, err := json.Marshal(falcoAlert{
		Time: a.Time.UTC().Format(time.RFC3339Nano), Rule: rule, Priority: falcoPriority(a), Output: out,
		OutputFields: fields, Source: "syscall", Tags: tags, Hostname: a.HostName,
	})
	if err != nil {
		return b // plain data: cannot fail
	}
	return append(b, j...)
}
