//go:build !race

package wsconn

const raceDetector = false
