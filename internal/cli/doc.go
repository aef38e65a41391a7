// Package cli is what the daemons' mains share: a YAML configuration file
// whose every key is also a flag (flags override the file), and the logger
// the configuration describes. nri-armor and armor-tracer read their
// settings the same way.
package cli
