package keysource_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestMain lets the test binary stand in for a key command: run as
// `<test binary> keygate-helper MODE DIR`, it behaves as MODE says, with
// its state (a counter, the files "down" and "hold") in DIR.
func TestMain(m *testing.M) {
	if len(os.Args) > 3 && os.Args[1] == "keygate-helper" {
		os.Exit(helper(os.Args[2], os.Args[3]))
	}
	os.Exit(m.Run())
}

// helperKey is the n-th key the helper prints.
func helperKey(n int) string { return fmt.Sprintf("cmd-key-%04d-0123456789abcdef", n) }

func helper(mode, dir string) int {
	for exists(filepath.Join(dir, "hold")) {
		time.Sleep(5 * time.Millisecond)
	}
	switch mode {
	case "hang":
		time.Sleep(time.Hour)
	case "fail":
		fmt.Fprintln(os.Stderr, "vault: permission denied for token hvs-0123456789abcdefXYZ")
		return 3
	case "empty":
		return 0
	case "env":
		if os.Getenv("KEYGATE_MASTER_KEY") != "" {
			fmt.Fprintln(os.Stderr, "the helper got keygate's master key")
			return 4
		}
	}
	if exists(filepath.Join(dir, "down")) {
		fmt.Fprintln(os.Stderr, "vault: connection refused")
		return 1
	}
	count := filepath.Join(dir, "count")
	b, _ := os.ReadFile(count)
	n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	n++
	os.WriteFile(count, []byte(strconv.Itoa(n)), 0o600)
	switch mode {
	case "json":
		fmt.Printf("{\"key\":%q,\"expires_in\":300}\n", helperKey(n))
	case "words":
		fmt.Println("your key is", helperKey(n))
	default:
		fmt.Fprintln(os.Stderr, "warning: using cached login for", helperKey(n))
		fmt.Println(helperKey(n))
	}
	return 0
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
