package main

import "fmt"

// bound is a numeric flag and the least value it accepts.
type bound struct {
	flag  string
	value int64
	min   int64
	want  string // what the flag wants, for the message ("a positive number of images")
}

// checkBounds refuses flags below their minimum: values are validated, not
// coerced (a --batch 0 is not silently a batch of 1).
func checkBounds(cmd string, bounds ...bound) error {
	for _, b := range bounds {
		if b.value < b.min {
			return usageError("%s: --%s %d: want %s", cmd, b.flag, b.value, b.want)
		}
	}
	return nil
}

func positive(flag string, v int64) bound {
	return bound{flag, v, 1, "1 or more"}
}

// zeroOrMore is a flag where 0 means a default ("0 = all cores").
func zeroOrMore(flag string, v int64, zero string) bound {
	return bound{flag, v, 0, fmt.Sprintf("0 (%s) or more", zero)}
}
