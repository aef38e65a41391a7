// Command aa-features prints a kernel's AppArmor features
// (/sys/kernel/security/apparmor/features, a directory tree) in the
// flattened form that `apparmor_parser -M FILE` reads, as libapparmor
// writes it (aa-features-abi -x): every entry is `NAME {`, then a file's
// contents or a directory's entries, then `}` and a newline.
//
//	aa-features [DIR]    (default /sys/kernel/security/apparmor/features)
//
// enforce/apparmor/testdata/features-debian12-vm was made by running it,
// statically linked, in the VM of hack/vmtest (Debian 12's 6.1 kernel):
//
//	CGO_ENABLED=0 go build -o /tmp/aa-features ./hack/aa-features
//	hack/vmtest/run.sh /tmp/aa-features
//
// (its output lies between the BEGIN and END lines, base64-encoded so that
// the console cannot garble it).
package main

import (
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

func main() {
	dir := "/sys/kernel/security/apparmor/features"
	if len(os.Args) > 1 {
		dir = os.Args[1]
	}
	s, err := flatten(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "aa-features:", err)
		os.Exit(1)
	}
	if os.Getenv("NRI_ARMOR_VM") != "" {
		// On the VM's console: base64 between markers, 76 columns.
		b := base64.StdEncoding.EncodeToString([]byte(s))
		fmt.Println("AA-FEATURES BEGIN")
		for len(b) > 76 {
			fmt.Println(b[:76])
			b = b[76:]
		}
		fmt.Println(b)
		fmt.Println("AA-FEATURES END")
		return
	}
	fmt.Print(s)
}

// flatten walks dir as libapparmor's features_dir_cb does; entries in
// name order (the parser looks features up by name, so order is free).
func flatten(dir string) (string, error) {
	var b strings.Builder
	var walk func(dir string) error
	walk = func(dir string) error {
		entries, err := os.ReadDir(dir)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), ".") {
				continue
			}
			b.WriteString(e.Name() + " {")
			p := filepath.Join(dir, e.Name())
			if e.IsDir() {
				if err := walk(p); err != nil {
					return err
				}
			} else {
				data, err := os.ReadFile(p)
				if err != nil {
					return err
				}
				b.Write(data)
			}
			b.WriteString("}\n")
		}
		return nil
	}
	if err := walk(dir); err != nil {
		return "", err
	}
	return b.String(), nil
}
