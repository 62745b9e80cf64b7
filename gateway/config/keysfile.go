package config

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/edgegate/edgegate/protocol"
)

// loadKeysFile adds the API keys of auth.keys_file to c.Auth.Keys. The file
// holds one key a line, "name role key" separated by spaces; blank lines
// and lines starting with # are skipped. Its problems are reported at its
// own lines, under the field auth.keys_file, with the same checks as keys
// in the configuration (and against them: names and keys are unique).
func (c *Config) loadKeysFile() error {
	path := c.Auth.KeysFile
	data, err := os.ReadFile(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return Errors{{File: c.File, Line: c.Auth.keysFileLine, Field: "auth.keys_file", Problem: fmt.Sprintf("cannot read %s: %v", path, err)}}
	}
	names, keys := map[string]string{}, map[string]string{}
	for i, k := range c.Auth.Keys {
		names[k.Name] = fmt.Sprintf("auth.keys[%d]", i)
		keys[k.Key] = fmt.Sprintf("auth.keys[%d] %q", i, k.Name)
	}
	var errs Errors
	problem := func(line int, format string, args ...any) {
		errs = append(errs, &Error{File: path, Line: line, Field: "auth.keys_file", Problem: fmt.Sprintf(format, args...)})
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 3 {
			problem(n, "want \"name role key\" (3 words separated by spaces), got %d words", len(f))
			continue
		}
		k := APIKey{Name: f[0], Role: f[1], Key: f[2], Line: n}
		if !protocol.ValidRole(k.Role) {
			problem(n, "role %q: use viewer or operator", k.Role)
			continue
		}
		if weak := weakKey(k.Key); weak != "" {
			problem(n, "key of %q: %s", k.Name, weak)
			continue
		}
		if o, dup := names[k.Name]; dup {
			problem(n, "%q is also the name of %s; names must be unique", k.Name, o)
			continue
		}
		if o, dup := keys[k.Key]; dup {
			problem(n, "the key of %q is the same as that of %s; every key must be different", k.Name, o)
			continue
		}
		names[k.Name] = fmt.Sprintf("%s line %d", path, n)
		keys[k.Key] = fmt.Sprintf("%q (%s line %d)", k.Name, path, n)
		c.Auth.Keys = append(c.Auth.Keys, k)
	}
	if err := sc.Err(); err != nil {
		problem(0, "%v", err)
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}
