// Command nri-armor is the node daemon: an NRI plugin that installs each
// container's compiled policies in the kernel before its first instruction.
//
//	nri-armor [-config /etc/nri-armor/nri-armor.yaml] [-KEY VALUE ...]
//
// Every key of the config file (config/nri-armor.yaml documents them) is
// also a flag; flags override the file.
package main
