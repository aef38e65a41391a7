package alert

import (
	"strconv"
	"time"
	"unicode/utf8"
)

// Alert types (KubeArmor's `Type`).
const (
	TypeMatchedPolicy     = "MatchedPolicy"
	TypeMatchedHostPolicy = "MatchedHostPolicy"
	TypeContainerLog      = "ContainerLog"
	TypeHostLog           = "HostLog"
	TypeSystemEvent       = "SystemEvent"
)

// Operations (KubeArmor's `Operation`).
const (
	OpProcess        = "Process"
	OpFile           = "File"
	OpNetwork        = "Network"
	OpCapabilities   = "Capabilities"
	OpSyscall        = "Syscall"
	OpAlertThreshold = "AlertThreshold"
)

// EnforcerMonitor is the Enforcer of alerts that user space matched: the
// kernel did not enforce the class for that container.
const EnforcerMonitor = "eBPF Monitor"

// Results.
const (
	ResultPassed           = "Passed"
	ResultPermissionDenied = "Permission denied"
)

// Alert is one alert or log record, with KubeArmor's alert keys so that
// existing consumers (karmor, relay-server sinks, SIEM parsers) read it.
// Field order and types follow KubeArmor's: Timestamp in seconds,
// Severity and Tags as strings, Labels as "k=v,k=v".
type Alert struct {
	Timestamp         int64    `json:"Timestamp"`
	UpdatedTime       string   `json:"UpdatedTime"`
	ClusterName       string   `json:"ClusterName"`
	HostName          string   `json:"HostName"`
	NamespaceName     string   `json:"NamespaceName,omitempty"`
	PodName           string   `json:"PodName,omitempty"`
	Labels            string   `json:"Labels,omitempty"`
	ContainerID       string   `json:"ContainerID,omitempty"`
	ContainerName     string   `json:"ContainerName,omitempty"`
	ContainerImage    string   `json:"ContainerImage,omitempty"`
	HostPPID          int64    `json:"HostPPID,omitempty"`
	HostPID           int64    `json:"HostPID,omitempty"`
	PPID              int64    `json:"PPID,omitempty"`
	PID               int64    `json:"PID,omitempty"`
	UID               int64    `json:"UID"`
	ParentProcessName string   `json:"ParentProcessName,omitempty"`
	ProcessName       string   `json:"ProcessName,omitempty"`
	PolicyName        string   `json:"PolicyName,omitempty"`
	Severity          string   `json:"Severity,omitempty"`
	Tags              string   `json:"Tags,omitempty"`
	ATags             []string `json:"ATags,omitempty"`
	Message           string   `json:"Message,omitempty"`
	Type              string   `json:"Type"`
	Source            string   `json:"Source,omitempty"`
	Operation         string   `json:"Operation"`
	Resource          string   `json:"Resource,omitempty"`
	Data              string   `json:"Data,omitempty"`
	Enforcer          string   `json:"Enforcer,omitempty"`
	Action            string   `json:"Action,omitempty"`
	Result            string   `json:"Result,omitempty"`
	Cwd               string   `json:"Cwd,omitempty"`

	// Not encoded: what the pipeline keeps with an alert. Time is the
	// event's time (AppendJSON writes it as UpdatedTime when that is
	// empty; Falco's format reads it), Cgroup what floods are keyed on,
	// and IdentityJSON and RuleJSON the identity and rule fields encoded
	// once per container and per rule (AppendIdentity, AppendRule; nil:
	// encode the fields), whose addresses also key the alert metrics.
	// RuleID is the id of the rule that matched in the container's rule
	// set (0: none), what floods are keyed on with Cgroup.
	Time                   time.Time `json:"-"`
	Cgroup                 uint64    `json:"-"`
	RuleID                 int       `json:"-"`
	IdentityJSON, RuleJSON []byte    `json:"-"`
}

// IsAlert reports whether a is an alert (a policy matched, or a flood
// summary) rather than a visibility log.
func (a *Alert) IsAlert() bool {
	return a.Type != TypeContainerLog && a.Type != TypeHostLog
}

// AppendJSON appends a's JSON object, byte for byte what encoding/json
// gives for Alert (a test holds them equal); an empty UpdatedTime is
// taken from the event's time. Written out by hand because
// reflection would cost more than all the rest of an event's handling.
func (a *Alert) AppendJSON(b []byte) []byte {
	b = append(b, `{"Timestamp":`...)
	b = strconv.AppendInt(b, a.Timestamp, 10)
	if a.UpdatedTime == "" && !a.Time.IsZero() {
		// The pipeline's alerts: the time appended in place, no string.
		b = append(b, `,"UpdatedTime":"`...)
		b = a.Time.UTC().AppendFormat(b, time.RFC3339Nano)
		b = append(b, '"')
	} else {
		b = appendField(b, "UpdatedTime", a.UpdatedTime, false)
	}
	if a.IdentityJSON != nil {
		b = append(b, a.IdentityJSON...)
	} else {
		b = AppendIdentity(b, a)
	}
	b = appendInt(b, "HostPPID", a.HostPPID, true)
	b = appendInt(b, "HostPID", a.HostPID, true)
	b = appendInt(b, "PPID", a.PPID, true)
	b = appendInt(b, "PID", a.PID, true)
	b = appendInt(b, "UID", a.UID, false)
	b = appendField(b, "ParentProcessName", a.ParentProcessName, true)
	b = appendField(b, "ProcessName", a.ProcessName, true)
	if a.RuleJSON != nil {
		b = append(b, a.RuleJSON...)
	} else {
		b = AppendRule(b, a)
	}
	b = appendField(b, "Type", a.Type, false)
	b = appendField(b, "Source", a.Source, true)
	b = appendField(b, "Operation", a.Operation, false)
	b = appendField(b, "Resource", a.Resource, true)
	b = appendField(b, "Data", a.Data, true)
	b = appendField(b, "Enforcer", a.Enforcer, true)
	b = appendField(b, "Action", a.Action, true)
	b = appendField(b, "Result", a.Result, true)
	b = appendField(b, "Cwd", a.Cwd, true)
	return append(b, '}')
}

// AppendIdentity appends the fields that name the container: the same
// for every alert of a container, so the pipeline encodes them once per
// container (IdentityJSON) instead of once per alert.
func AppendIdentity(b []byte, a *Alert) []byte {
	b = appendField(b, "ClusterName", a.ClusterName, false)
	b = appendField(b, "HostName", a.HostName, false)
	b = appendField(b, "NamespaceName", a.NamespaceName, true)
	b = appendField(b, "PodName", a.PodName, true)
	b = appendField(b, "Labels", a.Labels, true)
	b = appendField(b, "ContainerID", a.ContainerID, true)
	b = appendField(b, "ContainerName", a.ContainerName, true)
	return appendField(b, "ContainerImage", a.ContainerImage, true)
}

// AppendRule appends the fields that come from the rule, encoded once per
// rule (RuleJSON) for the same reason.
func AppendRule(b []byte, a *Alert) []byte {
	b = appendField(b, "PolicyName", a.PolicyName, true)
	b = appendField(b, "Severity", a.Severity, true)
	b = appendField(b, "Tags", a.Tags, true)
	if len(a.ATags) > 0 {
		b = append(b, `,"ATags":[`...)
		for i, t := range a.ATags {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, t)
		}
		b = append(b, ']')
	}
	return appendField(b, "Message", a.Message, true)
}

func appendField(b []byte, key, v string, omitEmpty bool) []byte {
	if omitEmpty && v == "" {
		return b
	}
	b = append(b, ',', '"')
	b = append(b, key...)
	b = append(b, '"', ':')
	return appendString(b, v)
}

func appendInt(b []byte, key string, v int64, omitEmpty bool) []byte {
	if omitEmpty && v == 0 {
		return b
	}
	b = append(b, ',', '"')
	b = append(b, key...)
	b = append(b, '"', ':')
	return strconv.AppendInt(b, v, 10)
}

const hexDigits = "0123456789abcdef"

// jsonSafe holds the ASCII bytes that go into a JSON string as they are
// (encoding/json's htmlSafeSet): one table lookup per byte, the encoder's
// hottest loop.
var jsonSafe = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// appendString appends s as a JSON string the way encoding/json does
// (HTML-safe escapes, invalid UTF-8 as U+FFFD): paths and comm names come
// from processes and may hold anything.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if jsonSafe[c] {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
