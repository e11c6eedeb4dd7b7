module github.com/goentrance/entrance

go 1.26.8

require (
	github.com/coder/websocket v1.8.15
	github.com/mattn/go-sqlite3 v1.14.53
	go.uber.org/goleak v1.3.0
	golang.org/x/sync v0.25.0
)
