// Package i2cbus names I2C buses. It is a leaf: the drivers, the simulator
// and the configuration checks all use it, so that they agree on which
// spellings name one bus.
package i2cbus

import "strings"

// Key is the one name of a bus however it is spelled: /dev/i2c-1, I2C1, i2c1
// and 1 are all "1". A name of another shape is kept as written, without
// surrounding space. Two bus names are the same bus exactly when their keys
// are equal.
func Key(bus string) string {
	s := strings.TrimSpace(bus)
	for _, prefix := range []string{"/dev/i2c-", "I2C", "i2c"} {
		if rest, ok := strings.CutPrefix(s, prefix); ok && rest != "" && strings.Trim(rest, "0123456789") == "" {
			return rest
		}
	}
	return s
}
