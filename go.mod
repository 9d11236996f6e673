module herd

go 1.26.8

require github.com/BurntSushi/toml v1.6.0

require (
	go.uber.org/goleak v1.3.0 // indirect
	golang.org/x/sync v0.25.0 // indirect
	golang.org/x/time v0.16.0 // indirect
)
