package bpflsm

import (
	"testing"

	"github.com/dchest/siphash"

	"github.com/nri-armor/nri-armor/internal/policytest"
)

const hashPolicy = `apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata: {name: h, namespace: default}
spec:
  selector: {matchLabels: {app: t}}
  process:
    matchPaths:
    - path: /usr/bin/apt-get
    - execname: curl
    - path: /bin/sh
      fromSource:
      - path: /usr/local/bin/entry
  file:
    matchDirectories:
    - dir: /etc/
      recursive: true
    - dir: /var/log/
    matchPatterns:
    - pattern: /srv/data/*.key
  action: Block
`

// TestEncodeHashesTexts: every path key the encoder writes is SipHash-2-4
// of exactly its text (the rule's path, name, directory, pattern prefix,
// source path) under the key given, as bpf/enforce/siphash.h computes it.
func TestEncodeHashesTexts(t *testing.T) {
	rs := policytest.Compile(t, hashPolicy)
	key := PathKey{0x0706050403020100, 0x0f0e0d0c0b0a0908}
	enc, err := Encode(rs, 1, key)
	if err != nil {
		t.Fatal(err)
	}
	h := func(s string) uint64 { return siphash.Hash(key.k0, key.k1, []byte(s)) }
	// The reference vector of the SipHash paper (key 00..0f, message
	// 00..0e): the hash the programs compute is the published one.
	msg := make([]byte, 15)
	for i := range msg {
		msg[i] = byte(i)
	}
	if got := siphash.Hash(key.k0, key.k1, msg); got != 0xa129ca6149be45e5 {
		t.Fatalf("SipHash-2-4 of the paper's vector = %#x", got)
	}
	type text struct {
		kind   uint8
		s, src string
	}
	want := map[text]bool{
		{kindPath, "/usr/bin/apt-get", ""}:            true,
		{kindExecName, "curl", ""}:                    true,
		{kindPath, "/bin/sh", "/usr/local/bin/entry"}: true,
		{kindDirRec, "/etc/", ""}:                     true,
		{kindDirDirect, "/var/log/", ""}:              true,
		// The guards of the source's name (policy/guard.go).
		{kindPath, "/usr/local/bin/entry", ""}: true,
		{kindPath, "/usr/local/bin", ""}:       true,
		{kindPath, "/usr/local", ""}:           true,
		{kindPath, "/usr", ""}:                 true,
	}
	seen := 0
	for _, k := range enc.Keys {
		found := false
		for w := range want {
			if w.kind == k.Kind && h(w.s) == k.Hash && uint32(len(w.s)) == k.Len &&
				(w.src == "" && k.SrcHash == 0 && k.SrcLen == 0 || w.src != "" && h(w.src) == k.SrcHash && uint32(len(w.src)) == k.SrcLen) {
				found = true
				seen++
			}
		}
		if !found {
			t.Errorf("rule key %+v is the hash of none of the rules' texts", k)
		}
	}
	if seen != len(want) {
		t.Errorf("%d of %d texts found among %d keys", seen, len(want), len(enc.Keys))
	}
	if len(enc.PatternKeys) != 1 {
		t.Fatalf("%d pattern keys, want 1", len(enc.PatternKeys))
	}
	if pk, prefix := enc.PatternKeys[0], "/srv/data/"; pk.Hash != h(prefix) || pk.Len != uint32(len(prefix)) {
		t.Errorf("pattern bucket %+v, want the hash of %q", pk, prefix)
	}

	// Another key: not one path key in common.
	other, err := Encode(rs, 1, PathKey{key.k0 ^ 1, key.k1})
	if err != nil {
		t.Fatal(err)
	}
	if len(other.Keys) != len(enc.Keys) {
		t.Fatalf("%d keys with one key, %d with another", len(enc.Keys), len(other.Keys))
	}
	for i := range enc.Keys {
		if enc.Keys[i].Hash == other.Keys[i].Hash {
			t.Errorf("rule key %+v is the same under two keys", enc.Keys[i])
		}
		if enc.Keys[i].SrcLen != 0 && enc.Keys[i].SrcHash == other.Keys[i].SrcHash {
			t.Errorf("source of %+v is the same under two keys", enc.Keys[i])
		}
	}
	if enc.PatternKeys[0].Hash == other.PatternKeys[0].Hash {
		t.Error("pattern bucket is the same under two keys")
	}
}
