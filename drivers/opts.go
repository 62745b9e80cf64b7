package drivers

import (
	"errors"
	"fmt"
)

// FieldError is a problem with one field of a driver's options. Field is the
// option's name as the configuration spells it ("address", "channel"), so
// that the configuration checks can report it at the field's line; Problem
// says what is wrong and what to do, without the field's name.
type FieldError struct {
	Field   string
	Problem string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Problem }

func fieldError(field, format string, args ...any) *FieldError {
	return &FieldError{Field: field, Problem: fmt.Sprintf(format, args...)}
}

// FieldProblems lists the problems of err (what an options type's Validate
// returned) by field, the first one of each field only; an error that is no
// FieldError is listed under "".
func FieldProblems(err error) map[string]string {
	out := map[string]string{}
	var walk func(error)
	walk = func(err error) {
		if err == nil {
			return
		}
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		field, problem := "", err.Error()
		var fe *FieldError
		if errors.As(err, &fe) {
			field, problem = fe.Field, fe.Problem
		}
		if _, seen := out[field]; !seen {
			out[field] = problem
		}
	}
	walk(err)
	return out
}

// validator is a driver's options.
type validator interface{ Validate() error }

// buses checks the options o of a driver over GPIO or I2C and returns the
// bus provider of env, which such a driver needs.
func (e Env) buses(o validator, driver string) (Buses, error) {
	return e.Buses, checkOpen(o, e.Buses != nil, driver+": no bus provider")
}

// pool checks the options o of a serial driver and returns the device pool
// of env, which the serial drivers need.
func (e Env) pool(o validator, driver string) (*DevicePool, error) {
	return e.Devices, checkOpen(o, e.Devices != nil, driver+" drivers need the gateway's device pool (drivers.Env.Devices)")
}

// checkOpen checks options o, then that env has what the driver needs
// (have), else says what is missing.
func checkOpen(o validator, have bool, missing string) error {
	if err := o.Validate(); err != nil {
		return err
	}
	if !have {
		return errors.New(missing)
	}
	return nil
}

// checkI2CAddress checks a 7-bit I2C device address (the reserved ones
// excluded).
func checkI2CAddress(addr int) *FieldError {
	if addr < 0x03 || addr > 0x77 {
		return fieldError("address", "%#x is not a 7-bit I2C device address (0x03 to 0x77)", addr)
	}
	return nil
}

// checkChannel checks a relay channel number (numbered from 1).
func checkChannel(ch int) *FieldError {
	if ch < 1 {
		return fieldError("channel", "channels are numbered from 1, got %d", ch)
	}
	return nil
}

// joinFields returns the problems found (nil ones left out) as one error.
func joinFields(fs ...*FieldError) error {
	var errs []error
	for _, f := range fs {
		if f != nil {
			errs = append(errs, f)
		}
	}
	return errors.Join(errs...)
}
