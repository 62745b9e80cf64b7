module github.com/edgegate/edgegate

go 1.26.8

require (
	github.com/gobwas/ws v1.5.0
	gopkg.in/yaml.v3 v3.0.1
	periph.io/x/conn/v3 v3.7.3
	periph.io/x/host/v3 v3.8.5
)

require github.com/gobwas/httphead v0.1.0 // indirect
