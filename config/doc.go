// Package config holds the shipped configuration and policies; its test
// keeps them loadable and the policy that `make demo` enforces deciding what
// the demo tells the user.
package config
