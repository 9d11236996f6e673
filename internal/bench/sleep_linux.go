package bench

import (
	"syscall"
	"time"
)

// prSetTimerSlack is prctl's PR_SET_TIMERSLACK.
const prSetTimerSlack = 29

// preciseTimer lowers the calling thread's timer slack from the default
// 50 µs to 1 µs, so its sleeps end when asked.
func preciseTimer() {
	syscall.Syscall(syscall.SYS_PRCTL, prSetTimerSlack, 1000, 0)
}

// preciseSleep sleeps for d with nanosleep(2), which, unlike the Go timer,
// is not rounded up to a millisecond. It blocks the calling thread.
func preciseSleep(d time.Duration) {
	ts := syscall.NsecToTimespec(int64(d))
	syscall.Nanosleep(&ts, nil) // EINTR: the caller checks the time again
}
