package policy

import "sync"

var (
	capNamesOnce sync.Once
	capNames     []string
)

// CapabilityName returns the name of capability number n, lower case
// without CAP_ (as rules spell it), or "" when n is not a Linux capability.
// Kernel events carry numbers; alerts and Decide want names.
func CapabilityName(n int) string {
	capNamesOnce.Do(func() {
		max := 0
		for _, v := range capabilityNumbers {
			if v > max {
				max = v
			}
		}
		capNames = make([]string, max+1)
		for name, v := range capabilityNumbers {
			capNames[v] = name
		}
	})
	if n < 0 || n >= len(capNames) {
		return ""
	}
	return capNames[n]
}
