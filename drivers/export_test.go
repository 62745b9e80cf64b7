package drivers

// Exported for the tests of package drivers_test.
var (
	RTUFrame = rtuFrame
	RTUGap   = rtuGap
)
