package i2cbus

import "testing"

func TestKey(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"/dev/i2c-1", "1"},
		{"I2C1", "1"},
		{"i2c1", "1"},
		{"1", "1"},
		{" /dev/i2c-10 ", "10"},
		{"/dev/i2c-", "/dev/i2c-"},
		{"/dev/i2c-x", "/dev/i2c-x"},
		{"sim-bus", "sim-bus"},
		{"", ""},
	} {
		if got := Key(tc.in); got != tc.want {
			t.Errorf("Key(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
