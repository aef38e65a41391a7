package enforce

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// appArmorFS is where the kernel shows AppArmor's interface.
const appArmorFS = "/sys/kernel/security/apparmor"

// FindAppArmorParser returns the path of apparmor_parser: on PATH, else in
// /usr/sbin or /sbin (which PATH often lacks for non-root users).
func FindAppArmorParser() (string, error) {
	if p, err := exec.LookPath("apparmor_parser"); err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/sbin/apparmor_parser", "/sbin/apparmor_parser"} {
		if _, err := exec.LookPath(p); err == nil {
			return p, nil
		}
	}
	return "", errors.New("apparmor_parser not found (Debian package apparmor)")
}

// tryAppArmor loads an empty profile of nri-armor's with apparmor_parser
// and removes it: what the AppArmor backend does for every container.
func tryAppArmor(lsms []string) error {
	if !contains(lsms, "apparmor") {
		return errors.New(`"apparmor" is not among the active LSMs`)
	}
	if b, err := os.ReadFile("/sys/module/apparmor/parameters/enabled"); err != nil || strings.TrimSpace(string(b)) != "Y" {
		return errors.New("AppArmor is not enabled (/sys/module/apparmor/parameters/enabled)")
	}
	parser, err := FindAppArmorParser()
	if err != nil {
		return err
	}
	name := fmt.Sprintf("nri-armor.probe-%d", os.Getpid())
	cmd := exec.Command(parser, "-r", "-K", "--abort-on-error")
	cmd.Stdin = strings.NewReader("profile " + name + " {}\n")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("apparmor_parser could not load a profile: %v: %s", err, strings.TrimSpace(stderr.String()))
	}
	if err := os.WriteFile(filepath.Join(appArmorFS, ".remove"), []byte(name), 0); err != nil {
		return fmt.Errorf("removing the probe's profile %s: %w", name, err)
	}
	return nil
}
