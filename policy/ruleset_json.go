package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
)

// ParseRuleSet reads a rule set from its canonical JSON (RuleSet.JSON), as
// nri-armor publishes it for the tracer. The version must be IRVersion and
// the content must hash to the digest it names, so a set read back decides
// exactly as the one that was written.
func ParseRuleSet(b []byte) (*RuleSet, error) {
	var rs RuleSet
	if err := json.Unmarshal(b, &rs); err != nil {
		return nil, fmt.Errorf("rule set: %w", err)
	}
	if rs.Version != IRVersion {
		return nil, fmt.Errorf("rule set version %d, want %d", rs.Version, IRVersion)
	}
	want := rs.Digest
	rs.Digest = ""
	sum := sha256.Sum256(rs.JSON())
	rs.Digest = "sha256:" + hex.EncodeToString(sum[:])
	if rs.Digest != want {
		return nil, fmt.Errorf("rule set content hashes to %s, not to its digest %s", rs.ShortDigest(), want)
	}
	return &rs, nil
}
