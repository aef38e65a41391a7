// Package apparmor is the AppArmor backend's profile compiler: a
// container's rule set (policy.RuleSet), with the raw AppArmor rules of
// its policies (spec.apparmor), becomes one AppArmor profile, under a name
// the pod and the daemon both compute (ProfileName).
//
// Compile is a pure function; Parser runs apparmor_parser offline (-Q)
// to check a profile, or raw rules as they will be placed, and is what
// policy loading uses for spec.apparmor (Parser.RawChecker). Loading
// profiles into the kernel and attaching them to pods is the daemon's.
//
// What each rule becomes, what AppArmor cannot express (reported in
// Profile.Unenforced) and where AppArmor's semantics differ from BPF-LSM's
// are in docs/apparmor.md.
package apparmor
