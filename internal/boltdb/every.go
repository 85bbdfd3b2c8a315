package boltdb

import "time"

// Every returns a Task that calls f every d, from the file's open until Close (or damage)
// stops the handle's tasks: the pattern of the stores' retention sweepers. f never runs
// concurrently with itself, and Close waits for a call in progress to return.
func Every(d time.Duration, f func(db *DB)) Task {
	return func(db *DB, stop <-chan struct{}) {
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				f(db)
			}
		}
	}
}
