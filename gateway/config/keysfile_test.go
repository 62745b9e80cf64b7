package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// auth.keys_file: keys kept apart from the configuration (the package
// generates them there), checked like the configuration's own.
func TestKeysFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	keys := write("api-keys", "# generated\n\noperator operator 0123456789abcdef0123456789abcdef\nviewer viewer fedcba9876543210fedcba9876543210\n")
	cfgPath := write("edgegate.yaml", "auth:\n  enabled: true\n  keys:\n    - {name: backend, key: backend-key-0123456789, role: operator}\n  keys_file: "+keys+"\n")
	cfg, err := Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, k := range cfg.Auth.Keys {
		got = append(got, k.Name+"/"+k.Role+"/"+k.Key)
	}
	want := "backend/operator/backend-key-0123456789 operator/operator/0123456789abcdef0123456789abcdef viewer/viewer/fedcba9876543210fedcba9876543210"
	if strings.Join(got, " ") != want {
		t.Fatalf("keys %v, want %s", got, want)
	}
	// Parse alone (a file's text) does not read it.
	if cfg, err := Parse("t.yaml", []byte("auth:\n  enabled: true\n  keys_file: "+keys+"\n")); err != nil || len(cfg.Auth.Keys) != 0 {
		t.Fatalf("Parse: %v, %d keys", err, len(cfg.Auth.Keys))
	}

	bad := write("bad-keys", strings.Join([]string{
		"operator operator 0123456789abcdef0123456789abcdef", // 1: fine
		"two words",                                 // 2
		"x admin abcdefghijklmnopqrstuvwxyz",        // 3
		"y viewer CHANGE-ME-viewer-key-please",      // 4
		"z viewer short",                            // 5
		"backend viewer abcdefghijklmnopqrstuvwxyz", // 6: the config's name
		"w viewer 0123456789abcdef0123456789abcdef", // 7: line 1's key
	}, "\n")+"\n")
	cfgPath = write("bad.yaml", "auth:\n  enabled: true\n  keys:\n    - {name: backend, key: backend-key-0123456789, role: operator}\n  keys_file: "+bad+"\n")
	_, err = Load(cfgPath)
	for _, want := range []string{
		bad + ":2: auth.keys_file: want \"name role key\"",
		bad + ":3: auth.keys_file: role \"admin\": use viewer or operator",
		bad + ":4: auth.keys_file: key of \"y\": still the example's placeholder",
		bad + ":5: auth.keys_file: key of \"z\": too short",
		bad + ":6: auth.keys_file: \"backend\" is also the name of auth.keys[0]",
		bad + ":7: auth.keys_file: the key of \"w\" is the same as that of \"operator\"",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("got %v\nwant a line %q", err, want)
		}
	}
	if err != nil && strings.Contains(err.Error(), ":1:") {
		t.Errorf("line 1 is fine: %v", err)
	}

	missing := filepath.Join(dir, "none")
	cfgPath = write("missing.yaml", "auth:\n  enabled: true\n  keys_file: "+missing+"\n")
	if _, err := Load(cfgPath); err == nil || !strings.Contains(err.Error(), cfgPath+":3: auth.keys_file: cannot read "+missing) {
		t.Errorf("a missing keys file: %v", err)
	}
}
