package main

import (
	"github.com/edgegate/edgegate/cmd/internal/buildinfo"
	"github.com/edgegate/edgegate/cmd/internal/manpage"
)

// manPage is edgectl.1: the --help text as a man page (edgectl help --man).
func manPage() string {
	return manpage.Page{
		Name:    "edgectl",
		Section: 1,
		Summary: "a command-line client of an edgegate gateway",
		Source:  "edgegate " + buildinfo.Get(version, commit).Version,
		Date:    manpage.Date(),
		Help:    helpText,
	}.Render()
}
