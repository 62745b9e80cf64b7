// Package protocol holds the message types, error codes and codecs of the
// edgegate WebSocket subprotocols. It does no I/O and starts no goroutines.
package protocol

// Subprotocol names, as offered in Sec-WebSocket-Protocol.
const (
	RelayControlV1 = "relay-control.v1"
	SensorStreamV1 = "sensor-stream.v1"
	EdgeUplinkV1   = "edge-uplink.v1"
)

// Error codes carried in error replies.
const (
	CodeBadRequest    = "bad_request"
	CodeUnknownOp     = "unknown_op"
	CodeUnknownRelay  = "unknown_relay"
	CodeUnknownSensor = "unknown_sensor"
	CodeForbidden     = "forbidden"
	CodeDeviceError   = "device_error"
	CodeRateLimited   = "rate_limited"
	CodeBusy          = "busy"
	// CodeTooSoon: a change refused by a relay's min_on or min_off guard.
	CodeTooSoon = "too_soon"
	// CodeUnknownAutomation: enable or disable named no automation.
	CodeUnknownAutomation = "unknown_automation"
)

// Roles a connection, an API key or a signed token can have.
const (
	RoleViewer   = "viewer"
	RoleOperator = "operator"
)

// ValidRole reports whether role is one of the roles.
func ValidRole(role string) bool { return role == RoleViewer || role == RoleOperator }

// Sources of a relay state change, carried in state events.
const (
	SourceClient    = "client"
	SourcePulse     = "pulse"
	SourceInterlock = "interlock"
	SourceFailsafe  = "failsafe"
	SourceStartup   = "startup"
	SourceUplink    = "uplink"
	SourceDevice    = "device"
	// SourceAutomation: an on-device automation; the state event names it.
	SourceAutomation = "automation"
	// SourceGuard: a relay guard (max_on) switched the relay off.
	SourceGuard = "guard"
)

// Relay ops of relay-control.v1.
const (
	OpList   = "list"
	OpGet    = "get"
	OpSet    = "set"
	OpToggle = "toggle"
	OpPulse  = "pulse"
	// The automation ops of relay-control.v1.
	OpAutomations = "automations"
	OpEnable      = "enable"
	OpDisable     = "disable"
)

// Ops of sensor-stream.v1, besides OpList.
const (
	OpSubscribe   = "subscribe"
	OpUnsubscribe = "unsubscribe"
)

// Sample formats a subscribe can ask for in "format".
const (
	FormatJSON   = "json"
	FormatBinary = "binary"
)

// StateString is the wire form of a relay state.
func StateString(on bool) string {
	if on {
		return "on"
	}
	return "off"
}

// RelayInfo describes one relay in hello and list messages.
type RelayInfo struct {
	Name      string
	On        bool
	Driver    string
	ChangedAt int64 // Unix milliseconds of the last confirmed change
	Interlock string
	MaxPulse  int64 // milliseconds; the longest pulse this relay accepts
	// ChangedBy is the source of the last change when that was an
	// automation or a guard ("" otherwise), and Automation the
	// automation's name: the dashboard shows who switched a relay.
	ChangedBy, Automation string
}

// SensorInfo describes one sensor in hello and list messages of
// sensor-stream.v1.
type SensorInfo struct {
	Name       string // "<device>.<quantity>"
	Unit       string
	Index      int
	IntervalMS int64
}

// RecordSize is the size of one binary sample record.
const RecordSize = 32
