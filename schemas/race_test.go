//go:build race

package schemas

// raceEnabled is true in a race-detector build, whose run of the verdict test samples its
// corpus.
const raceEnabled = true
