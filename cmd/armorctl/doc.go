// Command armorctl validates and explains nri-armor policies and answers
// "what would happen if" before anything is deployed.
//
//	armorctl validate PATH...
//	armorctl explain --policies PATH... --namespace NS --labels k=v,... [--annotations k=v,...] [--container NAME]
//	                 [--host] [--default-posture P] [--default-mode M] [-o text|json]
//	armorctl check   (the same pod flags) --op OP [--path P] [--write] [--source EXE] [--uid N --owner N]
//	                 [--family F] [--protocol P] [--socket-type T] [--capability C] [--syscall S] [-o text|json]
//	                 exit status 0 Allow, 3 Audit, 4 Block, 1 error, 2 usage error
//	armorctl probe   [-o text|json]
//	armorctl logs    [--server URL | --socket PATH | --kubernetes] [--token-file PATH] [--namespace NS] [--pod P] [--container C]
//	                 [--operation OP] [--policy NAME] [--type alert|log|all] [-o text|json] [--follow]
//	                 --kubernetes: [--kubeconfig PATH] [--context NAME] [--node NODE] [--agent-namespace NS]
//	                 [--agent-selector LABELS] [--stream-port N]
package main
