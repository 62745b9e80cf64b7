package main

import (
	"github.com/edgegate/edgegate/cmd/internal/buildinfo"
	"github.com/edgegate/edgegate/cmd/internal/manpage"
)

// manPage is edgegate.1: the --help text as a man page (edgegate help --man).
func manPage() string {
	return manpage.Page{
		Name:    "edgegate",
		Section: 1,
		Summary: "the edge gateway: GPIO, serial and I2C relays and sensors over WebSocket, and a dashboard",
		Source:  "edgegate " + buildinfo.Get(version, commit).Version,
		Date:    manpage.Date(),
		Help:    usageText,
	}.Render()
}
