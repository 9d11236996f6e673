//go:build !linux

package bench

import "time"

// preciseTimer does nothing outside Linux.
func preciseTimer() {}

// preciseSleep sleeps for d with the Go timer, which may wake up to a
// millisecond late; open-loop send lag shows how late.
func preciseSleep(d time.Duration) { time.Sleep(d) }
